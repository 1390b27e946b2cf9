/**
 * `granq train`: a full-precision CIFAR-10 teacher from scratch (src/train/run.ts does the work). This file turns
 * flags into a TrainConfig, draws the per-epoch progress bar on stderr and handles Ctrl-C (interrupt.ts), as
 * `granq quantize` does.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { isModelName, MODEL_NAMES } from '../models/registry.js';
import { DEFAULT_TRAIN_CONFIG, SCHEDULES, type Schedule, type TrainConfig } from '../train/config.js';
import { runTrain, type TrainEpochRecord } from '../train/run.js';
import { DATA_DEFAULT_HELP, nonNegativeInt, nonNegativeIntList, nonNegativeNumber, positiveInt, positiveNumber } from './args.js';
import { catchInterrupt, resumeCommand } from './interrupt.js';
import { RunProgress } from './progress.js';

export interface TrainCliOptions {
  model: string; out: string; resume?: boolean; data?: string; epochs: number; batch: number; lr: number; momentum: number;
  nesterov: boolean; weightDecay: number; schedule: Schedule; milestones: number[]; lrGamma: number; labelSmoothing: number;
  cropPadding: number; flip: boolean; cutout: number; seed: number; evalEvery: number; evalBatch: number; trainLimit?: number; testLimit?: number;
  init?: string; json?: boolean;
}

export function trainConfigFromOptions(o: TrainCliOptions): TrainConfig {
  return {
    model: o.model, epochs: o.epochs, batch: o.batch, lr: o.lr, momentum: o.momentum, nesterov: o.nesterov,
    weightDecay: o.weightDecay, schedule: o.schedule, milestones: o.milestones, lrGamma: o.lrGamma,
    labelSmoothing: o.labelSmoothing, cropPadding: o.cropPadding, flip: o.flip, cutout: o.cutout, seed: o.seed,
  };
}

export function addTrainCommand(program: Command, setExit: (code: number) => void): void {
  const d = DEFAULT_TRAIN_CONFIG;
  const num = (flag: string, desc: string, parse: (v: string) => unknown, def: unknown) => new Option(flag, desc).argParser(parse).default(def);
  program
    .command('train')
    .description('train a full-precision CIFAR-10 classifier from scratch (SGD Nesterov, weight decay, cosine or multistep ' +
      'schedule, random crop + flip, optional Cutout); writes DIR/log.jsonl, DIR/checkpoint.safetensors (every epoch), ' +
      'DIR/model.safetensors + model.json (a teacher for eval/quantize) and DIR/result.json')
    .addOption(new Option('--model <name>', `architecture: resnet<6n+2>-a (option-A shortcuts) or -b (projection), e.g. ${MODEL_NAMES.join(', ')}`)
      .argParser((v: string) => {
        if (!isModelName(v)) throw new InvalidArgumentError(`expected resnet<6n+2>-a|b (e.g. resnet20-b, resnet56-a), got '${v}'`);
        return v;
      }).default(d.model))
    .requiredOption('--out <dir>', 'output directory')
    .option('--resume', 'continue from DIR/checkpoint.safetensors (same flags)')
    .option('--init <file>', 'start from these weights (.safetensors + sidecar, same --model) instead of a random init; ' +
      'optimizer and schedule start fresh (fine-tuning, a warm restart)')
    .option('--data <dir>', `data directory (default: ${DATA_DEFAULT_HELP})`)
    .addOption(num('--epochs <n>', 'epochs', positiveInt, d.epochs))
    .addOption(num('--batch <n>', 'batch size', positiveInt, d.batch))
    .addOption(num('--lr <x>', 'initial learning rate', positiveNumber, d.lr))
    .addOption(num('--momentum <x>', 'SGD momentum', nonNegativeNumber, d.momentum))
    .option('--no-nesterov', 'plain momentum instead of Nesterov')
    .addOption(num('--weight-decay <x>', 'SGD weight decay (every parameter)', nonNegativeNumber, d.weightDecay))
    .addOption(new Option('--schedule <name>', 'learning-rate schedule, stepped per epoch').choices([...SCHEDULES]).default(d.schedule))
    .addOption(num('--milestones <list>', "multistep: epochs at which lr is multiplied by --lr-gamma ('none' for none)", nonNegativeIntList, d.milestones))
    .addOption(num('--lr-gamma <x>', 'multistep: decay factor', positiveNumber, d.lrGamma))
    .addOption(num('--label-smoothing <x>', 'label smoothing of the cross-entropy (0: none)', nonNegativeNumber, d.labelSmoothing))
    .addOption(num('--crop-padding <n>', 'random crop after zero padding by N pixels (0: no crop)', nonNegativeInt, d.cropPadding))
    .option('--no-flip', 'no random horizontal flip')
    .addOption(num('--cutout <n>', 'Cutout: zero an N x N square at a random centre after normalisation (0: none)', nonNegativeInt, d.cutout))
    .addOption(num('--seed <n>', 'seed of the weight init and of every epoch\'s order and augmentation', nonNegativeInt, d.seed))
    .addOption(num('--eval-every <n>', 'test accuracy every N epochs (and always after the last)', positiveInt, 1))
    .addOption(num('--eval-batch <n>', 'batch size of evaluation', positiveInt, 256))
    .addOption(new Option('--train-limit <n>', 'train on the first N training images only').argParser(positiveInt))
    .addOption(new Option('--test-limit <n>', 'evaluate on the first N test images only').argParser(positiveInt))
    .option('--json', 'print result.json as one line, last on stdout')
    .action(async (opts: TrainCliOptions) => setExit(await runTrainCli(opts)));
}

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);

export async function runTrainCli(o: TrainCliOptions): Promise<number> {
  const config = trainConfigFromOptions(o);
  const err = (s: string) => process.stderr.write(`${s}\n`);
  const stop = catchInterrupt(err);
  const progress = new RunProgress();
  try {
    const outcome = await runTrain({
      config, out: o.out, resume: o.resume ?? false, data: o.data, trainLimit: o.trainLimit, testLimit: o.testLimit,
      evalEvery: o.evalEvery, evalBatch: o.evalBatch, init: o.init,
    }, {
      log: err,
      epochStart(e, done, perEpoch, cfg) {
        progress.startEpoch(`epoch ${e + 1}/${cfg.epochs}`, perEpoch, done, (cfg.epochs - e) * perEpoch - done);
      },
      iteration(_e, i, loss) {
        progress.iteration(i, { loss: loss.toFixed(4) });
      },
      epochEnd(rec: TrainEpochRecord) {
        progress.endEpoch();
        err(`epoch ${rec.epoch}: loss ${rec.loss.toFixed(4)}, train top-1 ${pct(rec.train_top1)}, lr ${rec.lr.toPrecision(4)}` +
          `${rec.test_top1 !== undefined ? `, test top-1 ${pct(rec.test_top1)}` : ''}, ${rec.wall_s.toFixed(1)} s`);
      },
      interrupted: () => stop.requested,
    });
    progress.endEpoch();
    if (outcome.status === 'interrupted') {
      err(`interrupted at epoch ${outcome.epoch + 1}, iteration ${outcome.iter}; checkpoint ${outcome.checkpoint}`);
      err(`resume with: ${resumeCommand()}`);
      return 130;
    }
    const r = outcome.result as { final_top1: number; best_epoch: { epoch: number; top1: number } | null; test: { images: number } };
    const out = process.stdout;
    out.write(`test top-1 ${pct(r.final_top1)} on ${r.test.images} images (final epoch)` +
      `${r.best_epoch ? `; best epoch ${r.best_epoch.epoch}: ${pct(r.best_epoch.top1)} (test-set selection)` : ''}\n`);
    out.write(`wrote      ${outcome.files.join(', ')}\n`);
    if (o.json) out.write(`${JSON.stringify(outcome.result)}\n`);
    return 0;
  } finally {
    stop.dispose();
  }
}
