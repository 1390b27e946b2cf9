/**
 * One `granq quantize` run: teacher -> PTQ student (calibrated like `granq eval --wbits` when its activation
 * ranges are static) -> zero-shot QAT epochs (ZsqTrainer) -> quantized student + result.json. Every epoch ends in
 * a line of DIR/log.jsonl and an atomic DIR/checkpoint.safetensors; an interruption (hooks.interrupted()) after
 * any iteration writes a checkpoint too, and `resume` continues from it bit for bit.
 * The CLI (cli/quantize.ts) supplies progress display and the Ctrl-C flag through QuantizeHooks.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { GranqError } from '../errors.js';
import { fileSha256 } from '../io/hash.js';
import { writeResult } from '../io/run-dir.js';
import { loadModel } from '../models/load.js';
import type { Module } from '../nn/module.js';
import { cloneModule } from '../nn/clone.js';
import { ACT_CAPABILITIES, calibrate, needsCalibration, policyLabel, preparePtq, quantizeModel, type CalibrationInfo, type QuantPolicy } from '../quant/index.js';
import { buildInfo } from '../run/build-info.js';
import { bestEpoch, runCheckpointPath, runEpochs, type RunSpec } from '../run/loop.js';
import { Rng } from '../tensor/rng.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import type { ZsqConfig } from './config.js';
import { Generator } from './generator.js';
import { agreement, heldOutImages, HELD_OUT_SEED_OFFSET, predictions, testPaired, testTop1, vsFp } from './measure.js';
import { actRangeStates, loadActRangeStates, setWarmupObserving, type EstimatorState } from '../quant/index.js';
import { checkResumable, validateConfig, type ZsqSettings } from './settings.js';
import { bitsRecord, saveQuantizedModel } from '../quant/index.js';
import { findTestSet, type FoundTestSet } from './test-set.js';
import { ZsqTrainer, type IterationLosses } from './trainer.js';

export interface QuantizeOptions {
  model: string;
  policy: QuantPolicy;
  preset: string;
  config: ZsqConfig;
  out: string;
  resume: boolean;
  data?: string;
  /** false: no test-set evaluation at all (--no-test). */
  test: boolean;
  testLimit?: number;
  evalEvery: number;
  /** Batch size of evaluation, calibration and the agreement set. */
  evalBatch: number;
  calib: number;
  /**
   * Where static activation ranges (layer, channel-static) start: 'real' (default): the first `calib` batches of the
   * training split when data is found; 'generator': images of an untrained generator, so the run is zero-shot from
   * its first step (also what happens when no data is found).
   */
  calibSource?: 'real' | 'generator';
  agreeImages: number;
}

export interface QuantizeHooks {
  log(line: string): void;
  epochStart?(epoch: number, doneIters: number, cfg: ZsqConfig): void;
  iteration?(epoch: number, iter: number, losses: IterationLosses): void;
  epochEnd?(rec: EpochRecord): void;
  /** Polled after every iteration (the event loop gets a turn first, so a signal handler can set it). */
  interrupted?(): boolean;
}

export type LossMeans = Omit<IterationLosses, 'student'> & { student: number | null };

/** One line of log.jsonl. `epoch` counts from 1 (the trainer's epoch index + 1). */
export interface EpochRecord {
  epoch: number;
  iters: number;
  student_trains: boolean;
  loss: LossMeans;
  lr_s: number;
  lr_g: number;
  test_top1?: number;
  /** With cfg.ema: test top-1 of the latest iterate (test_top1 is then the averaged student's). */
  test_top1_raw?: number;
  wall_s: number;
}

interface Partial { sums: Record<keyof IterationLosses, number>; count: number; studentCount: number; wall: number }

interface CheckpointExtra {
  settings: ZsqSettings;
  history: EpochRecord[];
  ranges: Record<string, EstimatorState>;
  ptqRanges: Record<string, EstimatorState>;
  fpTop1: number | null;
  ptqTop1: number | null;
  calibration: CalibrationInfo | string | null;
  wallSeconds: number;
  partial: Partial | null;
}

