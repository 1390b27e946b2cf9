/** Top-1 / top-5 evaluation of a classifier over batches, without gradients. */
import { noGrad } from '../autograd/index.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';

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
      const logits = noGrad(() => model.forward(x));
      countHits(logits, y, counts);
      onBatch?.(counts);
    }
  } finally {
    model.train(wasTraining);
  }
  return counts;
}
