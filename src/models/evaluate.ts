/** Top-1 / top-5 evaluation of a classifier over batches, without gradients. */
import { inference } from '../autograd/index.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';

/**
 * The most images one inference forward takes: a larger batch is run in chunks of this size, so the memory of a
 * forward (every intermediate of a chunk) stays flat in the batch size and its buffers stay warm. The kernels'
 * arithmetic does not depend on the batch size, so the logits are the same bit for bit (test/models/evaluate.test.ts).
 */
export const FORWARD_CHUNK = 256;

/** model.forward(x) without gradients, in chunks of at most `chunk` images, as one logits tensor [N, C]. */
export function forwardChunked(model: Module, x: Tensor, chunk = FORWARD_CHUNK): Tensor {
  const n = x.shape[0]!;
  if (n <= chunk) return inference(() => model.forward(x));
  const per = x.size / n;
  const parts: Tensor[] = [];
  for (let at = 0; at < n; at += chunk) {
    const m = Math.min(chunk, n - at);
    parts.push(inference(() => model.forward(new Tensor(x.data.subarray(at * per, (at + m) * per), [m, ...x.shape.slice(1)]))));
  }
  const c = parts[0]!.size / parts[0]!.shape[0]!;
  const out = Tensor.empty([n, ...parts[0]!.shape.slice(1)]);
  let at = 0;
  for (const p of parts) {
    out.data.set(p.data, at * c);
    at += p.shape[0]!;
  }
  return out;
}

export interface EvalCounts {
  images: number;
  correct: number;
  correct5: number;
}

/** Adds to `counts` the hits of one batch of logits [N, C] against labels. */
export function countHits(logits: Tensor, labels: Int32Array, counts: EvalCounts): void {
  const [n, c] = logits.shape as [number, number];
  const d = logits.data;
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    const target = d[i * c + y]!;
    // Rank of the true class = number of classes scoring strictly higher (ties resolved in its favour, as argmax's
    // first-index rule does when the true class comes first).
    let higher = 0;
    for (let j = 0; j < c; j++) {
      const v = d[i * c + j]!;
      if (v > target || (v === target && j < y)) higher++;
    }
    if (higher === 0) counts.correct++;
    if (higher < 5) counts.correct5++;
  }
  counts.images += n;
}

export function evaluate(
  model: Module,
  batches: Iterable<{ x: Tensor; y: Int32Array }>,
  onBatch?: (counts: EvalCounts) => void,
): EvalCounts {
  const counts: EvalCounts = { images: 0, correct: 0, correct5: 0 };
  const wasTraining = model.training;
  model.eval();
  try {
    for (const { x, y } of batches) {
      const logits = forwardChunked(model, x);
      countHits(logits, y, counts);
      onBatch?.(counts);
    }
  } finally {
    model.train(wasTraining);
  }
  return counts;
}
