/**
 * One `granq train` run: a full-precision CIFAR-10 classifier trained from scratch, with the run-folder conventions
 * of `granq quantize` (io/run-dir.ts): DIR/log.jsonl (one line per epoch), an atomic DIR/checkpoint.safetensors at
 * the end of every epoch and on interruption (hooks.interrupted(), polled after every iteration), a bit-identical
 * resume, and at the end DIR/model.safetensors + its sidecar DIR/model.json (loadable by `granq eval --model`) and
 * DIR/result.json. Each epoch's order and augmentation depend on (seed, epoch) only (data/augment.ts), so the
 * checkpoint needs no RNG state and a resume mid-epoch rebuilds the same batches.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import * as F from '../autograd/index.js';
import { epochPlan, planBatch, type EpochPlan } from '../data/augment.js';
import { batches, loadCifarSplit, locateCifarSplit, type CifarData } from '../data/cifar.js';
import { resolveDataDir } from '../data/data-dir.js';
import { GranqError } from '../errors.js';
import { fileSha256 } from '../io/hash.js';
import { loadStateCheckpoint, saveStateCheckpoint, writeResult } from '../io/run-dir.js';
import { writeSafetensors } from '../io/safetensors.js';
import { normalizeArchitecture, sidecarPathFor, writeSidecar } from '../io/sidecar.js';
import { countHits, evaluate, type EvalCounts } from '../models/evaluate.js';
import { loadModel } from '../models/load.js';
import { createModel } from '../models/registry.js';
import { manualSeed } from '../nn/init.js';
import type { Module } from '../nn/module.js';
import { cosineLr, loadOptimizerState, multiStepLr, optimizerState, SGD } from '../optim/index.js';
import { buildInfo } from '../run/build-info.js';
import { bestEpoch, runCheckpointPath, runEpochs, type RunSpec } from '../run/loop.js';
import { Tensor } from '../tensor/tensor.js';
import { CIFAR10_MEAN, CIFAR10_STD, trainConfigDiff, validateTrainConfig, type TrainConfig } from './config.js';

export interface TrainOptions {
  config: TrainConfig;
  out: string;
  resume: boolean;
  data?: string;
  /** Train on the first N training images only (smoke runs, tests). */
  trainLimit?: number;
  testLimit?: number;
  evalEvery: number;
  evalBatch: number;
  /**
   * Start from these weights (a .safetensors with its sidecar, the same architecture) instead of a random init; the
   * optimizer and the schedule start fresh (fine-tuning, or a warm restart of a finished run).
   */
  init?: string;
}

export interface TrainHooks {
  log(line: string): void;
  epochStart?(epoch: number, doneIters: number, itersPerEpoch: number, cfg: TrainConfig): void;
  iteration?(epoch: number, iter: number, loss: number): void;
  epochEnd?(rec: TrainEpochRecord): void;
  interrupted?(): boolean;
}

/** One line of log.jsonl; `epoch` counts from 1. */
export interface TrainEpochRecord {
  epoch: number;
  iters: number;
  lr: number;
  loss: number;
  /** Accuracy on the augmented training batches, in train mode, as the weights moved. */
  train_top1: number;
  test_top1?: number;
  wall_s: number;
}

/** What shapes the weights, compared on resume: the recipe, the starting weights and the exact training images. */
interface TrainSettings {
  config: TrainConfig;
  /** --init: the file and the sha256 of its bytes (null: random init from the seed). */
  init: { file: string; sha256: string } | null;
  train: { images: number; sha256: string };
  test: { images: number; limit: number | null };
}

interface Partial { loss: number; correct: number; count: number; iters: number; wall: number }

interface TrainState {
  epoch: number;
  iter: number;
  opt: Record<string, number>;
  settings: TrainSettings;
  history: TrainEpochRecord[];
  partial: Partial | null;
  wallSeconds: number;
}

