/** Numeric comparison for tests: the message names the first bad element, the worst error and the tolerance. */
import assert from 'node:assert/strict';

export interface Tolerance {
  atol?: number;
  rtol?: number;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** |a - b| <= atol + rtol |b| elementwise (b is the reference); NaN must match NaN. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance = {}, what = 'values'): void {
  const atol = tol.atol ?? 1e-5;
  const rtol = tol.rtol ?? 1e-5;
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  let worst = -1;
  let worstErr = 0;
  let bad = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    const err = Math.abs(a - e);
    const ok = err <= atol + rtol * Math.abs(e);
    if (!ok || Number.isNaN(err)) {
      bad++;
      if (worst < 0 || !(err <= worstErr)) {
        worst = i;
        worstErr = err;
      }
    }
  }
  if (bad > 0) {
    assert.fail(
      `${what}: ${bad}/${actual.length} elements differ; worst at [${worst}]: ${actual[worst]} vs ${expected[worst]} ` +
        `(|diff| ${worstErr.toExponential(3)}, atol ${atol}, rtol ${rtol})`,
    );
  }
}

/** Bit-for-bit equality of two float arrays. */
export function assertBitEqual(actual: ArrayLike<number>, expected: ArrayLike<number>, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)))) {
      assert.fail(`${what}: element [${i}] differs: ${a} vs ${e}`);
    }
  }
}
