/**
 * One zero-shot QAT run (AdaDFQ/GranQ trainer, zsq-report A.6): per iteration a generator step through the frozen
 * teacher and the student, then (after the warm-up epochs) a student step on the detached images.
 * Teacher and student both stay in eval mode (student BN uses the teacher's running statistics; its affine
 * parameters and weights train). The state (generator, student, both optimizers, RNG, epoch) round-trips through
 * state()/restore() so an interrupted run resumes bit for bit.
 */
import * as F from '../autograd/index.js';
import { loadFlatStateDict, type Module } from '../nn/module.js';
import { Adam, cosineLr, loadOptimizerState, multiStepLr, optimizerState, SGD } from '../optim/index.js';
import { Rng, type RngState } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import { cutMixBatch, lowPassBatch, mirrorRows, shiftFlipBatch } from '../data/augment.js';
import type { ZsqConfig } from './config.js';
import { Generator } from './generator.js';
import { agreementLoss, BnsLoss, disagreementLoss, entropyKdLoss, FeatureKdLoss, klKdLoss, marginLoss } from './losses.js';

export interface IterationLosses {
  /** null: not computed (the generator is frozen and the student learns on its own copies of the images: see
   * studentOnly). */
  generator: number | null;
  /** null: not computed (the generator's loss does not read the student: see generatorReadsStudent; or studentOnly). */
  margin: number | null;
  ds: number | null;
  as: number | null;
  bns: number | null;
  student: number | null;
}

export interface TrainerHooks {
  /** Called before each epoch (e.g. the `layer` baseline observes activation ranges only during warm-up). */
  onEpochStart?(epoch: number, student: Module): void;
}

/**
 * cfg.kdMirror's target: the mean of the teacher's logits `t` on images x and its logits on x mirrored left to right
 * (no gradient; the mirrored forward's intermediates go back to the pool).
 */
export function mirrorAveraged(teacher: Module, t: Tensor, x: Tensor): Tensor {
  const xm = new Tensor(mirrorRows(x.data, x.shape.at(-1)!), x.shape);
  return F.noGrad(() => F.scale(F.add(t.detach(), F.recycled(() => teacher.forward(xm))), 0.5));
}

export class ZsqTrainer {
  readonly generator: Generator;
  readonly optG: Adam;
  readonly optS: SGD;
  readonly rng: Rng;
  epoch = 0;
  /** Iterations already done in the current epoch (non-zero only after an interruption). */
  iter = 0;
  private readonly bns: BnsLoss;
  /** cfg.featureKd: the BN-input recorder of both networks. */
  private readonly featureKd: FeatureKdLoss | null;
  private readonly studentParams: Tensor[];
  /** The student's starting parameters (the teacher's), for cfg.anchor; taken before any restore. */
  private readonly anchorTo: Float32Array[] | null;
  /** cfg.ema: the running average of the student's parameters (starting at the teacher's), one array per parameter. */
  private readonly average: Float32Array[] | null;

  constructor(readonly teacher: Module, readonly student: Module, readonly numClasses: number, readonly cfg: ZsqConfig,
    private readonly hooks: TrainerHooks = {}) {
    this.rng = new Rng(cfg.seed);
    this.generator = new Generator(numClasses, { rng: this.rng });
    this.generator.train();
    teacher.eval();
    for (const p of teacher.parameters()) p.requiresGrad = false;
    student.eval();
    this.studentParams = student.parameters();
    this.anchorTo = cfg.anchor ? this.studentParams.map((p) => p.data.slice()) : null;
    this.average = cfg.ema !== undefined ? this.studentParams.map((p) => p.data.slice()) : null;
    this.bns = new BnsLoss(teacher);
    this.featureKd = cfg.featureKd ? new FeatureKdLoss(teacher, student) : null;
    this.optG = new Adam(this.generator.parameters(), { lr: cfg.lrGenerator, betas: cfg.generatorBetas });
    this.optS = new SGD(this.studentParams, {
      lr: cfg.lrStudent, momentum: cfg.momentum, weightDecay: cfg.weightDecay, nesterov: cfg.nesterov,
    });
  }

