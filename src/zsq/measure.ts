/**
 * What a run measures besides its losses: test top-1 (when a test set is available) and, always, the agreement of
 * a student with the teacher (argmax match rate) on held-out synthetic images. Neither ever moves a quantizer's
 * range: every activation observer is off while measuring.
 */
import { noGrad } from '../autograd/index.js';
import { batches, type CifarData } from '../data/cifar.js';
import { argmaxRows, evaluate, forwardChunked, mcnemarP, pairedCounts, type PairedCounts } from '../models/evaluate.js';
import type { Module } from '../nn/module.js';
import { Rng } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Generator } from './generator.js';
import { withObserversOff } from '../quant/index.js';

/** Seed offset of the held-out synthetic set: a stream the training RNG (seeded `seed`) never draws. */
export const HELD_OUT_SEED_OFFSET = 1_000_003;

export interface TestSet {
  data: CifarData;
  mean: readonly number[];
  std: readonly number[];
  batch: number;
}

export function testTop1(model: Module, t: TestSet): number {
  const c = withObserversOff(model, () => evaluate(model, batches(t.data, { batchSize: t.batch, mean: t.mean, std: t.std })));
  return c.correct / c.images;
}

/** The student against the FP teacher on the test set, image by image (result.json's vs_fp). */
export interface VsFp {
  images: number;
  /** Test images the student gets right and the teacher wrong. */
  student_only: number;
  /** Test images the teacher gets right and the student wrong. */
  fp_only: number;
  /** Exact two-sided McNemar test of equal accuracy on these discordant images. */
  mcnemar_p: number;
}

/** The student (a) and the teacher (b) on the test set, image by image (observers off, as testTop1). */
export function testPaired(student: Module, teacher: Module, t: TestSet): PairedCounts {
  return withObserversOff(student, () => pairedCounts(student, teacher, batches(t.data, { batchSize: t.batch, mean: t.mean, std: t.std })));
}

export function vsFp(c: PairedCounts): VsFp {
  return { images: c.a.images, student_only: c.aOnly, fp_only: c.bOnly, mcnemar_p: Number(mcnemarP(c.aOnly, c.bOnly).toPrecision(4)) };
}

/**
 * `n` images from the generator, in batches of `batch`, drawn with their own RNG. The generator runs as it does in
 * training (train mode: batch statistics); its BN running statistics are restored afterwards, so this has no
 * effect on it.
 */
export function heldOutImages(gen: Generator, n: number, batch: number, seed: number): Tensor[] {
  const saved = [...gen.stateDict()].map(([, t]) => [t, t.data.slice()] as const);
  const rng = new Rng(seed);
  const out: Tensor[] = [];
  try {
    for (let done = 0; done < n; done += batch) out.push(noGrad(() => gen.sample(Math.min(batch, n - done), rng).images));
  } finally {
    for (const [t, d] of saved) t.data.set(d);
  }
  return out;
}

/** The teacher's predicted classes on the images (computed once, shared by every student compared). */
export function predictions(model: Module, images: Tensor[]): Int32Array[] {
  const was = model.training;
  model.eval();
  try {
    return withObserversOff(model, () => images.map((x) => argmaxRows(forwardChunked(model, x))));
  } finally {
    model.train(was);
  }
}

/** Fraction of images on which the student's argmax equals the teacher's (a NaN row, no prediction, never does). */
export function agreement(student: Module, images: Tensor[], teacherPreds: Int32Array[]): number {
  const preds = predictions(student, images);
  let same = 0;
  let n = 0;
  preds.forEach((p, b) => {
    for (let i = 0; i < p.length; i++) if (p[i]! >= 0 && p[i] === teacherPreds[b]![i]) same++;
    n += p.length;
  });
  return n ? same / n : 0;
}