export type TrainOutcome =
  | { status: 'done'; result: Record<string, unknown>; files: string[] }
  | { status: 'interrupted'; epoch: number; iter: number; checkpoint: string };

const STATE_KEY = 'granq_train_state';
export const MODEL_FILE = 'model.safetensors';
const emptyPartial = (): Partial => ({ loss: 0, correct: 0, count: 0, iters: 0, wall: 0 });

export function scheduledLr(c: TrainConfig, epoch: number): number {
  return c.schedule === 'cosine' ? cosineLr(c.lr, epoch, c.epochs) : multiStepLr(c.lr, epoch, c.milestones, c.lrGamma);
}

function dataSha256(d: CifarData): string {
  return createHash('sha256').update(d.images).update(new Uint8Array(d.labels.buffer, d.labels.byteOffset, d.labels.byteLength)).digest('hex');
}

function testTop1(model: Module, test: CifarData, batch: number): number {
  const c = evaluate(model, batches(test, { batchSize: batch, mean: CIFAR10_MEAN, std: CIFAR10_STD }));
  return c.correct / c.images;
}

function locateCifarTrainFiles(dir: string): string[] {
  try {
    return locateCifarSplit(dir, 'cifar10', 'train');
  } catch {
    return [];
  }
}

/** --init's weights (loaded and checked as `granq eval --model` does) for architecture `arch`, and the file's sha256. */
function loadInit(file: string, arch: string): { state: Map<string, Tensor>; sha256: string } {
  // loadModel would import an ONNX graph, which is no registry architecture to train.
  if (file.endsWith('.onnx')) throw new GranqError(`--init: ${file}: an ONNX graph; --init takes a .safetensors with its sidecar`);
  const loaded = loadModel(file, '--init');
  if (loaded.sidecar.architecture !== arch) {
    throw new GranqError(`--init: ${file} is a ${loaded.sidecar.architecture}, not the --model ${arch}`);
  }
  if (loaded.sidecar.numClasses !== 10) throw new GranqError(`--init: ${file} has ${loaded.sidecar.numClasses} classes; CIFAR-10 has 10`);
  return { state: loaded.model.stateDict(), sha256: fileSha256(file) };
}