  get studentTrains(): boolean {
    return this.epoch >= this.cfg.warmupEpochs;
  }

  /**
   * Whether the generator's loss depends on the student: through the margin loss (unless its bounds are 0 and 1, where
   * the normalised entropy never leaves them) or L_ds/L_as. The BNS-only generator (plus-cifar10) does not.
   */
  get generatorReadsStudent(): boolean {
    const c = this.cfg;
    return c.marginLower > 0 || c.marginUpper < 1 || (c.beta !== 0 && (c.alphaDs !== 0 || c.alphaAs !== 0));
  }

  get generatorTrains(): boolean {
    return this.cfg.generatorEpochs === undefined || this.epoch < this.cfg.generatorEpochs;
  }

  /**
   * Whether an iteration is the student step alone: the generator is frozen (cfg.generatorEpochs) and the student
   * learns on its own copies of the images (cfg.augment, lowPass or cutmix), with the teacher run again on those. The
   * teacher's and the student's passes on the generator's images would then feed only the generator's loss, which
   * nothing reads, so they are not run: the student's update is the same.
   */
  get studentOnly(): boolean {
    return !this.generatorTrains && this.studentTrains && this.ownImages;
  }

  beginEpoch(): void {
    this.optG.lr = multiStepLr(this.cfg.lrGenerator, this.epoch, this.cfg.milestones, this.cfg.lrGamma);
    this.optS.lr = this.cfg.studentSchedule === 'cosine'
      ? cosineLr(this.cfg.lrStudent, this.epoch, this.cfg.epochs)
      : multiStepLr(this.cfg.lrStudent, this.epoch, this.cfg.studentMilestones ?? this.cfg.milestones, this.cfg.lrGamma);
    this.hooks.onEpochStart?.(this.epoch, this.student);
  }

  /**
   * One iteration. The released trainer runs the teacher once and the student twice: again for the student step, on
   * images.detach() with the teacher's output detached; the (not yet updated) student gives the same output on the
   * same images. Here the student runs once and the one graph serves two backward passes: the generator loss into
   * the generator (the student's weights switched off, as PyTorch's zero_grad discards their gradients), then the
   * student loss into the student's weights (the images switched off, as images.detach()). Same numbers, one
   * student forward fewer.
   */
  iteration(): IterationLosses {
    const c = this.cfg;
    if (this.studentOnly) {
      // The generator's pass keeps its graph only so that releaseGraph hands its buffers back to the pool (a pass
      // without one allocates afresh each iteration: slower).
      const { images, labels } = this.generator.sample(c.batch, this.rng);
      const lossS = this.studentStep(images, labels, null);
      const losses = { generator: null, margin: null, ds: null, as: null, bns: null, student: lossS.item() };
      F.releaseGraph([lossS, images]);
      return losses;
    }
    const trainStudent = this.studentTrains;
    const { images, labels } = this.generator.sample(c.batch, this.rng);

    // With cfg.augment, cfg.lowPass or cfg.cutmix the student step runs on its own forward (of its own images), so
    // this one needs no weight gradients.
    const ownImages = this.ownImages;
    const tap = this.tapper(trainStudent);

    this.bns.active = true;
    this.bns.reset();
    const t = tap('teacher', !ownImages, () => this.teacher.forward(images));
    this.bns.active = false;
    // The student's forward on the generator's images serves the generator's loss and, without own images, the
    // student step. When neither needs it, it is not run (nor its backward to the images): the generator's update is
    // the same, since the terms it would feed have weight 0, and margin, ds and as are not computed.
    let s: Tensor | null = null;
    if (this.generatorReadsStudent || (trainStudent && !ownImages)) {
      for (const p of this.studentParams) p.requiresGrad = trainStudent && !ownImages;
      s = tap('student', !ownImages, () => this.student.forward(images));
      for (const p of this.studentParams) p.requiresGrad = true;
    }

    // Generator step.
    const bns = this.bns.value();
    const margin = s && marginLoss(t, s, { lower: c.marginLower, upper: c.marginUpper });
    const ds = s && disagreementLoss(t, s, labels);
    const as = s && agreementLoss(t, s, labels);
    const lossG = margin && ds && as
      ? F.add(F.add(margin, F.scale(F.add(F.scale(ds, c.alphaDs), F.scale(as, c.alphaAs)), c.beta)), F.scale(bns, c.gamma))
      : F.scale(bns, c.gamma);
    if (this.generatorTrains) {
      this.optG.zeroGrad();
      F.withoutGrad(this.studentParams, () => lossG.backward());
      this.optG.step();
    }

    // Student step on the detached images (and the teacher's logits on them, which do not depend on the generator
    // step).
    const lossS = trainStudent ? this.studentStep(images, labels, ownImages ? null : { t: t.detach(), s: s! }) : null;
    const losses = { generator: lossG.item(), margin: margin?.item() ?? null, ds: ds?.item() ?? null, as: as?.item() ?? null, bns: bns.item(), student: lossS?.item() ?? null };
    F.releaseGraph(lossS ? [lossG, lossS] : [lossG]);
    return losses;
  }

