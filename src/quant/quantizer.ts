/**
 * A quantizer = a range estimator + a fake-quant op + two switches: `observing` (the estimator updates; off =
 * frozen) and `quantizing` (off = identity). Quantizers are Modules so they sit in the model tree (namedModules
 * finds them, Sequential runs them); the concrete ones are one file each under act/ and weight/.
 */
import { check, GranqError } from '../errors.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { qparams, quantCode } from '../backend/ref/quant.js';
import { mseClipRanges, rowMinMax, type RangeEstimator, type Ranges } from './estimators.js';
import { fakeQuantGroups, fakeQuantLearned, fakeQuantRows, isBitWidth, MAX_BITS, MIN_BITS, type ActCodes, type CodesOut } from './fake-quant.js';

export const ACT_KINDS = ['granq', 'channel-loop', 'layer', 'channel-static'] as const;
export const WEIGHT_KINDS = ['slice', 'channel', 'tensor'] as const;
export type ActKind = (typeof ACT_KINDS)[number];
export type WeightKind = (typeof WEIGHT_KINDS)[number];
/**
 * How a weight row's range is chosen: 'minmax' (every published ZSQ method), 'mse' (the clipped range of least
 * squared error, searched at every forward; see estimators.ts mseClipRanges), or 'learned' (each row's range [lo, hi]
 * a trained parameter of the quantizer, starting at the mse range of the weight it is bound to; LSQ-style gradients,
 * fakeQuantLearnedOp). 'mse' and 'learned' need a clamping rule.
 */
export const WEIGHT_CLIPS = ['minmax', 'mse', 'learned'] as const;
export type WeightClip = (typeof WEIGHT_CLIPS)[number];

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

/** A weight's integer form per row: value = (code + zero) / scale (zero exact in double: it can pass 2^24). */
export interface RowCodes {
  rows: number;
  cols: number;
  codes: Int32Array;
  scale: Float32Array;
  zero: Float64Array;
}

/**
 * The integer codes, scales and zero points of x [rows, cols] fake-quantized per row with the given ranges, by the
 * kernels' own rule (their reference twin, ref/quant.ts): the one place a weight's codes are computed.
 */
export function rowCodes(x: Float32Array, rows: number, cols: number, bits: number, clamp: boolean, ranges: Ranges): RowCodes {
  const codes = new Int32Array(rows * cols);
  const scale = new Float32Array(rows);
  const zero = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const { s, z } = qparams(ranges.mins[r]!, ranges.maxs[r]!, bits);
    scale[r] = s;
    zero[r] = z;
    for (let i = r * cols; i < (r + 1) * cols; i++) codes[i] = quantCode(x[i]!, s, z, bits, clamp);
  }
  return { rows, cols, codes, scale, zero };
}

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

  /**
   * quantize(x) with its integer form (codes, base and scale per (sample, channel)), for integer inference; written
   * into `out` when given.
   */
  abstract quantizeCodes(x: Tensor, out?: CodesOut): ActCodes;
}

/** Weight quantizers re-quantize the FP master weight at every forward (ranges from the current weight). */
export abstract class WeightQuantizer extends Quantizer {
  abstract override readonly kind: WeightKind;
  readonly role = 'weight' as const;

  /** clip 'learned': the trained range of each row (parameters 'lo' and 'hi'), set by bind(). */
  private learned: { lo: Tensor; hi: Tensor } | null = null;

  constructor(bits: number, readonly clip: WeightClip = 'minmax') {
    super(bits);
  }

  /** The rule: the [rows, cols] view of a weight of this shape, one range (scale, zero point) per row. */
  abstract rowsOf(shape: readonly number[]): [number, number];

  /**
   * Called once by the layer that owns the weight. clip 'learned': registers the trained ranges as parameters 'lo'
   * and 'hi' (one per row), starting at the weight's mse ranges; nothing for the other clips.
   */
  bind(w: Tensor): void {
    if (this.clip !== 'learned') return;
    check(this.learned === null, () => `${this.kind} weight quantizer: bound twice`);
    const [rows, cols] = this.rowsOf(w.shape);
    const r = mseClipRanges(w.data, rows, cols, this.bits);
    this.learned = { lo: this.param('lo', new Tensor(r.mins.slice(), [rows])), hi: this.param('hi', new Tensor(r.maxs.slice(), [rows])) };
  }

  /** Each row's range as quantize() uses it for the weight w (its current values). */
  rowRanges(w: Tensor): Ranges {
    const [rows, cols] = this.rowsOf(w.shape);
    if (this.clip === 'learned') {
      const l = this.learnedRanges();
      check(l.lo.size === rows, () => `${this.kind} weight quantizer: ${l.lo.size} trained ranges for a weight of ${rows} rows`);
      return { mins: l.lo.data, maxs: l.hi.data };
    }
    return this.clip === 'mse' ? mseClipRanges(w.data, rows, cols, this.bits) : rowMinMax(w.data, rows, cols);
  }

  private learnedRanges(): { lo: Tensor; hi: Tensor } {
    if (!this.learned) throw new GranqError(`${this.kind} weight quantizer: clip 'learned' has no ranges; bind() it to its weight first`);
    return this.learned;
  }

  /**
   * The codes a loaded weight came from (a `.granq` pack: its weight holds their dequantized values and `quantizing`
   * is off, since re-quantizing those is not always the identity); codes() hands them out as they are.
   */
  stored: RowCodes | null = null;

  /** The integer form of quantize(w): codes, scale and zero point per row. */
  codes(w: Tensor): RowCodes {
    if (this.stored) return this.stored;
    const [rows, cols] = this.rowsOf(w.shape);
    return rowCodes(w.data, rows, cols, this.bits, this.clamp, this.rowRanges(w));
  }

  quantize(w: Tensor): Tensor {
    const [rows, cols] = this.rowsOf(w.shape);
    if (this.clip === 'minmax') return fakeQuantRows(w, this.bits, [rows, cols], this.clamp);
    check(this.clamp, () => `${this.kind} weight quantizer: clip '${this.clip}' needs clamped codes`);
    if (this.clip === 'learned') {
      const l = this.learnedRanges();
      return fakeQuantLearned(w, l.lo, l.hi, this.bits, [rows, cols]);
    }
    const r = this.rowRanges(w);
    return fakeQuantGroups(w, this.bits, [1, rows, cols], r.mins, r.maxs, true);
  }
}
