/**
 * A quantizer = a range estimator + a fake-quant op + two switches: `observing` (the estimator updates; off =
 * frozen) and `quantizing` (off = identity). Quantizers are Modules so they sit in the model tree (namedModules
 * finds them, Sequential runs them); the concrete ones are one file each under act/ and weight/.
 */
import { check } from '../errors.js';
import { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import type { RangeEstimator } from './estimators.js';
import { fakeQuantRows, isBitWidth, MAX_BITS, MIN_BITS } from './fake-quant.js';

export const ACT_KINDS = ['granq', 'channel-loop', 'layer', 'channel-static'] as const;
export const WEIGHT_KINDS = ['slice', 'channel', 'tensor'] as const;
export type ActKind = (typeof ACT_KINDS)[number];
export type WeightKind = (typeof WEIGHT_KINDS)[number];

/** What an activation quantizer kind can do, asked instead of switching on kind strings. */
export interface ActCapabilities {
  /** Its ranges are state (estimated, then kept; saved in checkpoints and students), not recomputed per forward. */
  staticRange: boolean;
  /** It must see data (calibration) before its ranges mean anything. */
  needsCalibration: boolean;
  /** Its ranges follow an EMA (the GDFQ/AdaDFQ `layer` rule; `--released-ema` picks the released bias correction). */
  ema: boolean;
  /** In zero-shot QAT its ranges update during the warm-up epochs only, then freeze (released GDFQ/AdaDFQ). */
  observesInWarmupOnly: boolean;
}

export const ACT_CAPABILITIES: Readonly<Record<ActKind, ActCapabilities>> = {
  'granq': { staticRange: false, needsCalibration: false, ema: false, observesInWarmupOnly: false },
  'channel-loop': { staticRange: false, needsCalibration: false, ema: false, observesInWarmupOnly: false },
  'layer': { staticRange: true, needsCalibration: true, ema: true, observesInWarmupOnly: true },
  'channel-static': { staticRange: true, needsCalibration: true, ema: false, observesInWarmupOnly: false },
};

/** Called after every forward with the quantizer's input and output (error analysis, probes). */
export type QuantHook = (x: Tensor, y: Tensor, q: Quantizer) => void;

export abstract class Quantizer extends Module {
  abstract readonly kind: ActKind | WeightKind;
  abstract readonly estimator: RangeEstimator;
  /** Clamp codes to [-2^(k-1), 2^(k-1) - 1] (GDFQ); the released GranQ rows quantizer has none. */
  abstract readonly clamp: boolean;
  quantizing = true;
  readonly hooks: QuantHook[] = [];

  constructor(readonly bits: number) {
    super();
    check(isBitWidth(bits), () => `quantizer: bits must be an integer in ${MIN_BITS}..${MAX_BITS}, got ${bits}`);
  }

  get observing(): boolean {
    return this.estimator.observing;
  }
  set observing(on: boolean) {
    this.estimator.observing = on;
  }

  /** Fake-quantizes x with the current ranges, whatever the switches say. */
  abstract quantize(x: Tensor): Tensor;

  forward(x: Tensor): Tensor {
    this.estimator.observe(x);
    const y = this.quantizing ? this.quantize(x) : x;
    for (const h of this.hooks) h(x, y, this);
    return y;
  }
}

export abstract class ActQuantizer extends Quantizer {
  abstract override readonly kind: ActKind;
  readonly role = 'act' as const;
}

/** Weight quantizers re-quantize the FP master weight at every forward (ranges from the current weight). */
export abstract class WeightQuantizer extends Quantizer {
  abstract override readonly kind: WeightKind;
  readonly role = 'weight' as const;

  /** The rule: the [rows, cols] view of a weight of this shape, one range (scale, zero point) per row. */
  abstract rowsOf(shape: readonly number[]): [number, number];

  quantize(w: Tensor): Tensor {
    return fakeQuantRows(w, this.bits, this.rowsOf(w.shape), this.clamp);
  }
}
