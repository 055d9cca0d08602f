import { AuthRegistry } from './auth.ts';
import type { EmulatorConfig } from './config.ts';
import { FaultList } from './faults.ts';
import { RollingWindowLimiter } from './rate-limit.ts';
import { RequestLog } from './request-log.ts';
import { seedData, seedOutcomes, type SeedOptions } from './seed.ts';
import { DataStore } from './store.ts';

/** Everything one running emulator holds. POST /_emulator/reset rebuilds it. */
export class EmulatorState {
  data = new DataStore();
  auth = new AuthRegistry();
  config: EmulatorConfig;
  readonly limiter = new RollingWindowLimiter();
  readonly faults = new FaultList();
  readonly requests = new RequestLog();
  /** Added to the wall clock, so that tests can expire tokens without waiting. */
  private clockOffsetMs = 0;

  constructor(
    private readonly initialSeed: boolean | SeedOptions,
    private readonly initialConfig: EmulatorConfig,
  ) {
    this.config = structuredClone(initialConfig);
    this.reset(initialSeed);
  }

  /** Returns the emulator's current time in epoch milliseconds. */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  advanceClock(seconds: number): void {
    this.clockOffsetMs += seconds * 1000;
  }

  /**
   * Replaces all data, applications and tokens, faults, the request log, the rate-limit
   * window and the clock offset, and restores the settings the emulator started with.
   */
  reset(seed: boolean | SeedOptions = this.initialSeed): void {
    this.data = new DataStore();
    seedOutcomes(this.data);
    if (seed !== false) seedData(this.data, seed === true ? {} : seed);

    this.auth = new AuthRegistry();
    this.config = structuredClone(this.initialConfig);
    this.limiter.clear();
    this.faults.clear();
    this.requests.clear();
    this.clockOffsetMs = 0;
  }
}