export async function runTrain(o: TrainOptions, hooks: TrainHooks): Promise<TrainOutcome> {
  const cfg = validateTrainConfig(structuredClone(o.config));
  const t0 = performance.now();
  const ckPath = runCheckpointPath(o.out, o.resume);
  const saved = o.resume ? loadStateCheckpoint<TrainState>(ckPath, STATE_KEY) : null;

  // Without --data, a folder with all five training batches (granq data fetch) wins over ../shared's first batch.
  const { dir, source } = resolveDataDir({ data: o.data, prefer: (d) => locateCifarTrainFiles(d).length === 5 });
  const trainFiles = locateCifarSplit(dir, 'cifar10', 'train');
  const train = loadCifarSplit(dir, { format: 'cifar10', split: 'train', limit: o.trainLimit });
  const test = loadCifarSplit(dir, { format: 'cifar10', split: 'test', limit: o.testLimit });
  const init = o.init === undefined ? null : loadInit(o.init, cfg.model);
  const settings: TrainSettings = {
    config: cfg, init: init && { file: path.resolve(o.init!), sha256: init.sha256 },
    train: { images: train.n, sha256: dataSha256(train) }, test: { images: test.n, limit: o.testLimit ?? null },
  };
  if (saved) {
    const s = saved.state.settings;
    const diff = trainConfigDiff(s.config, cfg);
    // A checkpoint written before --init existed started from a random init.
    const initName = (i: TrainSettings['init'] | undefined) => (i ? `${i.file} (sha256 ${i.sha256.slice(0, 12)})` : 'none');
    if ((s.init?.sha256 ?? null) !== (settings.init?.sha256 ?? null)) diff.push(`--init: ${initName(s.init)} -> ${initName(settings.init)}`);
    if (s.train.sha256 !== settings.train.sha256) diff.push(`training images: ${s.train.images} (sha256 ${s.train.sha256.slice(0, 12)}) -> ${train.n} (${settings.train.sha256.slice(0, 12)})`);
    if (JSON.stringify(s.test) !== JSON.stringify(settings.test)) diff.push(`test: ${JSON.stringify(s.test)} -> ${JSON.stringify(settings.test)}`);
    if (diff.length) {
      throw new GranqError(`--resume: settings differ from the checkpoint ${ckPath} (${diff.join('; ')}); rerun with the original flags ` +
        '(only --eval-every and --eval-batch may change, and --epochs with a multistep schedule)');
    }
    if (saved.state.epoch > cfg.epochs) throw new GranqError(`--epochs: the checkpoint is at epoch ${saved.state.epoch}, beyond --epochs ${cfg.epochs}`);
  }
  mkdirSync(o.out, { recursive: true });
  hooks.log(`granq train: ${cfg.model} on ${train.n} CIFAR-10 training images (${trainFiles.map((f) => path.basename(f)).join(', ')}; ` +
    `${dir}, found by ${source}), test ${test.n} images; ${cfg.epochs} epochs, batch ${cfg.batch}, lr ${cfg.lr} ${cfg.schedule}, seed ${cfg.seed}`);
  if (train.n < 50_000 && o.trainLimit === undefined) hooks.log(`note: ${train.n} of CIFAR-10's 50,000 training images found; \`granq data fetch cifar10\` writes all five batches`);

  manualSeed(cfg.seed);
  const model = createModel(cfg.model, 10);
  if (init) {
    model.loadStateDict(init.state);
    hooks.log(`starting from ${o.init} (sha256 ${init.sha256.slice(0, 12)}) instead of a random init`);
  }
  model.train();
  const params = model.parameters();
  const opt = new SGD(params, { lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay, nesterov: cfg.nesterov });
  let epoch = 0;
  let iter = 0;
  const history: TrainEpochRecord[] = saved ? [...saved.state.history] : [];
  let partial = saved?.state.partial ?? emptyPartial();
  let wallBefore = saved?.state.wallSeconds ?? 0;
  if (saved) {
    const pick = (prefix: string) => new Map([...saved.tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
    const own = model.stateDict();
    model.loadStateDict(new Map([...pick('model.')].map(([k, v]) => [k, new Tensor(v, own.get(k)?.shape ?? [v.length])])));
    loadOptimizerState(opt, pick('opt.'), saved.state.opt);
    ({ epoch, iter } = saved.state);
    hooks.log(`resuming ${ckPath} at epoch ${epoch + 1}${iter ? `, iteration ${iter + 1}` : ''}`);
  }
  const aug = { padding: cfg.cropPadding, flip: cfg.flip, cutout: cfg.cutout };
  let plan: EpochPlan | null = null; // set by beginEpoch
  let nonFinite: string | null = null; // why the run cannot go on (RunSpec.diverged)
  const spec: RunSpec<TrainEpochRecord> = {
    epochs: cfg.epochs, itersPerEpoch: Math.ceil(train.n / cfg.batch),
    beginEpoch(e, done) {
      opt.lr = scheduledLr(cfg, e);
      plan = epochPlan(train.n, cfg.seed, e, aug);
      hooks.epochStart?.(e, done, spec.itersPerEpoch, cfg);
    },
    iteration(e, i) {
      const b = planBatch(train, plan!, i, cfg.batch, aug, CIFAR10_MEAN, CIFAR10_STD);
      const logits = model.forward(b.x);
      const loss = F.crossEntropy(logits, b.y, cfg.labelSmoothing);
      opt.zeroGrad();
      loss.backward();
      opt.step();
      const l = loss.item();
      if (!Number.isFinite(l)) nonFinite = `loss ${l} at epoch ${e + 1}, iteration ${i + 1} (lr ${opt.lr})`;
      partial.loss += l * b.y.length;
      const hits: EvalCounts = { images: 0, correct: 0, correct5: 0 };
      countHits(logits, b.y, hits);
      partial.correct += hits.correct;
      partial.count += b.y.length;
      partial.iters++;
      F.releaseGraph([loss]);
      hooks.iteration?.(e, i + 1, l);
    },
    diverged: () => nonFinite,
    endEpoch(e) {
      const evalNow = (e + 1) % o.evalEvery === 0 || e + 1 === cfg.epochs;
      const rec = {
        epoch: e + 1, iters: partial.iters, lr: opt.lr, loss: partial.loss / partial.count, train_top1: partial.correct / partial.count,
        ...(evalNow ? { test_top1: testTop1(model, test, o.evalBatch) } : {}),
      };
      partial = emptyPartial();
      return rec;
    },
    checkpoint(pos, epochWall) {
      partial.wall = epochWall;
      const tensors = new Map<string, Float32Array>();
      for (const [k, v] of model.stateDict()) tensors.set(`model.${k}`, v.data);
      const os = optimizerState(opt);
      for (const [k, v] of os.tensors) tensors.set(`opt.${k}`, v);
      saveStateCheckpoint<TrainState>(ckPath, STATE_KEY, {
        tensors,
        state: {
          epoch: pos.epoch, iter: pos.iter, opt: os.scalars, settings, history, partial: pos.iter ? partial : null,
          wallSeconds: wallBefore + (performance.now() - t0) / 1000,
        },
      });
    },
  };
  const loop = await runEpochs(spec, { epoch, iter, epochWall: partial.wall }, history, o.out, hooks);
  if (loop.status === 'interrupted') return loop;
  // Supervised training that diverged has no model worth writing: an error (the epoch is logged, the last checkpoint stays).
  if (loop.status === 'diverged') throw new GranqError(`training diverged: ${loop.reason}; lower --lr`);

  const last = history[history.length - 1]!;
  const finalTop1 = last.test_top1 ?? testTop1(model, test, o.evalBatch);
  const best = bestEpoch(history);
  wallBefore += (performance.now() - t0) / 1000;
  const name = `${cfg.model.replace('-', '')}_cifar10_granq`;
  const modelPath = path.join(o.out, MODEL_FILE);
  writeSafetensors(modelPath, model.stateDict());
  const training = {
    command: 'granq train', config: cfg, init: settings.init, train_images: train.n, train_sha256: settings.train.sha256, test_images: test.n,
    epochs_logged: history.length, wall_seconds: Number(wallBefore.toFixed(3)),
  };
  writeSidecar(sidecarPathFor(modelPath), {
    model: name, architecture: normalizeArchitecture(cfg.model), numClasses: 10, mean: [...CIFAR10_MEAN] as [number, number, number],
    std: [...CIFAR10_STD] as [number, number, number], measuredTop1: test.n === 10_000 ? finalTop1 : undefined,
    raw: {
      model: name, architecture: cfg.model, num_classes: 10,
      input: { layout: 'NCHW, RGB', preprocessing: 'x = (pixel_uint8 / 255 - mean[c]) / std[c]' },
      ...(test.n === 10_000 ? { test_set: 'test_batch.bin' } : {}), training,
    },
  });
  const result = {
    model: name, architecture: cfg.model, final_top1: finalTop1, final_epoch: cfg.epochs,
    best_epoch: best ? { epoch: best.epoch, top1: best.test_top1, note: 'test-set selection, for comparison only; the weights written are the final epoch\'s' } : null,
    test: { dataset: 'cifar10-test', images: test.n, dir }, train: settings.train, config: cfg, init: settings.init, wall_seconds: training.wall_seconds,
    code: buildInfo(),
  };
  const resultPath = writeResult(o.out, result);
  return { status: 'done', result, files: [modelPath, sidecarPathFor(modelPath), resultPath, path.join(o.out, 'log.jsonl'), ckPath] };
}
