/** The addon is checked against the kernel list and the op enums when it loads (backend/native.ts checkAddon). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { BINARY, REDUCE, UNARY } from '../../src/backend/backend.js';
import { checkAddon, KERNELS } from '../../src/backend/native.js';
import { GranqError } from '../../src/errors.js';

const built = createRequire(import.meta.url)('../../../build/Release/granq_native.node') as Record<string, unknown>;
const counts = { unary: Object.keys(UNARY).length, binary: Object.keys(BINARY).length, reduce: Object.keys(REDUCE).length };
const fake = (over: Record<string, unknown> = {}, enums = counts): Record<string, unknown> => ({
  ...Object.fromEntries(KERNELS.map((k) => [k, () => undefined])), enumCounts: () => enums, ...over,
});

test('the built addon exports exactly KERNELS + enumCounts, with the enum sizes of backend.ts', () => {
  checkAddon(built, 'build/Release/granq_native.node');
  assert.deepEqual((built['enumCounts'] as () => unknown)(), counts);
});

test('a stale addon (a kernel missing, an unknown export, another enum size) is one GranqError naming it', () => {
  const noGemm = fake();
  delete noGemm['gemm'];
  assert.throws(() => checkAddon(noGemm, 'x.node'), (e: unknown) => e instanceof GranqError && /x\.node does not match .*missing: gemm\b/.test(e.message));
  assert.throws(() => checkAddon(fake({ conv3dFwd: () => 0 }), 'x.node'), /unknown: conv3dFwd/);
  assert.throws(() => checkAddon(fake({}, { ...counts, unary: counts.unary + 1 }), 'x.node'), /unary ops: the addon has 9, backend.ts 8/);
});
