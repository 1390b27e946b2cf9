/**
 * `granq quantize`: zero-shot QAT of a teacher (src/zsq/run.ts does the work). This file turns flags into a
 * ZsqConfig + QuantPolicy, draws the per-epoch progress bar on stderr, and handles Ctrl-C (interrupt.ts): the
 * current iteration finishes, a checkpoint is written and it exits 130 with the command that resumes.
 */
import { Command, Option } from 'commander';
import { ACT_KINDS, STORAGES, validatePolicy, WEIGHT_CLIPS, WEIGHT_KINDS, type QuantPolicy } from '../quant/index.js';
import { PRESETS, presetConfig, presetPolicy, type ZsqConfig } from '../zsq/config.js';
import { runQuantize, type EpochRecord } from '../zsq/run.js';
import { bitWidth, DATA_DEFAULT_HELP, decay, nonNegativeInt, nonNegativeIntList, nonNegativeNumber, positiveInt, positiveNumber, probability } from './args.js';
import { DEFAULT_TEACHER, resolveModelArg } from '../models/default-teacher.js';
import { pairedLine } from '../models/evaluate.js';
import { catchInterrupt, resumeCommand } from './interrupt.js';
import { RunProgress } from './progress.js';

export const WEIGHT_CLIP_HELP = "channel/tensor: how each weight row's range is chosen: minmax (default, every published " +
  'method), mse (the clipped range [a min, a max], a in 1..0.3, of least squared error, searched at every forward) or ' +
  "learned (each row's range a trained parameter starting at the mse one, LSQ-style gradients; in eval, the same as mse)";

export interface QuantizeCliOptions {
  model: string; wbits: number; abits: number; act: string; weight?: string; weightClip?: string; skip?: string; releasedEma?: boolean;
  preset: string; out: string; resume?: boolean; data?: string; test: boolean; testLimit?: number;
  evalEvery: number; evalBatch: number; calib: number; calibSource: 'real' | 'generator'; agreeImages: number; json?: boolean;
  epochs?: number; iters?: number; batch?: number; seed?: number; warmup?: number; lrS?: number; lrG?: number;
  milestones?: number[]; lrGamma?: number; momentum?: number; weightDecay?: number; nesterov: boolean;
  temperature?: number; studentLoss?: 'entropy' | 'kl'; marginLower?: number; marginUpper?: number;
  alphaDs?: number; alphaAs?: number; beta?: number; gamma?: number; generatorEpochs?: number; anchor?: number;
  augment?: number; lowPass?: number; cutmix?: number; ema?: number; featureKd?: number; studentSchedule?: 'multistep' | 'cosine';
  studentMilestones?: number[]; kdMirror?: boolean;
}

/** Flag -> ZsqConfig field, for the flags that override a preset value. */
const OVERRIDES: [keyof QuantizeCliOptions, keyof ZsqConfig][] = [
  ['epochs', 'epochs'], ['iters', 'itersPerEpoch'], ['batch', 'batch'], ['seed', 'seed'], ['warmup', 'warmupEpochs'],
  ['lrS', 'lrStudent'], ['lrG', 'lrGenerator'], ['milestones', 'milestones'], ['lrGamma', 'lrGamma'], ['momentum', 'momentum'],
  ['weightDecay', 'weightDecay'], ['temperature', 'temperature'], ['studentLoss', 'studentLoss'], ['marginLower', 'marginLower'],
  ['marginUpper', 'marginUpper'], ['alphaDs', 'alphaDs'], ['alphaAs', 'alphaAs'], ['beta', 'beta'], ['gamma', 'gamma'],
  ['generatorEpochs', 'generatorEpochs'], ['anchor', 'anchor'], ['augment', 'augment'], ['lowPass', 'lowPass'],
  ['cutmix', 'cutmix'], ['ema', 'ema'], ['featureKd', 'featureKd'], ['studentMilestones', 'studentMilestones'],
  ['kdMirror', 'kdMirror'],
];

export function configFromOptions(o: QuantizeCliOptions): ZsqConfig {
  const cfg = presetConfig(o.preset) as unknown as Record<string, unknown>;
  for (const [flag, field] of OVERRIDES) if (o[flag] !== undefined) cfg[field] = o[flag];
  if (!o.nesterov) cfg['nesterov'] = false;
  if (o.studentSchedule === 'cosine') cfg['studentSchedule'] = 'cosine';
  else if (o.studentSchedule === 'multistep') delete cfg['studentSchedule'];  // over a preset's cosine (plus-cifar10)
  return cfg as unknown as ZsqConfig;
}

