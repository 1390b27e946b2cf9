/**
 * Reverse-mode autograd. Every primitive op is defined once with defineOp({ name, forward, backward }): forward
 * computes the output and returns what backward needs; backward maps the output gradient to one gradient per
 * input (or null). Composite ops are plain functions of primitives and need no backward of their own.
 * The tape is the graph of GradNodes hanging off the output tensor; backward() walks it in reverse topological order.
 */
import { check, GranqError } from '../errors.js';
import { backend } from '../backend/index.js';
import { allocFloats, installBackward, releaseFloats, releasingScope, Tensor, zeroFloats, type GradNode } from '../tensor/tensor.js';
import { sameShape, shapeStr } from '../tensor/shape.js';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording a graph (evaluation, optimizer updates, data generation). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

let releasingDead = false;

/**
 * Runs fn as noGrad, and lets a model's forward hand each intermediate's buffer back to the allocator's pool as soon
 * as its last consumer has run (OnnxGraph does; layer code whose temporaries are locals needs nothing), so the memory
 * of an inference forward is that of its widest live set, not of every intermediate at once. Only for callers that
 * keep no intermediate (evaluation, prediction): a quantizer hook that stores the tensors it sees (probes) must run
 * under plain noGrad.
 */
export function inference<T>(fn: () => T): T {
  const prev = releasingDead;
  releasingDead = true;
  try {
    return noGrad(fn);
  } finally {
    releasingDead = prev;
  }
}

/**
 * A small forward run again and again (a teacher's logits at every training step): inference(), and at the end every
 * buffer allocated inside but the output's goes back to the pool (tensor.ts releasingScope), so the next step takes
 * them from there instead of fresh memory. Not for large batches: the forward's intermediates all stay alive until
 * it ends. Only where nothing keeps an intermediate: feature distillation's recorded activations need plain noGrad.
 */
export function recycled(fn: () => Tensor): Tensor {
  return releasingScope(() => inference(fn), (out) => [out.data]);
}

/** Whether dead intermediates may be released now: inside inference() and with no graph being recorded. */
export function releasingDeadIntermediates(): boolean {
  return releasingDead && !gradEnabled;
}

export interface BackwardArgs<I, A, S> {
  gy: Float32Array;
  /** gy belongs to this backward alone: an elementwise backward may write its input gradient over it and return it. */
  gyOwned: boolean;
  saved: S;
  /** needs[i]: a gradient for input i is wanted by this backward pass (see live() in runBackward). */
  needs: boolean[];
  inputs: I;
  attrs: A;
  out: Tensor;
}

/**
 * The op table: every primitive op's name and the type of its attrs. Each op family declares its own entries where
 * it defines the ops (`declare module '.../tape.js' { interface OpAttrs { conv2d: Conv2dAttrs } }`), so OpName is the
 * union of all of them; defineOp accepts only these names, and tables keyed by OpName (the ONNX emitters) must list
 * every op. Names are snake_case, PyTorch's where one exists.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface OpAttrs {}
export type OpName = keyof OpAttrs;

export interface OpSpec<K extends OpName, I extends readonly (Tensor | null)[], S> {
  name: K;
  forward(inputs: I, attrs: OpAttrs[K]): { out: Tensor; saved: S };
  backward(args: BackwardArgs<I, OpAttrs[K], S>): (Float32Array | null)[];
}

export type Op<K extends OpName, I extends readonly (Tensor | null)[]> = (inputs: I, attrs: OpAttrs[K]) => Tensor;

/** Every op defined so far, by name (the meta-test checks each has a reference case and a gradient check). */
export const OP_REGISTRY = new Map<OpName, OpSpec<OpName, never, never>>();

/** One primitive op call as a tracer sees it: the name, and the attrs of that op's type. */
export type OpCall = { [K in OpName]: { op: K; inputs: readonly (Tensor | null)[]; attrs: OpAttrs[K]; out: Tensor } }[OpName];

/** Sees every primitive op call with its attrs (graph export records a forward pass through it). */
export type OpTracer = (call: OpCall) => void;
let tracer: OpTracer | null = null;

