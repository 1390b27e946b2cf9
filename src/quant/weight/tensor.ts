/** Per-tensor weight quantizer: one min/max over the whole current FP weight, asymmetric, codes clamped. */
import type { Tensor } from '../../tensor/tensor.js';
import { RowsEstimator } from '../estimators.js';
import { fakeQuantRows } from '../fake-quant.js';
import { WeightQuantizer } from '../quantizer.js';

export class TensorWeightQuantizer extends WeightQuantizer {
  readonly kind = 'tensor' as const;
  readonly estimator = new RowsEstimator('tensor');
  readonly clamp = true;

  quantize(w: Tensor): Tensor {
    return fakeQuantRows(w, this.bits, [1, w.size], this.clamp);
  }
}
