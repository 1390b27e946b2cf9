/**
 * Generic deep copy of a Module tree: new objects with the same prototypes, every own field copied recursively
 * (shared references stay shared: a field and the child/param map entry naming the same object map to one copy),
 * tensors get fresh data and no graph. Functions (hooks) are shared.
 */
import { Tensor } from '../tensor/tensor.js';
import type { Module } from './module.js';

function copy(v: unknown, memo: Map<object, unknown>): unknown {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return v;
  if (typeof v === 'function') return v;
  const seen = memo.get(v);
  if (seen !== undefined) return seen;
  if (v instanceof Tensor) {
    const t = new Tensor(v.data.slice(), v.shape, v.requiresGrad);
    memo.set(v, t);
    return t;
  }
  if (ArrayBuffer.isView(v)) {
    const c = (v as unknown as Float32Array).slice();
    memo.set(v, c);
    return c;
  }
  if (v instanceof Map) {
    const m = new Map();
    memo.set(v, m);
    for (const [k, x] of v) m.set(copy(k, memo), copy(x, memo));
    return m;
  }
  if (v instanceof Set) {
    const s = new Set();
    memo.set(v, s);
    for (const x of v) s.add(copy(x, memo));
    return s;
  }
  if (Array.isArray(v)) {
    const a: unknown[] = [];
    memo.set(v, a);
    for (const x of v) a.push(copy(x, memo));
    return Object.isFrozen(v) ? Object.freeze(a) : a;
  }
  const o = Object.create(Object.getPrototypeOf(v)) as object;
  memo.set(v, o);
  for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(v))) {
    if ('value' in d) d.value = copy(d.value, memo);
    Object.defineProperty(o, k, d);
  }
  return o;
}

export function cloneModule<M extends Module>(m: M): M {
  return copy(m, new Map()) as M;
}