/** The flags of `granq quantize` on `cmd`: the command itself, and `granq sweep`'s check of a grid's cells (sweep.ts). */
export function quantizeOptions(cmd: Command): Command {
  const num = (flag: string, desc: string, parse: (v: string) => unknown) => new Option(flag, desc).argParser(parse);
  return cmd
    .description('zero-shot QAT (GranQ / AdaDFQ recipe): generator + quantized student trained from the teacher alone; ' +
      'writes DIR/log.jsonl, DIR/checkpoint.safetensors (every epoch), DIR/student.safetensors + .json, DIR/result.json')
    .option('--model <file>', `teacher weights (.safetensors) or ONNX model (.onnx) with a <name>.json sidecar beside them (default: ${DEFAULT_TEACHER})`)
    .addOption(new Option('--wbits <k>', 'weight bits (2..8)').argParser(bitWidth).makeOptionMandatory())
    .addOption(new Option('--abits <k>', 'activation bits (2..8)').argParser(bitWidth).makeOptionMandatory())
    .addOption(new Option('--act <name>', 'activation quantizer').choices([...ACT_KINDS]).default('granq'))
    .addOption(new Option('--weight <name>', "weight quantizer (default: the preset's, else slice)").choices([...WEIGHT_KINDS]))
    .addOption(new Option('--weight-clip <how>', WEIGHT_CLIP_HELP).choices([...WEIGHT_CLIPS]))
    .option('--skip <paths>', 'comma-separated module paths kept in full precision')
    .option('--released-ema', "layer: GDFQ's recursive EMA bias correction instead of the correct one")
    .requiredOption('--out <dir>', 'output directory')
    .option('--resume', 'continue from DIR/checkpoint.safetensors (same flags; --epochs may grow)')
    .addOption(new Option('--preset <name>', `settings preset: ${Object.entries(PRESETS).map(([k, p]) => `${k} (${p.note})`).join('; ')}`).default('quick'))
    .addOption(num('--epochs <n>', 'epochs', positiveInt))
    .addOption(num('--iters <n>', 'iterations per epoch', positiveInt))
    .addOption(num('--batch <n>', 'generator batch size', positiveInt))
    .addOption(num('--seed <n>', 'seed of the generator init, latent codes and labels', nonNegativeInt))
    .addOption(num('--warmup <n>', 'epochs before the student is updated (layer: ranges observed only then)', nonNegativeInt))
    .addOption(num('--lr-s <x>', 'student learning rate (SGD Nesterov)', positiveNumber))
    .addOption(num('--lr-g <x>', 'generator learning rate (Adam)', positiveNumber))
    .addOption(num('--milestones <list>', "epochs at which both learning rates are multiplied by --lr-gamma ('none' for no decay)", nonNegativeIntList))
    .addOption(num('--lr-gamma <x>', 'learning-rate decay factor', positiveNumber))
    .addOption(num('--momentum <x>', 'student SGD momentum', nonNegativeNumber))
    .addOption(num('--weight-decay <x>', 'student SGD weight decay', nonNegativeNumber))
    .option('--no-nesterov', 'plain momentum instead of Nesterov')
    .addOption(num('--temperature <x>', 'T of the student loss', positiveNumber))
    .addOption(new Option('--student-loss <form>', "entropy (released AdaDFQ) or kl (GDFQ's KL*T^2 + CE)").choices(['entropy', 'kl']))
    .addOption(num('--margin-lower <x>', 'lambda_l of the margin loss', nonNegativeNumber))
    .addOption(num('--margin-upper <x>', 'lambda_u of the margin loss', nonNegativeNumber))
    .addOption(num('--alpha-ds <x>', 'weight of L_ds', nonNegativeNumber))
    .addOption(num('--alpha-as <x>', 'weight of L_as', nonNegativeNumber))
    .addOption(num('--beta <x>', 'weight of (alpha_ds L_ds + alpha_as L_as)', nonNegativeNumber))
    .addOption(num('--gamma <x>', 'weight of the BNS loss', nonNegativeNumber))
    .addOption(num('--generator-epochs <n>', 'beyond the released recipe: update the generator only before this epoch, then sample it frozen', nonNegativeInt))
    .addOption(new Option('--student-schedule <name>', "beyond the released recipe: the student's lr schedule: multistep (released: x lr-gamma at the milestones) or cosine (from --lr-s to 0 over the epochs; the milestones then move the generator's lr only)").choices(['multistep', 'cosine']))
    .addOption(num('--student-milestones <list>', "beyond the released recipe: the student's own multistep milestones (its lr x --lr-gamma at these epochs; --milestones then move the generator's lr only; IntraQ and HAST decay at 20,40,60 of 151 epochs); not with --student-schedule cosine", nonNegativeIntList))
    .addOption(num('--anchor <x>', "beyond the released recipe: pull the student's parameters towards the teacher's (adds x·(w − w_teacher) to each gradient)", nonNegativeNumber))
    .addOption(num('--augment <p>', 'beyond the released recipe: the student step sees the generator\'s images shifted by up to p pixels (zero fill) and mirrored with probability 1/2, the teacher run again on them', nonNegativeInt))
    .addOption(num('--low-pass <d>', "beyond the released recipe: the student step sees the generator's images through an ideal low-pass filter keeping spatial frequencies within radius d cycles per image (SynQ's filter; applied before --augment), the teacher run again on them", positiveNumber))
    .addOption(num('--cutmix <p>', "beyond the released recipe: the student step sees the generator's images CutMixed within the batch: each, with probability p, gets a box (a uniform fraction of its area) of another image pasted in (MixMix's data mixing; after --low-pass and --augment), the teacher run again on them", probability))
    .addOption(num('--ema <d>', "beyond the released recipe: keep an exponential moving average of the student's parameters (decay d per student step; Polyak averaging) and evaluate and save the average; the latest iterate's test top-1 is logged beside it", decay))
    .addOption(num('--feature-kd <w>', "beyond the released recipe: add w x the mean squared difference of the student's and the teacher's BatchNorm inputs (every conv output, scaled per channel as the teacher's BatchNorm scales it) to the student loss (feature distillation)", nonNegativeNumber))
    .option('--kd-mirror', "beyond the released recipe: the student's target is the teacher's logits averaged over each image and its mirror image (the teacher's flip test-time augmentation, distilled; one more teacher forward per student step)")
    .option('--data <dir>', `data directory for test accuracy and calibration (default: ${DATA_DEFAULT_HELP}; none found: no test set)`)
    .option('--no-test', 'no test-set evaluation (agreement with the teacher on held-out synthetic images only)')
    .addOption(num('--test-limit <n>', 'evaluate on the first N test images only', positiveInt))
    .addOption(num('--eval-every <n>', 'test accuracy every N epochs (and always after the last)', positiveInt).default(1))
    .addOption(num('--eval-batch <n>', 'batch size of evaluation and calibration', positiveInt).default(256))
    .addOption(num('--calib <n>', 'layer/channel-static: calibrate on the first N batches of the training split', positiveInt).default(4))
    .addOption(new Option('--calib-source <src>', 'layer/channel-static: start ranges from real training images (when found) or from an untrained generator\'s images (zero-shot from the first step)').choices(['real', 'generator']).default('real'))
    .addOption(num('--agree-images <n>', 'held-out synthetic images for the agreement with the teacher', positiveInt).default(512))
    .option('--json', 'print result.json as one line, last on stdout');
}

