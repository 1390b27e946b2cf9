/** Top-1 / top-5 evaluation of a classifier over batches, without gradients. */
import { inference, traceOps } from '../autograd/index.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';

/**
 * The most images one inference forward takes: a larger batch is run in chunks, so the memory of a forward (every
 * intermediate of a chunk) stays flat in the batch size and its buffers stay warm. The kernels' arithmetic does not
 * depend on the batch size, so the logits are the same bit for bit (test/models/evaluate.test.ts).
 */
export const FORWARD_CHUNK = 256;

/**
 * The largest intermediate of one chunk stays within this many floats (16 MiB): a model whose widest activation
 * holds more than CHUNK_FLOATS / FORWARD_CHUNK floats per image (ResNet-20's 16 x 32 x 32 fits exactly) runs in
 * smaller chunks, down to MIN_CHUNK images.
 */
export const CHUNK_FLOATS = 4 << 20;
export const MIN_CHUNK = 16;

/** Chunk sizes already chosen, per model and per input size of one image. */
const CHUNKS = new WeakMap<Module, Map<number, number>>();

/**
 * The chunk for `model` on images of `per` floats: FORWARD_CHUNK, or fewer where the model's largest intermediate
 * per image (seen on one forward of the first image of x, once per model and image size) would pass CHUNK_FLOATS.
 * That forward changes nothing (inference, and evaluation runs with every activation observer off).
 */
export function chunkFor(model: Module, x: Tensor): number {
  const n = x.shape[0]!;
  const per = x.size / n;
  let byModel = CHUNKS.get(model);
  if (!byModel) CHUNKS.set(model, (byModel = new Map()));
  let chunk = byModel.get(per);
  if (chunk === undefined) {
    let widest = per;
    const one = new Tensor(x.data.subarray(0, per), [1, ...x.shape.slice(1)]);
    traceOps((call) => { widest = Math.max(widest, call.out.size); }, () => inference(() => model.forward(one)));
    chunk = Math.max(MIN_CHUNK, Math.min(FORWARD_CHUNK, Math.floor(CHUNK_FLOATS / widest)));
    byModel.set(per, chunk);
  }
  return chunk;
}

/**
 * model.forward(x) without gradients, in chunks of at most `chunk` images (default: chunkFor's), as one logits
 * tensor [N, C].
 */
export function forwardChunked(model: Module, x: Tensor, chunk?: number): Tensor {
  const n = x.shape[0]!;
  if (n <= MIN_CHUNK && chunk === undefined) return inference(() => model.forward(x));
  chunk ??= chunkFor(model, x);
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

/**
 * Rank of the true class y in row i of logits [N, C]: the number of classes scoring strictly higher, ties resolved
 * in its favour only where argmax's first-index rule would (the true class comes first). 0 = a top-1 hit. A row with
 * a NaN logit predicts nothing: rank C, neither a top-1 nor a top-5 hit (NaN compares false both ways, so without this
 * a diverged model whose logits are all NaN would score every image as a hit).
 */
function trueRank(d: Float32Array, c: number, i: number, y: number): number {
  const target = d[i * c + y]!;
  let higher = 0;
  for (let j = 0; j < c; j++) {
    const v = d[i * c + j]!;
    if (Number.isNaN(v)) return c;
    if (v > target || (v === target && j < y)) higher++;
  }
  return higher;
}

/**
 * Each row's predicted class of logits [N, C]: the first index of the row's maximum (trueRank's rule: argmax is y
 * exactly when y's rank is 0), or -1 for a row with a NaN logit, which predicts nothing.
 */
export function argmaxRows(logits: Tensor): Int32Array {
  const [n, c] = logits.shape as [number, number];
  const d = logits.data;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 0; j < c && best >= 0; j++) {
      const v = d[i * c + j]!;
      if (Number.isNaN(v)) best = -1;
      else if (v > d[i * c + best]!) best = j;
    }
    out[i] = best;
  }
  return out;
}

/** Adds to `counts` the hits of one batch of logits [N, C] against labels. */
export function countHits(logits: Tensor, labels: Int32Array, counts: EvalCounts): void {
  const [n, c] = logits.shape as [number, number];
  for (let i = 0; i < n; i++) {
    const higher = trueRank(logits.data, c, i, labels[i]!);
    if (higher === 0) counts.correct++;
    if (higher < 5) counts.correct5++;
  }
  counts.images += n;
}

/**
 * Two models on the same labelled images: each one's counts (as `evaluate` gives them), and the discordant images
 * (a right where b is wrong, and the reverse), whose split is what a difference in accuracy between the two rests on.
 */
export interface PairedCounts {
  a: EvalCounts;
  b: EvalCounts;
  aOnly: number;
  bOnly: number;
}

/** Models a and b (evaluation mode, as `evaluate`) on the same batches, each image forwarded once per model. */
export function pairedCounts(
  a: Module,
  b: Module,
  batches: Iterable<{ x: Tensor; y: Int32Array }>,
  onBatch?: (counts: PairedCounts) => void,
): PairedCounts {
  const out: PairedCounts = { a: { images: 0, correct: 0, correct5: 0 }, b: { images: 0, correct: 0, correct5: 0 }, aOnly: 0, bOnly: 0 };
  const was = [a.training, b.training];
  a.eval();
  b.eval();
  try {
    for (const { x, y } of batches) {
      const la = forwardChunked(a, x);
      const lb = forwardChunked(b, x);
      countHits(la, y, out.a);
      countHits(lb, y, out.b);
      const c = la.shape[1]!;
      for (let i = 0; i < y.length; i++) {
        const ha = trueRank(la.data, c, i, y[i]!) === 0;
        const hb = trueRank(lb.data, c, i, y[i]!) === 0;
        if (ha && !hb) out.aOnly++;
        if (hb && !ha) out.bOnly++;
      }
      onBatch?.(out);
    }
  } finally {
    a.train(was[0]);
    b.train(was[1]);
  }
  return out;
}

/**
 * Exact two-sided McNemar test: if the two models were equally accurate, each discordant image would be a fair
 * coin (a right or b right); the probability of a split at least as uneven as aOnly : bOnly. 1 when they never
 * differ.
 */
export function mcnemarP(aOnly: number, bOnly: number): number {
  const n = aOnly + bOnly;
  const k = Math.min(aOnly, bOnly);
  if (n === 0 || 2 * k === n) return 1;
  // P(X <= k) for X ~ Binomial(n, 1/2), the pmf built up in log space (n may be thousands).
  let logPmf = -n * Math.LN2; // P(X = 0)
  let tail = 0;
  for (let i = 0; i <= k; i++) {
    tail += Math.exp(logPmf);
    logPmf += Math.log((n - i) / (i + 1));
  }
  return Math.min(1, 2 * tail);
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

/** One line for a paired comparison: "a right where b is wrong: 41 images, the reverse: 46 (exact McNemar p = 0.67)". */
export function pairedLine(aOnly: number, bOnly: number, p: number, a: string, b: string): string {
  return `${a} right where ${b} is wrong: ${aOnly} images, the reverse: ${bOnly} (exact McNemar p = ${p.toPrecision(2)})`;
}
