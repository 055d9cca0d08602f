// Injected failures for tests of a client's error handling. A fault matches requests by
// method and path prefix and fires a given number of times. Each request consumes at most
// one fault: the first in the list that matches and has firings left.
import { z } from 'zod';

export const faultSchema = z
  .object({
    match: z
      .object({
        method: z.string().min(1).optional(),
        /** Case-insensitive prefix of the request path, e.g. /api/Tickets. */
        path: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    /**
     * status: respond with `status` and `body` without doing the work.
     * latency: wait `delayMs`, then handle the request normally.
     * reset: destroy the connection before doing anything.
     * drop-response: do the work (a write is saved), then destroy the connection without a
     * response.
     */
    kind: z.enum(['status', 'latency', 'reset', 'drop-response']),
    status: z.number().int().min(100).max(599).optional(),
    /** Sent as JSON, or as text/plain when it is a string; omitted means an empty body. */
    body: z.unknown().optional(),
    /** Delay before the fault takes effect, for every kind. */
    delayMs: z.number().int().min(0).max(120_000).optional(),
    times: z.number().int().min(1).default(1),
  })
  .strict()
  .refine((fault) => fault.kind !== 'status' || fault.status !== undefined, {
    message: 'a fault of kind "status" needs a "status" code',
    path: ['status'],
  });

export const faultListSchema = z.object({ faults: z.array(faultSchema).min(1) }).strict();

export type Fault = z.infer<typeof faultSchema>;

/** The active faults, in the order they were added. */
export class FaultList {
  private faults: Array<Fault & { remaining: number }> = [];

  add(faults: Fault[]): void {
    for (const fault of faults) this.faults.push({ ...fault, remaining: fault.times });
  }

  clear(): void {
    this.faults = [];
  }

  /** Number of faults that can still fire. */
  get size(): number {
    return this.faults.length;
  }

  /** Consumes and returns the first fault that matches the request, if any. */
  take(method: string, path: string): Fault | undefined {
    const lowerPath = path.toLowerCase();
    const index = this.faults.findIndex(
      (fault) =>
        (fault.match.method === undefined ||
          fault.match.method.toUpperCase() === method.toUpperCase()) &&
        (fault.match.path === undefined || lowerPath.startsWith(fault.match.path.toLowerCase())),
    );
    const fault = this.faults[index];
    if (fault === undefined) return undefined;

    fault.remaining -= 1;
    if (fault.remaining <= 0) this.faults.splice(index, 1);
    return fault;
  }
}
