/**
 * Reverse-mode autograd. Every primitive op is defined once with defineOp({ name, forward, backward }): forward
 * computes the output and returns what backward needs; backward maps the output gradient to one gradient per
 * input (or null). Composite ops are plain functions of primitives and need no backward of their own.
 * The tape is the graph of GradNodes hanging off the output tensor; backward() walks it in reverse topological order.
 */
import { check } from '../errors.js';
import { backend } from '../backend/index.js';
import { installBackward, releaseFloats, Tensor, zeroFloats, type GradNode } from '../tensor/tensor.js';
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

export interface BackwardArgs<I, A, S> {
  gy: Float32Array;
  saved: S;
  /** needs[i]: input i requires a gradient. */
  needs: boolean[];
  inputs: I;
  attrs: A;
  out: Tensor;
}

export interface OpSpec<I extends readonly (Tensor | null)[], A, S> {
  name: string;
  forward(inputs: I, attrs: A): { out: Tensor; saved: S };
  backward(args: BackwardArgs<I, A, S>): (Float32Array | null)[];
}

export type Op<I extends readonly (Tensor | null)[], A> = (inputs: I, attrs: A) => Tensor;

/** Every op defined so far, by name (the meta-test checks each has a reference case and a gradient check). */
export const OP_REGISTRY = new Map<string, OpSpec<never, never, never>>();

export function defineOp<I extends readonly (Tensor | null)[], A, S>(spec: OpSpec<I, A, S>): Op<I, A> {
  check(!OP_REGISTRY.has(spec.name), `defineOp: '${spec.name}' is defined twice`);
  OP_REGISTRY.set(spec.name, spec as unknown as OpSpec<never, never, never>);
  return (inputs: I, attrs: A): Tensor => {
    const { out, saved } = spec.forward(inputs, attrs);
    if (!gradEnabled) return out;
    const needs = inputs.map((t) => t !== null && t.requiresGrad);
    if (!needs.some(Boolean)) return out;
    const node: GradNode = {
      op: spec.name,
      inputs,
      backward: (gy) => spec.backward({ gy, saved, needs, inputs, attrs, out }),
    };
    out.requiresGrad = true;
    out.node = node;
    return out;
  };
}

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
  // Arrays that exactly one pending gradient holds (see below); all others are copied before being summed into.
  const owned = new Set<Float32Array>();
  const seed = grad ? grad.data : (() => { const g = zeroFloats(1); g[0] = 1; return g; })();
  grads.set(root, seed);

  const order = topoOrder(root);
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k]!;
    const g = grads.get(t);
    if (!g) continue;
    grads.delete(t);
    if (t.node === null) {
      // A leaf: accumulate into .grad like PyTorch.
      if (t.grad === null) t.grad = new Tensor(owned.has(g) ? g : g.slice(), t.shape);
      else accumulate(t.grad.data, g);
      continue;
    }
    const inputGrads = t.node.backward(g);
    const inputs = t.node.inputs;
    // Ownership: an array held by exactly one pending gradient may be summed into in place and, once consumed,
    // recycled. A fresh array (not g) handed to one input becomes owned; g handed on to one input stays owned;
    // any array handed to two or more inputs (add passes g to both) is shared and never written or recycled.
    const uses = new Map<Float32Array, number>();
    inputGrads.forEach((gi, i) => {
      if (gi && inputs[i]?.requiresGrad) uses.set(gi, (uses.get(gi) ?? 0) + 1);
    });
    const gWasOwned = owned.has(g);
    owned.delete(g);
    for (const [arr, n] of uses) {
      if (n === 1 && (arr !== g || gWasOwned)) owned.add(arr);
      else owned.delete(arr);
    }
    if (gWasOwned && !uses.has(g)) releaseFloats(g);
    for (let i = 0; i < inputs.length; i++) {
      const inp = inputs[i];
      const gi = inputGrads[i];
      if (!inp || !inp.requiresGrad || !gi) continue;
      check(gi.length === inp.size, () => `backward of '${t.node!.op}': gradient ${i} has ${gi.length} elements, input has ${inp.size}`);
      const prev = grads.get(inp);
      if (!prev) {
        grads.set(inp, gi);
      } else if (owned.has(prev)) {
        accumulate(prev, gi);
        if (owned.delete(gi)) releaseFloats(gi);
      } else if (owned.has(gi)) {
        accumulate(gi, prev);
        grads.set(inp, gi);
      } else {
        const sum = prev.slice();
        accumulate(sum, gi);
        owned.add(sum);
        grads.set(inp, sum);
      }
    }
  }
}

installBackward(runBackward);
