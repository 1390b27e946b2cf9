/**
 * GranQ's released activation quantizer: every (sample, channel) row gets its own min/max over H·W, recomputed at
 * every forward in training and test, asymmetric, no clamp (the range is the tensor's own). One vectorised kernel.
 */
import type { Tensor } from '../../tensor/tensor.js';
import { RowsEstimator } from '../estimators.js';
import { fakeQuantRows, fakeQuantRowsCodes, type ActCodes, type CodesOut } from '../fake-quant.js';
import { ActQuantizer } from '../quantizer.js';

export class GranqActQuantizer extends ActQuantizer {
  readonly kind = 'granq' as const;
  readonly estimator = new RowsEstimator();
  readonly clamp = false;

  quantize(x: Tensor): Tensor {
    return fakeQuantRows(x, this.bits);
  }

  quantizeCodes(x: Tensor, out?: CodesOut): ActCodes {
    return fakeQuantRowsCodes(x, this.bits, this.clamp, out);
  }
}
