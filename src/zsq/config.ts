/**
 * Zero-shot QAT settings (zsq-report A.6): the released AdaDFQ/GranQ recipe, every value overridable.
 * Presets are named after the papers' configurations; `quick` ones are sized for a 2-core CPU.
 */
import { GranqError } from '../errors.js';
import type { WeightClip, WeightKind } from '../quant/quantizer.js';

export interface ZsqConfig {
  epochs: number;
  itersPerEpoch: number;
  batch: number;
  warmupEpochs: number; // the student is not updated before this epoch
  lrStudent: number;
  lrGenerator: number;
  milestones: number[]; // lr x gamma at these epochs (both optimizers)
  lrGamma: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  generatorBetas: [number, number];
  temperature: number; // T of the student loss
  studentLoss: 'entropy' | 'kl'; // released AdaDFQ form, or GDFQ's KL*T^2 + CE
  marginLower: number; // lambda_l
  marginUpper: number; // lambda_u
  alphaDs: number;
  alphaAs: number;
  beta: number; // weight of (alphaDs L_ds + alphaAs L_as)
  gamma: number; // weight of the BNS loss
  seed: number;
  // Options beyond the released recipe (absent = released; docs/results.md has what each bought):
  /** The generator is updated only in epochs before this one; later epochs sample the frozen generator. */
  generatorEpochs?: number;
  /** L2 pull of the student's parameters towards the teacher's (L2-SP): adds anchor·(w − w_teacher) to each gradient. */
  anchor?: number;
  /** 'cosine': the student's lr follows a cosine from lrStudent at epoch 0 to 0 at the last epoch (milestones then
   * apply to the generator only); absent: the released multistep schedule for both. */
  studentSchedule?: 'cosine';
  /** The student's own multistep milestones: its lr x lrGamma at each of these epochs, the generator's keeping
   * `milestones` (IntraQ's and HAST's fine-tuning decays the lr at epochs 20, 40 and 60 of 151); absent: the
   * student follows `milestones`. Not with studentSchedule 'cosine'. */
  studentMilestones?: number[];
  /** The student step sees the generator's images shifted by up to this many pixels (zero fill) and mirrored with
   * probability 1/2, the teacher run again on them (DeepInversion's jitter and flip; 0 or absent: released). */
  augment?: number;
  /** The student step sees the generator's images through an ideal low-pass filter that keeps the spatial
   * frequencies within this radius (cycles per image; SynQ's filter), the teacher run again on them (absent: released). */
  lowPass?: number;
  /** The student step sees the generator's images CutMixed with each other: each image, with this probability, gets
   * a box of another image of the batch (a fraction uniform in [0, 1) of its area), the teacher run again on them
   * (MixMix's data mixing; absent: released). After lowPass and augment. */
  cutmix?: number;
  /** Polyak averaging of the student: an exponential moving average of its parameters with this decay per student
   * step is kept beside them; the average is what is evaluated and saved (the latest iterate is logged apart as
   * test_top1_raw). Training itself does not change (absent: released). */
  ema?: number;
  /** Feature distillation: adds this weight x the mean over BatchNorm layers of the mean squared difference of the
   * student's and the teacher's BN inputs, scaled per channel as the teacher's BN scales them (|γ| / std), to the student loss
   * (FeatureKdLoss; absent or 0: released). */
  featureKd?: number;
  /** The student's target is the teacher's logits averaged over each image and its mirror image (the teacher with
   * flip test-time augmentation, distilled into a student evaluated without it: on the CIFAR-10 test set the default
   * teacher scores 93.33 alone and 94.11 so averaged). One more teacher forward per student step (absent: released). */
  kdMirror?: boolean;
}

const RELEASED: ZsqConfig = {
  epochs: 200, itersPerEpoch: 200, batch: 16, warmupEpochs: 4,
  lrStudent: 1e-4, lrGenerator: 1e-3, milestones: [100, 200, 300], lrGamma: 0.1,
  momentum: 0.9, weightDecay: 1e-4, nesterov: true, generatorBetas: [0.5, 0.999],
  temperature: 20, studentLoss: 'entropy', marginLower: 0.1, marginUpper: 0.8,
  alphaDs: 0.2, alphaAs: 0.1, beta: 1, gamma: 1, seed: 2,
};

/** A preset's weight rule and range choice, used where `quantize` gets no --weight / --weight-clip (else slice, min/max). */
export interface PresetPolicy { weight: WeightKind; weightClip?: WeightClip }

/** plus-cifar10's changes to the released recipe: the BNS-only generator (no L_ds/L_as, margin loss off), a cosine student lr. */
const PLUS: ZsqConfig = { ...RELEASED, alphaDs: 0, alphaAs: 0, marginLower: 0, marginUpper: 1, studentSchedule: 'cosine' };

export const PRESETS: Record<string, { config: ZsqConfig; note: string; policy?: PresetPolicy }> = {
  'paper-cifar10': { config: { ...RELEASED }, note: "GranQ's CIFAR-10 config: batch 16, 200 epochs x 200 iterations (AdaDFQ used 400 epochs)" },
  'paper-cifar100': { config: { ...RELEASED, batch: 200 }, note: "GranQ's CIFAR-100 config: batch 200, 200 epochs x 200 iterations" },
  'plus-cifar10': {
    config: { ...PLUS },
    note: "beyond the released recipe: paper-cifar10's schedule with the generator on the BNS loss alone (no L_ds/L_as, " +
      'margin loss off) and a cosine student lr; meant with --weight channel --weight-clip mse (docs/results.md)',
  },
  'plus-frozen-cifar10': {
    config: { ...PLUS, lrStudent: 2.5e-5, augment: 4, generatorEpochs: 50 },
    policy: { weight: 'channel', weightClip: 'learned' },
    note: 'beyond the released recipe, for the full schedule: plus-cifar10 with the student lr 2.5e-5, its images shifted and ' +
      'mirrored (--augment 4), the generator frozen after epoch 50, and per-output-channel weights with trained ranges ' +
      '(--weight channel --weight-clip learned unless given); it ends -2.96 ± 0.31 (W3A3, four seeds) and -0.39 (W4A4, ' +
      'two seeds) from FP on the default teacher (docs/results.md)',
  },
  quick: {
    config: { ...RELEASED, epochs: 20, itersPerEpoch: 50, milestones: [10], warmupEpochs: 2 },
    note: 'CPU-sized: 20 epochs x 50 iterations at batch 16 (1,000 iterations instead of 40,000), warm-up 2, lr decay at 10',
  },
  tiny: {
    config: { ...RELEASED, epochs: 3, itersPerEpoch: 4, batch: 8, milestones: [2], warmupEpochs: 1 },
    note: 'for tests: 3 epochs x 4 iterations at batch 8',
  },
};

function preset(name: string) {
  const p = PRESETS[name];
  if (!p) throw new GranqError(`--preset: unknown preset '${name}'; known: ${Object.keys(PRESETS).join(', ')}`);
  return p;
}

export function presetConfig(name: string): ZsqConfig {
  return structuredClone(preset(name).config);
}

/** The weight rule and range choice the preset is meant with (the released ones, slice and min/max, by default). */
export function presetPolicy(name: string): PresetPolicy {
  return { weight: 'slice', ...preset(name).policy };
}