/** Runs fn with `onOp` called after each primitive op (composites show up as their primitives). */
export function traceOps<T>(onOp: OpTracer, fn: () => T): T {
  const prev = tracer;
  tracer = onOp;
  try {
    return fn();
  } finally {
    tracer = prev;
  }
}

/** Time spent in one op's forward and backward calls (profileOps). */
export interface OpTime { op: string; calls: number; forwardMs: number; backwardMs: number }
let profile: Map<string, OpTime> | null = null;

/** Runs fn and reports the wall time of every primitive op's forward and backward inside it, by op name. */
export function profileOps(fn: () => void): OpTime[] {
  const prev = profile;
  const mine = new Map<string, OpTime>();
  profile = mine;
  try {
    fn();
  } finally {
    profile = prev;
  }
  return [...mine.values()].sort((a, b) => b.forwardMs + b.backwardMs - (a.forwardMs + a.backwardMs));
}

function opTime(op: string): OpTime {
  let t = profile!.get(op);
  if (!t) profile!.set(op, (t = { op, calls: 0, forwardMs: 0, backwardMs: 0 }));
  return t;
}

let finiteCheck = false;

/**
 * Turns the finite check on or off (GRANQ_CHECK_FINITE=1 in the CLI; PyTorch's detect_anomaly for NaN). While on,
 * every op's forward output and backward gradients are scanned, and the first non-finite value (NaN, ±Inf) throws a
 * GranqError naming the op, the pass and the shapes: an op that made it from finite values, or a leaf input (a
 * parameter, the data) that already held one, set outside the ops (an optimizer step, loaded values). Slower; for
 * finding where a diverging run first goes wrong, e.g. by resuming it from its last checkpoint with the check on.
 */
export function setFiniteCheck(on: boolean): void {
  finiteCheck = on;
}

/** Whether setFiniteCheck is on (optimizers check their gradients and updates then too). */
export function finiteCheckOn(): boolean {
  return finiteCheck;
}

/** The index of the first NaN or ±Inf in d, or -1. */
export function firstNonFinite(d: Float32Array): number {
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return i;
  return -1;
}

function checkForward(op: string, inputs: readonly (Tensor | null)[], out: Tensor): void {
  const at = firstNonFinite(out.data);
  if (at < 0) return;
  const shapes = inputs.map((t) => (t ? shapeStr(t.shape) : '-')).join(', ');
  const bad = inputs.findIndex((t) => t !== null && firstNonFinite(t.data) >= 0);
  if (bad < 0) {
    throw new GranqError(`finite check: op '${op}' forward made ${out.data[at]} (output ${shapeStr(out.shape)}, element ${at}) from finite inputs (${shapes})`);
  }
  const t = inputs[bad]!;
  throw new GranqError(`finite check: op '${op}' forward got ${t.data[firstNonFinite(t.data)]} in input ${bad} (${shapeStr(t.shape)}; inputs ${shapes}), ` +
    `${t.node === null ? 'a leaf (a parameter or the data): set outside the ops, e.g. by an optimizer step' : 'from an op run before the check was on'}`);
}

function checkBackward(op: string, gy: Float32Array, grads: readonly (Float32Array | null)[], inputs: readonly (Tensor | null)[], out: Tensor): void {
  const i = grads.findIndex((g) => g !== null && firstNonFinite(g) >= 0);
  if (i < 0) return;
  const from = firstNonFinite(gy) >= 0 ? 'a non-finite upstream gradient (the loss, or set outside the ops)' : 'a finite upstream gradient';
  throw new GranqError(`finite check: op '${op}' backward made ${grads[i]![firstNonFinite(grads[i]!)]} in the gradient of input ${i} ` +
    `(${inputs[i] ? shapeStr(inputs[i]!.shape) : '-'}; output ${shapeStr(out.shape)}) from ${from}`);
}