  /** cfg.augment, cfg.lowPass or cfg.cutmix: the student step runs on its own copies of the generator's images. */
  private get ownImages(): boolean {
    const c = this.cfg;
    return (c.augment ?? 0) > 0 || c.lowPass !== undefined || c.cutmix !== undefined;
  }

  /** cfg.featureKd: records the BN inputs of the two forward passes the student loss is computed on. */
  private tapper(trainStudent: boolean): <T>(side: 'teacher' | 'student', studentPass: boolean, fn: () => T) => T {
    const fk = trainStudent ? this.featureKd : null;
    return (side, studentPass, fn) => (fk && studentPass ? fk.record(side, fn) : fn());
  }

  /**
   * The student's update on the generator's images: on the teacher's and the student's logits on them (`given`), or,
   * with own images (given null), on low-passed, shifted and mirrored, and/or CutMixed copies of them (cfg.lowPass,
   * then cfg.augment, then cfg.cutmix) with both networks run again on the copies. Returns the student loss.
   */
  private studentStep(images: Tensor, labels: Int32Array, given: { t: Tensor; s: Tensor } | null): Tensor {
    const c = this.cfg;
    const tap = this.tapper(true);
    let tS: Tensor, sS: Tensor, inS: Tensor;
    if (given) {
      ({ t: tS, s: sS } = given);
      inS = images;
    } else {
      let d = c.lowPass !== undefined ? lowPassBatch(images.data, images.shape, c.lowPass) : images.data;
      if ((c.augment ?? 0) > 0) d = shiftFlipBatch(d, c.batch, c.augment!, this.rng);
      if (c.cutmix !== undefined) d = cutMixBatch(d, images.shape, c.cutmix, this.rng);
      const x = new Tensor(d, images.shape);
      inS = x;
      // F.recycled: the teacher's intermediates go back to the pool (feature distillation keeps some: noGrad).
      tS = tap('teacher', true, () => (this.featureKd ? F.noGrad : F.recycled)(() => this.teacher.forward(x)));
      sS = tap('student', true, () => this.student.forward(x));
    }
    if (c.kdMirror) tS = mirrorAveraged(this.teacher, tS, inS);
    let lossS = c.studentLoss === 'entropy'
      ? entropyKdLoss(tS, sS, c.temperature)
      : F.add(klKdLoss(tS, sS, c.temperature), F.crossEntropy(sS, labels));
    if (this.featureKd) lossS = F.add(lossS, F.scale(this.featureKd.value(), c.featureKd!));
    this.optS.zeroGrad();
    F.withoutGrad([inS], () => lossS.backward());
    if (this.anchorTo) this.addAnchorGradient(c.anchor!);
    this.optS.step();
    if (this.average) this.updateAverage(c.ema!);
    return lossS;
  }

  private addAnchorGradient(anchor: number): void {
    this.studentParams.forEach((p, i) => {
      if (!p.grad) return;
      const g = p.grad.data;
      const w = p.data;
      const w0 = this.anchorTo![i]!;
      for (let j = 0; j < g.length; j++) g[j] = Math.fround(g[j]! + Math.fround(anchor * Math.fround(w[j]! - w0[j]!)));
    });
  }