export type QuantizeOutcome =
  | { status: 'done'; result: Record<string, unknown>; files: string[] }
  | { status: 'interrupted'; epoch: number; iter: number; checkpoint: string };

const LOSS_KEYS = ['generator', 'margin', 'ds', 'as', 'bns', 'student'] as const;
const emptyPartial = (): Partial => ({ sums: { generator: 0, margin: 0, ds: 0, as: 0, bns: 0, student: 0 }, count: 0, studentCount: 0, wall: 0 });

/** The PTQ student: quantized, and calibrated on real data when available (and wanted), else on an untrained generator's images. */
function ptqStudent(teacher: Module, policy: QuantPolicy, o: QuantizeOptions, found: FoundTestSet | null, numClasses: number,
  mean: readonly number[], std: readonly number[], log: (s: string) => void): { student: Module; calibration: CalibrationInfo | string | null } {
  if (found && o.calibSource !== 'generator') {
    const p = preparePtq(teacher, policy, { dataDir: found.dir, format: found.format, mean, std, batch: o.evalBatch, calib: o.calib, warn: log });
    return { student: p.student, calibration: p.calibration };
  }
  const { student } = quantizeModel(teacher, policy, { warn: log });
  if (!needsCalibration(policy.act)) return { student, calibration: null };
  const gen = new Generator(numClasses, { rng: new Rng(o.config.seed + 2 * HELD_OUT_SEED_OFFSET) });
  const images = heldOutImages(gen, o.calib * o.evalBatch, o.evalBatch, o.config.seed + 2 * HELD_OUT_SEED_OFFSET);
  calibrate(student, images.map((x) => ({ x })));
  return { student, calibration: `${found ? '--calib-source generator' : 'no data'}: ${o.calib * o.evalBatch} images of an untrained generator (seed ${o.config.seed + 2 * HELD_OUT_SEED_OFFSET})` };
}

