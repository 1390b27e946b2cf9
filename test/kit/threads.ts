/** Runs fn with the native pool at `n` threads, restoring the previous count afterwards. */
import { nativeBackend } from '../../src/backend/index.js';

export function withThreads<T>(n: number, fn: () => T): T {
  const prev = nativeBackend.numThreads();
  nativeBackend.setThreads(n);
  try {
    return fn();
  } finally {
    nativeBackend.setThreads(prev);
  }
}
