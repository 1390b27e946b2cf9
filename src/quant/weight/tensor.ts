/** Per-tensor weight quantizer: one min/max over the whole current FP weight, asymmetric, codes clamped. */
import { RowsEstimator } from '../estimators.js';
import { WeightQuantizer } from '../quantizer.js';

export class TensorWeightQuantizer extends WeightQuantizer {
  readonly kind = 'tensor' as const;
  readonly estimator = new RowsEstimator('tensor');
  readonly clamp = true;

  rowsOf(shape: readonly number[]): [number, number] {
    return [1, shape.reduce((a, b) => a * b, 1)];
  }
}
