/**
 * GDFQ weight quantizer: one range per output channel (min/max of the current FP weight over in·kh·kw),
 * asymmetric, codes clamped. The rows kernel computes the ranges in the same pass (rows = output channels).
 */
import type { Tensor } from '../../tensor/tensor.js';
import { RowsEstimator } from '../estimators.js';
import { fakeQuantRows } from '../fake-quant.js';
import { WeightQuantizer } from '../quantizer.js';

export class ChannelWeightQuantizer extends WeightQuantizer {
  readonly kind = 'channel' as const;
  readonly estimator = new RowsEstimator('channel');
  readonly clamp = true;

  quantize(w: Tensor): Tensor {
    const out = w.shape[0]!;
    return fakeQuantRows(w, this.bits, [out, w.size / out], this.clamp);
  }
}