export function defineOp<K extends OpName, I extends readonly (Tensor | null)[], S>(spec: OpSpec<K, I, S>): Op<K, I> {
  check(!OP_REGISTRY.has(spec.name), `defineOp: '${spec.name}' is defined twice`);
  OP_REGISTRY.set(spec.name, spec as unknown as OpSpec<OpName, never, never>);
  return (inputs: I, attrs: OpAttrs[K]): Tensor => {
    const t0 = profile ? performance.now() : 0;
    const { out, saved } = spec.forward(inputs, attrs);
    if (profile) {
      const t = opTime(spec.name);
      t.calls++;
      t.forwardMs += performance.now() - t0;
    }
    if (tracer) tracer({ op: spec.name, inputs, attrs, out } as OpCall);
    if (finiteCheck) checkForward(spec.name, inputs, out);
    if (!gradEnabled) return out;
    if (!inputs.some((t) => t !== null && t.requiresGrad)) return out;
    const node: GradNode = {
      op: spec.name,
      inputs,
      backward: (gy, needs, gyOwned) => {
        if (finiteCheck) {
          const gyIn = gyOwned ? gy.slice() : gy;  // an owned gy may be overwritten by the input gradient
          const g = spec.backward({ gy, gyOwned, saved, needs, inputs, attrs, out });
          checkBackward(spec.name, gyIn, g, inputs, out);
          return g;
        }
        if (!profile) return spec.backward({ gy, gyOwned, saved, needs, inputs, attrs, out });
        const t0 = performance.now();
        const g = spec.backward({ gy, gyOwned, saved, needs, inputs, attrs, out });
        opTime(spec.name).backwardMs += performance.now() - t0;
        return g;
      },
    };
    out.requiresGrad = true;
    out.node = node;
    return out;
  };
}

/**
 * Runs fn (a backward pass) as if these tensors did not require grad: the pass neither enters their subgraphs nor
 * computes their gradients. One forward graph can so serve two backward passes with different targets, as
 * PyTorch's autograd.backward(inputs=...) does: e.g. a loss into the generator with the student's weights off, then
 * another into the student's weights with the generated images off.
 */
export function withoutGrad<T>(tensors: readonly Tensor[], fn: () => T): T {
  const prev = tensors.map((t) => t.requiresGrad);
  for (const t of tensors) t.requiresGrad = false;
  try {
    return fn();
  } finally {
    tensors.forEach((t, i) => { t.requiresGrad = prev[i]!; });
  }
}

/**
 * Hands the buffers of every intermediate tensor of these graphs (op outputs, not leaves) back to the allocator's
 * pool. Only for graphs whose tensors are all dead: a training iteration calls it at its end, after both backward
 * passes, so the next iteration reuses warm memory instead of allocating (and the GC freeing) ~100 MB per step.
 * A buffer that a leaf also views (a reshape of a parameter, a detached copy) is kept.
 */
export function releaseGraph(roots: readonly Tensor[]): void {
  const leafBuffers = new Set<ArrayBufferLike>();
  const inner = new Set<Float32Array>();
  const seen = new Set<Tensor>();
  const stack = [...roots];
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (t.node === null) {
      leafBuffers.add(t.data.buffer);
      continue;
    }
    inner.add(t.data);
    for (const i of t.node.inputs) if (i) stack.push(i);
  }
  const released = new Set<ArrayBufferLike>();
  for (const d of inner) {
    if (leafBuffers.has(d.buffer) || released.has(d.buffer)) continue;
    released.add(d.buffer);
    releaseFloats(d);
  }
}

/** The tensors below root that a gradient can reach, inputs before outputs (nothing below a switched-off tensor). */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: ResNet graphs are shallow, but generated graphs need not be.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (child && child.requiresGrad && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order; // inputs before outputs
}

function accumulate(dst: Float32Array, src: Float32Array): void {
  backend().axpby({ len: dst.length, alpha: 1, x: src, beta: 1, y: dst });
}