export async function runQuantize(o: QuantizeOptions, hooks: QuantizeHooks): Promise<QuantizeOutcome> {
  const cfg = validateConfig(structuredClone(o.config));
  const t0 = performance.now();
  const ckPath = runCheckpointPath(o.out, o.resume);
  const saved = o.resume ? loadCheckpoint<CheckpointExtra>(ckPath) : null;
  mkdirSync(o.out, { recursive: true });
  const { model: teacher, sidecar } = loadModel(o.model);
  const found = o.test ? findTestSet(o.data, sidecar.numClasses, o.testLimit) : null;
  if (o.test && !found) hooks.log('no CIFAR data found: no test-set evaluation; reporting agreement with the teacher on held-out synthetic images');
  const settings: ZsqSettings = {
    teacher: { path: path.resolve(o.model), model: sidecar.model, sha256: fileSha256(o.model) },
    policy: o.policy, preset: o.preset, config: cfg,
    test: { enabled: found !== null, limit: found ? (o.testLimit ?? null) : null },
    evalEvery: o.evalEvery, calib: o.calib, ...(o.calibSource === 'generator' ? { calibSource: 'generator' as const } : {}), agreeImages: o.agreeImages,
  };
  if (saved) {
    checkResumable(saved.extra.settings, settings, ckPath);
    if (saved.meta.epoch > cfg.epochs) throw new GranqError(`--epochs: the checkpoint is at epoch ${saved.meta.epoch}, beyond --epochs ${cfg.epochs}`);
  }
  hooks.log(`granq quantize: ${policyLabel(o.policy)}, preset ${o.preset}, ${cfg.epochs} epochs x ${cfg.itersPerEpoch} iterations, ` +
    `batch ${cfg.batch}, seed ${cfg.seed}`);
  const test = found ? { data: found.data, mean: sidecar.mean, std: sidecar.std, batch: o.evalBatch } : null;

  // Students. On resume the PTQ ranges come from the checkpoint, so no calibration data is read again.
  let student: Module;
  let ptq: Module;
  let calibration: CalibrationInfo | string | null;
  if (saved) {
    student = quantizeModel(teacher, o.policy, { warn: () => {} }).student;
    ptq = cloneModule(student);
    loadActRangeStates(ptq, saved.extra.ptqRanges, ckPath);
    calibration = saved.extra.calibration;
  } else {
    ({ student, calibration } = ptqStudent(teacher, o.policy, o, found, sidecar.numClasses, sidecar.mean, sidecar.std, hooks.log));
    ptq = cloneModule(student); // before the trainer hooks the teacher's BatchNorms: clones would share the hooks
  }
  const fpTop1 = saved ? saved.extra.fpTop1 : test ? testTop1(teacher, test) : null;
  const ptqTop1 = saved ? saved.extra.ptqTop1 : test ? testTop1(ptq, test) : null;
  if (fpTop1 !== null) hooks.log(`FP top-1 ${(100 * fpTop1).toFixed(2)}%, PTQ start top-1 ${(100 * ptqTop1!).toFixed(2)}% (${found!.data.n} test images)`);

  const warmupSchedule = ACT_CAPABILITIES[o.policy.act].observesInWarmupOnly;
  const tr = new ZsqTrainer(teacher, student, sidecar.numClasses, cfg, {
    onEpochStart: warmupSchedule ? (epoch, s) => setWarmupObserving(s, epoch, cfg.warmupEpochs) : undefined,
  });
  const history: EpochRecord[] = saved ? [...saved.extra.history] : [];
  let partial = saved?.extra.partial ?? emptyPartial();
  let wallBefore = saved?.extra.wallSeconds ?? 0;
  if (saved) {
    tr.restore(saved.tensors, saved.meta);
    loadActRangeStates(student, saved.extra.ranges, ckPath);
    hooks.log(`resuming ${ckPath} at epoch ${tr.epoch + 1}${tr.iter ? `, iteration ${tr.iter + 1}` : ''}`);
  }
  // The losses the epoch's iterations left uncomputed (trainer.generatorReadsStudent, trainer.studentOnly: the same
  // for every iteration of an epoch).
  let uncomputed = new Set<string>();
  let nonFinite: string | null = null;  // the last iteration's non-finite losses, named
  const spec: RunSpec<EpochRecord> = {
    epochs: cfg.epochs, itersPerEpoch: cfg.itersPerEpoch,
    beginEpoch(e, done) {
      tr.beginEpoch();
      hooks.epochStart?.(e, done, cfg);
    },
    iteration(e, i) {
      const l = tr.step();
      uncomputed = new Set(LOSS_KEYS.filter((k) => k !== 'student' && l[k] === null));
      for (const k of LOSS_KEYS) partial.sums[k] += l[k] ?? 0;
      partial.count++;
      if (l.student !== null) partial.studentCount++;
      const bad = LOSS_KEYS.filter((k) => l[k] !== null && !Number.isFinite(l[k]));
      if (bad.length) nonFinite = `epoch ${e + 1}, iteration ${i + 1}: loss ${bad.map((k) => `${k} ${l[k]}`).join(', ')}`;
      hooks.iteration?.(e, i + 1, l);
    },
    diverged: () => nonFinite,
    endEpoch(e) {
      const evalNow = test !== null && ((e + 1) % o.evalEvery === 0 || e + 1 === cfg.epochs);
      const rec = {
        epoch: e + 1, iters: partial.count, student_trains: partial.studentCount > 0,
        loss: Object.fromEntries(LOSS_KEYS.map((k) => [k, k === 'student'
          ? (partial.studentCount ? partial.sums[k] / partial.studentCount : null)
          : uncomputed.has(k) ? null : partial.sums[k] / partial.count])) as unknown as LossMeans,
        lr_s: tr.optS.lr, lr_g: tr.optG.lr,
        ...(evalNow ? { test_top1: tr.withAverage(() => testTop1(student, test!)) } : {}),
        ...(evalNow && cfg.ema !== undefined ? { test_top1_raw: testTop1(student, test!) } : {}),
      };
      partial = emptyPartial();
      return rec;
    },
    checkpoint(pos, epochWall) {
      if (pos.epoch !== tr.epoch || pos.iter !== tr.iter) throw new Error(`run loop at ${pos.epoch}:${pos.iter}, trainer at ${tr.epoch}:${tr.iter}`);
      partial.wall = epochWall;
      saveCheckpoint<CheckpointExtra>(ckPath, {
        ...tr.state(),
        extra: {
          settings, history, ranges: actRangeStates(student), ptqRanges: actRangeStates(ptq), fpTop1, ptqTop1, calibration,
          wallSeconds: wallBefore + (performance.now() - t0) / 1000, partial: pos.iter ? partial : null,
        },
      });
    },
  };
  let diverged: { epoch: number; iteration: number; reason: string } | null = null;
  try {
    const loop = await runEpochs(spec, { epoch: tr.epoch, iter: tr.iter, epochWall: partial.wall }, history, o.out, hooks);
    if (loop.status === 'interrupted') return loop;
    if (loop.status === 'diverged') {
      diverged = { epoch: loop.epoch + 1, iteration: loop.iter, reason: loop.reason };
      hooks.log(`the run diverged (${loop.reason}); it stops here: no step recovers from a non-finite loss. result.json records ` +
        'it, with the final accuracy of the diverged student; no student.safetensors is written. To find the op that first ' +
        'made a NaN or Inf: the same command with --resume and GRANQ_CHECK_FINITE=1 replays the epoch from the last checkpoint');
    }
  } finally {
    tr.dispose();
  }
  tr.adoptAverage();

  // The end: final accuracy (evaluated now if the last epoch was not), agreement, files.
  const last = history[history.length - 1];
  // The student against the teacher image by image; its own counts are the final accuracy when the last epoch was
  // not evaluated (the same forwards and hit rule as testTop1).
  const paired = test ? testPaired(student, teacher, test) : null;
  const finalTop1 = paired ? (last?.test_top1 ?? paired.a.correct / paired.a.images) : null;
  const held = heldOutImages(tr.generator, o.agreeImages, o.evalBatch, cfg.seed + HELD_OUT_SEED_OFFSET);
  const teacherPreds = predictions(teacher, held);
  const agree = { ptq: agreement(ptq, held, teacherPreds), final: agreement(student, held, teacherPreds) };
  const best = bestEpoch(history);
  wallBefore += (performance.now() - t0) / 1000;
  const label = `${sidecar.model}_zsq_W${o.policy.wbits}A${o.policy.abits}_${o.policy.act}_${o.policy.weight}`;
  const studentPath = path.join(o.out, 'student.safetensors');
  if (!diverged) saveQuantizedModel(studentPath, student, sidecar, o.policy, { model: label, zsq: settings });
  const result = {
    model: label, teacher: settings.teacher, policy: o.policy, preset: o.preset, seed: cfg.seed,
    epochs: cfg.epochs, iterations: history.reduce((s, r) => s + r.iters, 0),
    test: found ? { dataset: `${found.format}-test`, images: found.data.n, dir: found.dir } : null,
    fp_top1: fpTop1, ptq_top1: ptqTop1, final_top1: finalTop1, final_epoch: diverged ? diverged.epoch : cfg.epochs,
    ...(diverged ? { diverged: { ...diverged, note: 'the losses became non-finite here and the run stopped; final_top1 is the diverged student\'s (a NaN logit predicts nothing)' } } : {}),
    vs_fp: paired ? { ...vsFp(paired), note: 'the final student against the FP teacher, test image by test image: images only the student gets right, only the teacher; p: exact two-sided McNemar test of equal accuracy' } : null,
    best_epoch: best ? {
      epoch: best.epoch, top1: best.test_top1,
      note: 'test-set model selection (best of the evaluated epochs), as the papers report it; not the headline figure, which is final_top1',
    } : null,
    agreement: { ...agree, images: o.agreeImages, seed: cfg.seed + HELD_OUT_SEED_OFFSET, source: 'final generator, held-out latent codes and labels' },
    calibration, settings, wall_seconds: Number(wallBefore.toFixed(3)),
    bits: bitsRecord(student), code: buildInfo(),
  };
  const resultPath = writeResult(o.out, result);
  const files = [...(diverged ? [] : [studentPath, studentPath.replace(/\.safetensors$/, '.json')]), resultPath, path.join(o.out, 'log.jsonl'), ckPath];
  return { status: 'done', result, files };
}
