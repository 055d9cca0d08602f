import type { ApiResult } from './types.ts';

/** Thrown by request parsing helpers to end a request early with a prepared response. */
export class RequestError extends Error {
  constructor(readonly result: ApiResult) {
    super(`request rejected with status ${result.status}`);
    this.name = 'RequestError';
  }
}
