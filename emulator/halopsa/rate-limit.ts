import type { RateLimitSetting } from './config.ts';

/** The outcome of asking the limiter for one request slot. */
export type RateLimitDecision =
  { allowed: true } | { allowed: false; retryAfterSeconds: number; message: string };

/**
 * Counts requests in a rolling window shared by every API and token call of the instance.
 * Only admitted requests are counted, so a client that keeps retrying while limited gets in
 * again once its earlier requests leave the window.
 */
export class RollingWindowLimiter {
  private admittedAt: number[] = [];

  /** Admits the request at `now` (epoch ms) or returns why it is rejected. */
  tryAdmit(now: number, setting: RateLimitSetting | null): RateLimitDecision {
    if (setting === null) return { allowed: true };

    const windowMs = setting.windowSeconds * 1000;
    const firstInWindow = this.admittedAt.findIndex((at) => at > now - windowMs);
    this.admittedAt = firstInWindow === -1 ? [] : this.admittedAt.slice(firstInWindow);

    if (this.admittedAt.length < setting.limit) {
      this.admittedAt.push(now);
      return { allowed: true };
    }

    // The oldest admitted request leaves the window first and frees the next slot.
    const oldest = this.admittedAt[this.admittedAt.length - setting.limit] ?? now;
    const retryAfterSeconds = Math.max(1, Math.ceil((oldest + windowMs - now) / 1000));
    return { allowed: false, retryAfterSeconds, message: rateLimitMessage(setting) };
  }

  clear(): void {
    this.admittedAt = [];
  }
}

/**
 * Builds HaloPSA's 429 text for a limit, e.g. "Rate Limit Reached - 300 Requests per rolling
 * 5 minute window". Windows that are not whole minutes are given in seconds.
 */
export function rateLimitMessage(setting: RateLimitSetting): string {
  const window =
    setting.windowSeconds % 60 === 0
      ? `${setting.windowSeconds / 60} minute`
      : `${setting.windowSeconds} second`;
  return `Rate Limit Reached - ${setting.limit} Requests per rolling ${window} window`;
}
