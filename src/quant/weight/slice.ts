/**
 * The released GranQ weight rule: the weight goes through the same row quantizer as activations, so a conv weight
 * [O, I, kh, kw] gets one range per (out, in) kernel slice of kh·kw values, a linear weight one per output row;
 * no clamp. A 1x1 kernel slice has one value, min = max, and passes through unchanged: effectively full precision.
 */
import { RowsEstimator } from '../estimators.js';
import { rowView } from '../fake-quant.js';
import { WeightQuantizer } from '../quantizer.js';

export class SliceWeightQuantizer extends WeightQuantizer {
  readonly kind = 'slice' as const;
  readonly estimator = new RowsEstimator('row');
  readonly clamp = false;

  rowsOf(shape: readonly number[]): [number, number] {
    return rowView(shape);
  }

  /** Whether this rule leaves a weight of this shape effectively unquantized (1-element slices). */
  static isEffectivelyFp(shape: readonly number[]): boolean {
    return shape.length === 4 && shape[2]! * shape[3]! === 1;
  }
}
