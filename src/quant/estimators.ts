/**
 * Range estimators, apart from fake quantization: observe(x) updates a range, ranges() hands the kernel its
 * (min, max) per group, qparams() the scale and zero point it implies. `observing` is the freeze switch.
 *  - MinMaxEstimator: running min/max over everything observed (per tensor, or per channel along `axis`).
 *  - EmaEstimator: EMA of batch min/max (beta 0.9), correct bias correction by default, the released recursive one
 *    behind `releasedBiasCorrection` (it divides the already-corrected value again and overshoots early).
 *  - StaticChannelEstimator: per-channel min/max over (B, H, W), calibrated over batches, then frozen.
 *  - RowsEstimator: dynamic per (sample, channel); the range is computed inside the rows kernel.
 *  - mseClipRanges: per row, the clipped range [a·min, a·max] of least squared quantization error (weights).
 */
import { backend, REDUCE } from '../backend/index.js';
import { qparams as qparamsOf, rowRange } from '../backend/ref/quant.js';
import { check, GranqError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';

export type Granularity = 'tensor' | 'channel' | 'row';

export interface Ranges { mins: Float32Array; maxs: Float32Array }

/**
 * What a stateful estimator must save for a checkpoint or a saved student (JSON-safe: EMA fields are doubles,
 * min/max arrays float32 values; both round-trip exactly through JSON). Dynamic estimators have none.
 */
export type EstimatorState =
  | { kind: 'ema'; rawMin: number; rawMax: number; betaT: number; steps: number; observing: boolean }
  | { kind: 'minmax'; mins: number[] | null; maxs: number[] | null; observing: boolean };

export interface RangeEstimator {
  readonly granularity: Granularity;
  /** Whether observe() updates the range (false = frozen). */
  observing: boolean;
  observe(x: Tensor): void;
  /** The current ranges, one per group; null when nothing was observed yet (or the range is dynamic). */
  ranges(): Ranges | null;
  /** The observed state (null: nothing to save, the range is dynamic). */
  getState(): EstimatorState | null;
  /** Restores getState()'s value; `where` names the quantizer in the error when the kind does not fit. */
  setState(s: EstimatorState, where: string): void;
}

function wrongKind(s: EstimatorState, where: string): never {
  throw new GranqError(`${where}: saved range state of kind '${s.kind}' does not fit the model's quantizer`);
}

/** Scale s = n / max(M - m, 1e-8) and zero point z = round(s m) + 2^(bits-1) per group, as the kernels compute them. */
export function qparams(r: Ranges, bits: number): { scale: Float32Array; zeroPoint: Float32Array } {
  const scale = new Float32Array(r.mins.length);
  const zeroPoint = new Float32Array(r.mins.length);
  for (let g = 0; g < r.mins.length; g++) {
    const { s, z } = qparamsOf(r.mins[g]!, r.maxs[g]!, bits);
    scale[g] = s;
    zeroPoint[g] = z;
  }
  return { scale, zeroPoint };
}

/** [outer, groups, inner] of x with `axis` as the groups dimension (axis undefined: one group). */
export function groupView(shape: readonly number[], axis?: number): [number, number, number] {
  const size = shape.reduce((p, s) => p * s, 1);
  if (axis === undefined) return [1, 1, size];
  check(axis >= 0 && axis < shape.length, () => `range estimator: channel axis ${axis} out of range for rank ${shape.length}`);
  const outer = shape.slice(0, axis).reduce((p, s) => p * s, 1);
  const inner = shape.slice(axis + 1).reduce((p, s) => p * s, 1);
  return [outer, shape[axis]!, inner];
}

/** Batch min and max per group (one reduction kernel call each). */
export function batchRanges(x: Tensor, axis?: number): Ranges {
  const [outer, groups, inner] = groupView(x.shape, axis);
  const mins = new Float32Array(groups);
  const maxs = new Float32Array(groups);
  const p = { shape: [outer, groups, inner, 1] as [number, number, number, number], mask: [true, false, true, false] as [boolean, boolean, boolean, boolean], x: x.data };
  backend().reduceFwd({ ...p, op: REDUCE.min, y: mins });
  backend().reduceFwd({ ...p, op: REDUCE.max, y: maxs });
  return { mins, maxs };
}

export class MinMaxEstimator implements RangeEstimator {
  observing = true;
  readonly granularity: Granularity;
  protected state: Ranges | null = null;
  constructor(readonly axis?: number) {
    this.granularity = axis === undefined ? 'tensor' : 'channel';
  }
  observe(x: Tensor): void {
    if (!this.observing) return;
    const b = batchRanges(x, this.axis);
    if (this.state === null) {
      this.state = b;
      return;
    }
    check(b.mins.length === this.state.mins.length,
      () => `range estimator: observed ${b.mins.length} channels after ${this.state!.mins.length}`);
    for (let g = 0; g < b.mins.length; g++) {
      this.state.mins[g] = Math.min(this.state.mins[g]!, b.mins[g]!);
      this.state.maxs[g] = Math.max(this.state.maxs[g]!, b.maxs[g]!);
    }
  }
  ranges(): Ranges | null {
    return this.state;
  }
  getState(): EstimatorState {
    const st = this.state;
    return { kind: 'minmax', mins: st ? [...st.mins] : null, maxs: st ? [...st.maxs] : null, observing: this.observing };
  }
  setState(s: EstimatorState, where: string): void {
    if (s.kind !== 'minmax') wrongKind(s, where);
    this.state = s.mins && s.maxs ? { mins: Float32Array.from(s.mins), maxs: Float32Array.from(s.maxs) } : null;
    this.observing = s.observing;
  }
  reset(): void {
    this.state = null;
  }
}

/** Per-channel ranges over (B, H, W) of NCHW activations: calibrate on a few batches, then freeze(). */
export class StaticChannelEstimator extends MinMaxEstimator {
  constructor() {
    super(1);
  }
  freeze(): void {
    this.observing = false;
  }
}

export interface EmaOptions { beta?: number; releasedBiasCorrection?: boolean }

export class EmaEstimator implements RangeEstimator {
  observing = true;
  readonly granularity = 'tensor' as const;
  readonly beta: number;
  readonly releasedBiasCorrection: boolean;
  /** beta^t after t observations. */
  betaT = 1;
  steps = 0;
  // Correct variant: raw running averages (bias-corrected on read). Released variant: the corrected value itself.
  private rawMin = 0;
  private rawMax = 0;
  constructor(opts: EmaOptions = {}) {
    this.beta = opts.beta ?? 0.9;
    this.releasedBiasCorrection = opts.releasedBiasCorrection ?? false;
    check(this.beta > 0 && this.beta < 1, () => `EMA estimator: beta must be in (0, 1), got ${this.beta}`);
  }
  observe(x: Tensor): void {
    if (!this.observing) return;
    const { mins, maxs } = batchRanges(x);
    this.observeRange(mins[0]!, maxs[0]!);
  }
  /** One EMA step with a batch's min and max. */
  observeRange(m: number, M: number): void {
    const b = this.beta;
    this.betaT *= b;
    this.steps++;
    if (this.releasedBiasCorrection) {
      // GDFQ's QuantAct: x = (x b + batch (1 - b)) / (1 - b^t), applied to the already-corrected x.
      this.rawMin = (this.rawMin * b + m * (1 - b)) / (1 - this.betaT);
      this.rawMax = (this.rawMax * b + M * (1 - b)) / (1 - this.betaT);
    } else {
      this.rawMin = this.rawMin * b + m * (1 - b);
      this.rawMax = this.rawMax * b + M * (1 - b);
    }
  }
  ranges(): Ranges | null {
    if (this.steps === 0) return null;
    const corr = this.releasedBiasCorrection ? 1 : 1 - this.betaT;
    return { mins: Float32Array.of(this.rawMin / corr), maxs: Float32Array.of(this.rawMax / corr) };
  }
  getState(): EstimatorState {
    return { kind: 'ema', rawMin: this.rawMin, rawMax: this.rawMax, betaT: this.betaT, steps: this.steps, observing: this.observing };
  }
  setState(s: EstimatorState, where: string): void {
    if (s.kind !== 'ema') wrongKind(s, where);
    ({ rawMin: this.rawMin, rawMax: this.rawMax, betaT: this.betaT, steps: this.steps, observing: this.observing } = s);
  }
}

/**
 * Dynamic min/max of the tensor being quantized, computed inside the rows kernel at every forward: per row (GranQ:
 * per (sample, channel) over H·W; weight kernel slices), or per output channel / whole tensor for weights.
 */
export class RowsEstimator implements RangeEstimator {
  constructor(readonly granularity: Granularity = 'row') {}
  /** Nothing to observe: the switch exists for a uniform interface and has no effect. */
  observing = false;
  observe(): void {}
  ranges(): null {
    return null;
  }
  getState(): null {
    return null;
  }
  setState(s: EstimatorState, where: string): void {
    wrongKind(s, where);
  }
}

/** The clip ratios the `mse` weight clip searches: a = 1, 0.98, ..., 0.3 (36 candidates; a = 1 is min/max). */
export const CLIP_SEARCH = { steps: 36, lowest: 0.3 } as const;

/**
 * Each row's range of x [rows, cols] clipped to the candidate [a·min, a·max] (CLIP_SEARCH) whose clamped fake
 * quantization at `bits` has the least squared error; recomputed from the current values, like min/max.
 */
export function mseClipRanges(x: Float32Array, rows: number, cols: number, bits: number): Ranges {
  const mins = new Float32Array(rows);
  const maxs = new Float32Array(rows);
  backend().quantClipRanges({ rows, cols, bits, ...CLIP_SEARCH, x, rowMin: mins, rowMax: maxs });
  return { mins, maxs };
}

/** Each row's min and max of x [rows, cols]. */
export function rowMinMax(x: Float32Array, rows: number, cols: number): Ranges {
  const mins = new Float32Array(rows);
  const maxs = new Float32Array(rows);
  for (let r = 0; r < rows; r++) [mins[r], maxs[r]] = rowRange(x, r * cols, cols);
  return { mins, maxs };
}
