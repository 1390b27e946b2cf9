/**
 * Tensor: a contiguous Float32Array with a shape, plus what autograd needs (requiresGrad, grad, the node that made
 * it). Tensors are immutable in shape; data may be updated in place by optimizers and quantizer state only.
 */
import { check } from '../errors.js';
import type { Rng } from './rng.js';
import { checkShape, numel, shapeStr, type Shape } from './shape.js';

/** The recorded operation that produced a tensor (see autograd/tape.ts). */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly (Tensor | null)[];
  /**
   * One gradient per input (null where not needed), given the gradient of the output, which inputs need one, and
   * whether gradOut may be overwritten (no other pending gradient holds it).
   */
  backward(gradOut: Float32Array, needs: boolean[], gradOwned: boolean): (Float32Array | null)[];
}

let float64Mode = false;

/**
 * Allocates an uninitialised float buffer (the caller overwrites every element). In float64 mode, used only by
 * gradient checks on the reference backend, buffers are Float64Array behind the Float32Array type.
 */
export function allocFloats(n: number): Float32Array {
  if (float64Mode) return new Float64Array(n) as unknown as Float32Array;
  if (n < 1024) return new Float32Array(n);
  let a = pool.get(n)?.pop();
  if (a) {
    pooledFloats -= n;
    poolHits++;
  } else {
    poolMisses++;
    // allocUnsafeSlow skips the zero fill that new Float32Array would pay on every activation.
    const buf = Buffer.allocUnsafeSlow(n * 4);
    a = new Float32Array(buf.buffer, buf.byteOffset, n);
  }
  scopes.at(-1)?.add(a);
  return a;
}

/** The buffers allocFloats gave out inside each running releasingScope (innermost last) and not released since. */
const scopes: Set<Float32Array>[] = [];

/**
 * Runs fn and then hands back to the pool every buffer allocFloats gave out during it and nobody released, except
 * those that share memory with `kept(result)` (they pass to an enclosing scope, if any). For callers whose fn keeps
 * no intermediate anywhere (a forward whose only product is its output); if fn throws, nothing is released.
 */
export function releasingScope<T>(fn: () => T, kept: (result: T) => readonly Float32Array[]): T {
  const scope = new Set<Float32Array>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const keep = new Set(kept(result).map((a) => a.buffer));
  for (const a of scope) {
    if (keep.has(a.buffer)) scopes.at(-1)?.add(a);
    else releaseFloats(a);
  }
  return result;
}

/**
 * n bytes for a kernel that writes every one (activation codes): uninitialised like allocFloats' misses. A zero-filled
 * `new Uint8Array(n)` of a few MB costs page faults on every call (measured: 3 ms for 1 MB, against 0.1 ms here).
 */
export function allocBytes(n: number): Uint8Array {
  const buf = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(buf.buffer, buf.byteOffset, n);
}

/**
 * Buffers whose owner knows they are dead (autograd's consumed gradients) come back here and are handed out again
 * by allocFloats: a training step then allocates far fewer multi-megabyte arrays, which saves malloc and GC time.
 * The pool is bounded; beyond the bound, the buffers of the sizes least recently released are left to the garbage
 * collector.
 */
const pool = new Map<number, Float32Array[]>();
let pooledFloats = 0;
const MAX_POOLED_FLOATS = 64 << 20; // 256 MiB

let poolHits = 0;
let poolMisses = 0;

/** Counts of allocFloats calls (of >= 1024 floats) served from the pool and not, and the floats pooled now. */
export function poolStats(): { hits: number; misses: number; pooledFloats: number } {
  return { hits: poolHits, misses: poolMisses, pooledFloats };
}

export function releaseFloats(buf: Float32Array): void {
  for (const s of scopes) s.delete(buf);
  const n = buf.length;
  if (float64Mode || n < 1024 || n > MAX_POOLED_FLOATS) return;
  if (buf.byteOffset !== 0 || buf.buffer.byteLength !== n * 4) return; // a view into a larger buffer
  // The sizes in the order last released (the map's order): over the bound, the least recently released go first,
  // so that an evaluation's chunk-sized buffers do not keep a training step's out of the pool for good.
  const list = pool.get(n) ?? [];
  pool.delete(n);
  pool.set(n, list);
  list.push(buf);
  pooledFloats += n;
  for (const [size, l] of pool) {
    if (pooledFloats <= MAX_POOLED_FLOATS) break;
    while (l.length > 0 && pooledFloats > MAX_POOLED_FLOATS) {
      l.shift();
      pooledFloats -= size;
    }
    if (l.length === 0) pool.delete(size);
  }
}

