/**
 * GDFQ weight quantizer: one range per output channel (min/max of the current FP weight over in·kh·kw),
 * asymmetric, codes clamped. The rows kernel computes the ranges in the same pass (rows = output channels).
 */
import { RowsEstimator } from '../estimators.js';
import { WeightQuantizer } from '../quantizer.js';

export class ChannelWeightQuantizer extends WeightQuantizer {
  readonly kind = 'channel' as const;
  readonly estimator = new RowsEstimator('channel');
  readonly clamp = true;

  rowsOf(shape: readonly number[]): [number, number] {
    const size = shape.reduce((a, b) => a * b, 1);
    return [shape[0]!, size / shape[0]!];
  }
}