function runBackward(root: Tensor, grad?: Tensor): void {
  check(root.requiresGrad, 'backward: the tensor does not require grad (no trainable input reached it)');
  if (grad) {
    check(sameShape(grad.shape, root.shape), () => `backward: gradient shape ${shapeStr(grad.shape)} != ${shapeStr(root.shape)}`);
  } else {
    check(root.size === 1, () => `backward: implicit gradient needs a scalar, got shape ${shapeStr(root.shape)}`);
  }
  const grads = new Map<Tensor, Float32Array>();
  // Recyclable arrays (made by this pass) -> how many pending gradients hold them. An array held once ("owned") may
  // be summed into in place; any array is returned to the allocator's pool once its last holder consumed it. Arrays
  // not in the map (the caller's seed, a leaf's .grad) are never written or recycled.
  const holders = new Map<Float32Array, number>();
  const owned = (a: Float32Array) => holders.get(a) === 1;
  const consume = (a: Float32Array) => {
    const n = holders.get(a);
    if (n === undefined) return;
    if (n > 1) {
      holders.set(a, n - 1);
    } else {
      holders.delete(a);
      releaseFloats(a);
    }
  };
  const seed = grad ? grad.data : (() => { const g = zeroFloats(1); g[0] = 1; return g; })();
  grads.set(root, seed);

  const order = topoOrder(root);
  // Live: a trainable leaf, or an op output with a live input. Only live inputs get gradients, so an op whose
  // inputs were all switched off by withoutGrad after the forward (a quantized weight whose master weight is off)
  // costs nothing.
  const live = new Set<Tensor>();
  for (const t of order) {
    if (t.node === null ? t.requiresGrad : t.node.inputs.some((i) => i !== null && live.has(i))) live.add(t);
  }
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k]!;
    const g = grads.get(t);
    if (!g) continue;
    grads.delete(t);
    if (!live.has(t)) {
      consume(g); // the root, when withoutGrad switched off everything below it
      continue;
    }
    if (t.node === null) {
      // A leaf: accumulate into .grad like PyTorch. An owned array becomes the .grad itself (and leaves the pass).
      if (t.grad === null && owned(g)) {
        holders.delete(g);
        t.grad = new Tensor(g, t.shape);
      } else if (t.grad === null) {
        t.grad = new Tensor(copyFloats(g), t.shape);
        consume(g);
      } else {
        accumulate(t.grad.data, g);
        consume(g);
      }
      continue;
    }
    const inputs = t.node.inputs;
    const needs = inputs.map((i) => i !== null && live.has(i));
    const inputGrads = t.node.backward(g, needs, owned(g));
    // A fresh array (not g) handed to n inputs gets n holders; g handed on keeps its other holders plus these n
    // (add passes g to both inputs); g not handed on is consumed.
    const uses = new Map<Float32Array, number>();
    inputGrads.forEach((gi, i) => {
      if (gi && needs[i]) uses.set(gi, (uses.get(gi) ?? 0) + 1);
    });
    for (const [arr, n] of uses) {
      if (arr !== g) holders.set(arr, n);
      else if (holders.has(g)) holders.set(g, holders.get(g)! - 1 + n);
    }
    if (!uses.has(g)) consume(g);
    for (let i = 0; i < inputs.length; i++) {
      const inp = inputs[i];
      const gi = inputGrads[i];
      if (!inp || !needs[i] || !gi) continue;
      check(gi.length === inp.size, () => `backward of '${t.node!.op}': gradient ${i} has ${gi.length} elements, input has ${inp.size}`);
      const prev = grads.get(inp);
      if (!prev) {
        grads.set(inp, gi);
      } else if (owned(prev)) {
        accumulate(prev, gi);
        consume(gi);
      } else if (owned(gi)) {
        accumulate(gi, prev);
        grads.set(inp, gi);
        consume(prev);
      } else {
        const sum = copyFloats(prev);
        accumulate(sum, gi);
        holders.set(sum, 1);
        grads.set(inp, sum);
        consume(prev);
        consume(gi);
      }
    }
  }
}

/** A copy in a pooled buffer. */
function copyFloats(a: Float32Array): Float32Array {
  if (!(a instanceof Float32Array)) return (a as Float64Array).slice() as unknown as Float32Array; // float64 gradient checks
  const c = allocFloats(a.length);
  c.set(a);
  return c;
}

installBackward(runBackward);