export function zeroFloats(n: number): Float32Array {
  return float64Mode ? (new Float64Array(n) as unknown as Float32Array) : new Float32Array(n);
}

/** Runs fn with every new buffer in float64 (gradient checks on the reference backend). */
export function withFloat64<T>(fn: () => T): T {
  const prev = float64Mode;
  float64Mode = true;
  try {
    return fn();
  } finally {
    float64Mode = prev;
  }
}

type BackwardHook = (t: Tensor, grad?: Tensor) => void;
let backwardHook: BackwardHook | null = null;
/** autograd/tape.ts installs the backward pass here (tensor.ts must not import autograd). */
export function installBackward(fn: BackwardHook): void {
  backwardHook = fn;
}

export class Tensor {
  readonly shape: readonly number[];
  data: Float32Array;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  node: GradNode | null = null;

  constructor(data: Float32Array, shape: Shape, requiresGrad = false) {
    checkShape(shape);
    check(data.length === numel(shape), () => `Tensor: data has ${data.length} elements, shape ${shapeStr(shape)} needs ${numel(shape)}`);
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.requiresGrad = requiresGrad;
  }

  static empty(shape: Shape): Tensor {
    checkShape(shape);
    return new Tensor(allocFloats(numel(shape)), shape);
  }
  static zeros(shape: Shape): Tensor {
    checkShape(shape);
    return new Tensor(zeroFloats(numel(shape)), shape);
  }
  static full(shape: Shape, value: number): Tensor {
    const t = Tensor.empty(shape);
    t.data.fill(value);
    return t;
  }
  static ones(shape: Shape): Tensor {
    return Tensor.full(shape, 1);
  }
  static scalar(value: number): Tensor {
    return Tensor.full([], value);
  }
  /** Copies `values` (any numeric array-like) into a new tensor. */
  static from(values: ArrayLike<number>, shape: Shape = [values.length]): Tensor {
    checkShape(shape);
    check(values.length === numel(shape), () => `Tensor.from: ${values.length} values for shape ${shapeStr(shape)}`);
    const data = allocFloats(values.length);
    for (let i = 0; i < values.length; i++) data[i] = values[i]!;
    return new Tensor(data, shape);
  }
  static randn(shape: Shape, rng: Rng, std = 1, mean = 0): Tensor {
    const t = Tensor.empty(shape);
    rng.fillNormal(t.data, mean, std);
    return t;
  }
  static uniform(shape: Shape, rng: Rng, lo = 0, hi = 1): Tensor {
    const t = Tensor.empty(shape);
    rng.fillUniform(t.data, lo, hi);
    return t;
  }

  get size(): number {
    return this.data.length;
  }
  get ndim(): number {
    return this.shape.length;
  }
  dim(i: number): number {
    const a = i < 0 ? i + this.shape.length : i;
    check(a >= 0 && a < this.shape.length, () => `dim: axis ${i} out of range for shape ${shapeStr(this.shape)}`);
    return this.shape[a]!;
  }

  item(): number {
    check(this.size === 1, () => `item: expected a tensor with one element, got shape ${shapeStr(this.shape)}`);
    return this.data[0]!;
  }
  toArray(): number[] {
    return Array.from(this.data);
  }

  /** A copy of the data, outside the graph. */
  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape);
  }
  /** The same data, outside the graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }
  /** Marks a leaf as trainable (chainable). */
  requireGrad(on = true): this {
    check(this.node === null, 'requireGrad: only leaf tensors can be marked trainable');
    this.requiresGrad = on;
    return this;
  }

  /** Reverse-mode differentiation from this tensor (a scalar unless `grad` is given). */
  backward(grad?: Tensor): void {
    check(backwardHook !== null, 'backward: autograd is not loaded');
    backwardHook(this, grad);
  }

  toString(): string {
    const head = Array.from(this.data.subarray(0, 6)).map((v) => v.toPrecision(4));
    return `Tensor${shapeStr(this.shape)}(${head.join(', ')}${this.size > 6 ? ', ...' : ''})`;
  }
}
