/**
 * Gradient checks. gradcheck() runs the reference backend in float64: the analytic gradient of
 * L = sum(f(inputs) * W) (W fixed random weights) from the op's backward is compared with central differences of
 * the same reference forward. compareBackends() runs f forward and backward on native and reference in float32 and
 * compares outputs and every input gradient.
 */
import assert from 'node:assert/strict';
import * as F from '../../src/autograd/index.js';
import { nativeBackend, refBackend, withBackend } from '../../src/backend/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor, withFloat64 } from '../../src/tensor/tensor.js';
import { assertClose, type Tolerance } from './compare.js';

export type Fn = (...inputs: Tensor[]) => Tensor;

function weightsFor(out: Tensor, seed: number): Tensor {
  const w = Tensor.empty(out.shape);
  new Rng(seed).fillUniform(w.data, -1, 1);
  return w;
}

function weightedSum(out: Tensor, w: Tensor): number {
  let s = 0;
  for (let i = 0; i < out.size; i++) s += out.data[i]! * w.data[i]!;
  return s;
}

export interface GradcheckOptions extends Tolerance {
  eps?: number;
  /** Inputs (by position) that are not differentiated (e.g. constants, labels encoded as tensors). */
  skip?: number[];
  /** At most this many elements per input are probed (evenly spaced). */
  maxProbes?: number;
  seed?: number;
}

export function gradcheck(name: string, f: Fn, inputs32: Tensor[], opts: GradcheckOptions = {}): void {
  const eps = opts.eps ?? 1e-6;
  const skip = new Set(opts.skip ?? []);
  withBackend(refBackend, () =>
    withFloat64(() => {
      const inputs = inputs32.map((t, i) => {
        const c = Tensor.from(t.data, t.shape);
        if (!skip.has(i)) c.requiresGrad = true;
        return c;
      });
      const out = f(...inputs);
      const w = weightsFor(out, opts.seed ?? 7);
      F.sum(F.mul(out, w)).backward();
      inputs.forEach((inp, i) => {
        if (skip.has(i)) return;
        assert.ok(inp.grad, `${name}: input ${i} got no gradient`);
        const probes = Math.min(inp.size, opts.maxProbes ?? 64);
        const numeric: number[] = [];
        const analytic: number[] = [];
        for (let p = 0; p < probes; p++) {
          const j = Math.floor((p * inp.size) / probes);
          const orig = inp.data[j]!;
          inp.data[j] = orig + eps;
          const plus = F.noGrad(() => weightedSum(f(...inputs), w));
          inp.data[j] = orig - eps;
          const minus = F.noGrad(() => weightedSum(f(...inputs), w));
          inp.data[j] = orig;
          numeric.push((plus - minus) / (2 * eps));
          analytic.push(inp.grad.data[j]!);
        }
        assertClose(analytic, numeric, { atol: opts.atol ?? 1e-6, rtol: opts.rtol ?? 1e-5 }, `${name}: d/d input ${i}`);
      });
    }),
  );
}

/** Forward and backward of f on both backends (float32), compared within `tol`. */
export function compareBackends(name: string, f: Fn, inputs32: Tensor[], tol: Tolerance = {}, skip: number[] = []): void {
  const run = (be: typeof nativeBackend) =>
    withBackend(be, () => {
      const inputs = inputs32.map((t, i) => {
        const c = t.clone();
        if (!skip.includes(i)) c.requiresGrad = true;
        return c;
      });
      const out = f(...inputs);
      const w = weightsFor(out, 11);
      F.sum(F.mul(out, w)).backward();
      return { out, grads: inputs.map((t) => t.grad) };
    });
  const nat = run(nativeBackend);
  const ref = run(refBackend);
  assertClose(nat.out.data, ref.out.data, tol, `${name}: forward native vs ref`);
  nat.grads.forEach((g, i) => {
    if (skip.includes(i)) return;
    assert.ok(g && ref.grads[i], `${name}: input ${i} got no gradient`);
    assertClose(g.data, ref.grads[i]!.data, tol, `${name}: gradient ${i} native vs ref`);
  });
}