export function addQuantizeCommand(program: Command, setExit: (code: number) => void): void {
  quantizeOptions(program.command('quantize'))
    .action(async (opts: Omit<QuantizeCliOptions, 'model'> & { model?: string }) =>
      setExit(await runQuantizeCli({ ...opts, model: resolveModelArg(opts.model) })));
}

const f4 = (x: number | null) => (x === null ? '-' : x.toFixed(4));
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);

/** The policy from the flags; --weight and --weight-clip default to the preset's (presetPolicy). */
export function policyFromOptions(o: QuantizeCliOptions): QuantPolicy {
  const p = presetPolicy(o.preset);
  const weightClip = o.weightClip ?? (o.weight === undefined ? p.weightClip : undefined);
  return validatePolicy({
    wbits: o.wbits, abits: o.abits, act: o.act, weight: o.weight ?? p.weight,
    ...(o.skip ? { skip: o.skip.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    ...(o.releasedEma ? { releasedEma: true } : {}),
    ...(weightClip ? { weightClip } : {}),
  });
}

export async function runQuantizeCli(o: QuantizeCliOptions): Promise<number> {
  const config = configFromOptions(o);
  const policy = policyFromOptions(o);
  const err = (s: string) => process.stderr.write(`${s}\n`);
  const stop = catchInterrupt(err);
  const progress = new RunProgress();
  try {
    const outcome = await runQuantize({
      model: o.model, policy, preset: o.preset, config, out: o.out, resume: o.resume ?? false, data: o.data, test: o.test,
      testLimit: o.testLimit, evalEvery: o.evalEvery, evalBatch: o.evalBatch, calib: o.calib, calibSource: o.calibSource, agreeImages: o.agreeImages,
    }, {
      log: err,
      epochStart(e, done, cfg) {
        progress.startEpoch(`epoch ${e + 1}/${cfg.epochs}${e < cfg.warmupEpochs ? ' (warm-up)' : ''}`,
          cfg.itersPerEpoch, done, (cfg.epochs - e) * cfg.itersPerEpoch - done);
      },
      iteration(_e, i, l) {
        progress.iteration(i, { G: f4(l.generator), S: f4(l.student), bns: f4(l.bns) });
      },
      epochEnd(rec: EpochRecord) {
        progress.endEpoch();
        err(`epoch ${rec.epoch}: G ${f4(rec.loss.generator)}, S ${f4(rec.loss.student)}, lr_s ${rec.lr_s}, lr_g ${rec.lr_g}` +
          `${rec.test_top1 !== undefined ? `, test top-1 ${pct(rec.test_top1)}` : ''}` +
          `${rec.test_top1_raw !== undefined ? ` (average; latest iterate ${pct(rec.test_top1_raw)})` : ''}, ${rec.wall_s.toFixed(1)} s`);
      },
      interrupted: () => stop.requested,
    });
    progress.endEpoch();
    if (outcome.status === 'interrupted') {
      err(`interrupted at epoch ${outcome.epoch + 1}, iteration ${outcome.iter}/${config.itersPerEpoch}; checkpoint ${outcome.checkpoint}`);
      err(`resume with: ${resumeCommand()}`);
      return 130;
    }
    const r = outcome.result as Record<string, unknown> & { agreement: { ptq: number; final: number; images: number } };
    const out = process.stdout;
    out.write(`model      ${String(r['model'])}\n`);
    const div = r['diverged'] as { reason: string } | undefined;
    if (div) out.write(`diverged   ${div.reason}: the run stopped there (the figures below are of the diverged student)\n`);
    if (r['test']) {
      const best = r['best_epoch'] as { epoch: number; top1: number } | null;
      out.write(`test top-1 FP ${pct(r['fp_top1'] as number)}, PTQ start ${pct(r['ptq_top1'] as number)}, final ${pct(r['final_top1'] as number)}` +
        `${best ? ` (best epoch ${best.epoch}: ${pct(best.top1)}, test-set selection)` : ''}\n`);
      const v = r['vs_fp'] as { student_only: number; fp_only: number; mcnemar_p: number } | null;
      if (v) out.write(`vs FP      ${pairedLine(v.student_only, v.fp_only, v.mcnemar_p, 'the student', 'FP')}\n`);
    }
    const bits = r['bits'] as Record<string, { bits_per_weight: number; bytes: number; fp32_bytes: number }>;
    out.write(`storage    ${STORAGES.map((st) => `${st} ${bits[st]!.bits_per_weight.toFixed(2)} bits/weight, ${(bits[st]!.bytes / 1024).toFixed(1)} KiB`).join('; ')} ` +
      `(FP32 ${(bits['f32']!.fp32_bytes / 1024).toFixed(1)} KiB; result.json has every layer)\n`);
    out.write(`agreement  with the teacher on ${r.agreement.images} held-out synthetic images: PTQ start ${pct(r.agreement.ptq)}, final ${pct(r.agreement.final)}\n`);
    out.write(`wrote      ${outcome.files.join(', ')}\n`);
    if (o.json) out.write(`${JSON.stringify(r)}\n`);
    return 0;
  } finally {
    stop.dispose();
  }
}
