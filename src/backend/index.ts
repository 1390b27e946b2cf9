/**
 * Backend selection: GRANQ_BACKEND=ref runs the whole stack on the scalar TypeScript kernels; the default is native.
 * Tests switch per call with withBackend().
 */
import { GranqError } from '../errors.js';
import type { Backend } from './backend.js';
import { nativeBackend } from './native.js';
import { refBackend } from './ref/index.js';

export * from './backend.js';
export { nativeBackend, refBackend };

function fromEnv(): Backend {
  const v = process.env.GRANQ_BACKEND ?? 'native';
  if (v === 'native') return nativeBackend;
  if (v === 'ref') return refBackend;
  throw new GranqError(`GRANQ_BACKEND: expected 'native' or 'ref', got '${v}'`);
}

let current: Backend | null = null;

export function backend(): Backend {
  current ??= fromEnv();
  return current;
}

export function setBackend(b: Backend): void {
  current = b;
}

/** Runs fn with backend b, restoring the previous one afterwards. */
export function withBackend<T>(b: Backend, fn: () => T): T {
  const prev = backend();
  current = b;
  try {
    return fn();
  } finally {
    current = prev;
  }
}