  /** avg ← d·avg + (1 − d)·w, in float32. */
  private updateAverage(d: number): void {
    const d32 = Math.fround(d);
    const e32 = Math.fround(1 - d);
    this.studentParams.forEach((p, i) => {
      const a = this.average![i]!;
      const w = p.data;
      for (let j = 0; j < a.length; j++) a[j] = Math.fround(Math.fround(d32 * a[j]!) + Math.fround(e32 * w[j]!));
    });
  }

  /** Runs fn with the student's parameters replaced by their average (cfg.ema), then puts the latest ones back. */
  withAverage<T>(fn: () => T): T {
    if (!this.average) return fn();
    const latest = this.studentParams.map((p) => p.data.slice());
    this.studentParams.forEach((p, i) => p.data.set(this.average![i]!));
    try {
      return fn();
    } finally {
      this.studentParams.forEach((p, i) => p.data.set(latest[i]!));
    }
  }

  /** At the end of a run: the student keeps the averaged parameters for good (cfg.ema; nothing otherwise). */
  adoptAverage(): void {
    if (this.average) this.studentParams.forEach((p, i) => p.data.set(this.average![i]!));
  }

  /** Everything needed to continue bit for bit. */
  state(): { tensors: Map<string, Float32Array>; meta: ZsqStateMeta } {
    const tensors = new Map<string, Float32Array>();
    for (const [k, v] of this.generator.stateDict()) tensors.set(`generator.${k}`, v.data);
    for (const [k, v] of this.student.stateDict()) tensors.set(`student.${k}`, v.data);
    const g = optimizerState(this.optG);
    const s = optimizerState(this.optS);
    for (const [k, v] of g.tensors) tensors.set(`optG.${k}`, v);
    for (const [k, v] of s.tensors) tensors.set(`optS.${k}`, v);
    this.average?.forEach((a, i) => tensors.set(`ema.${i}`, a));
    return { tensors, meta: { epoch: this.epoch, iter: this.iter, rng: this.rng.getState(), optG: g.scalars, optS: s.scalars } };
  }

  restore(tensors: Map<string, Float32Array>, meta: ZsqStateMeta): void {
    const pick = (prefix: string) => new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
    loadFlatStateDict(this.generator, tensors, 'generator.');
    loadFlatStateDict(this.student, tensors, 'student.');
    loadOptimizerState(this.optG, pick('optG.'), meta.optG);
    loadOptimizerState(this.optS, pick('optS.'), meta.optS);
    this.average?.forEach((a, i) => {
      const v = tensors.get(`ema.${i}`);
      if (!v || v.length !== a.length) throw new Error(`checkpoint: ema.${i} missing or of the wrong size`);
      a.set(v);
    });
    this.rng.setState(meta.rng);
    this.epoch = meta.epoch;
    this.iter = meta.iter;
  }

  /** One iteration at the current position; the position moves on (to the next epoch after an epoch's last one). */
  step(): IterationLosses {
    const l = this.iteration();
    if (++this.iter === this.cfg.itersPerEpoch) {
      this.epoch++;
      this.iter = 0;
    }
    return l;
  }

  /**
   * Runs the remaining iterations of the current epoch and advances to the next one. When `shouldStop` returns
   * true after an iteration, returns early with the position kept in `iter` (the epoch is not finished).
   */
  runEpoch(onIteration?: (i: number, losses: IterationLosses) => void, shouldStop?: () => boolean): IterationLosses[] {
    this.beginEpoch();
    const e = this.epoch;
    const out: IterationLosses[] = [];
    while (this.epoch === e) {
      const l = this.step();
      out.push(l);
      onIteration?.(this.epoch === e ? this.iter : this.cfg.itersPerEpoch, l);
      if (this.epoch === e && shouldStop?.()) return out;
    }
    return out;
  }

  dispose(): void {
    this.bns.detach();
    this.featureKd?.detach();
  }
}

export interface ZsqStateMeta {
  epoch: number;
  iter: number;
  rng: RngState;
  optG: Record<string, number>;
  optS: Record<string, number>;
}
