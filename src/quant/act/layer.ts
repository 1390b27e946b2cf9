/**
 * GDFQ / AdaDFQ activation quantizer: one per-tensor range, an EMA of batch min/max (beta 0.9) while observing,
 * frozen otherwise; codes clamped to the signed range. The released recursive bias correction is an option.
 */
import { GranqError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { EmaEstimator, type EmaOptions } from '../estimators.js';
import { fakeQuantGroups, fakeQuantGroupsCodes, type ActCodes, type CodesOut } from '../fake-quant.js';
import { ActQuantizer } from '../quantizer.js';

export class LayerActQuantizer extends ActQuantizer {
  readonly kind = 'layer' as const;
  readonly estimator: EmaEstimator;
  readonly clamp = true;

  constructor(bits: number, ema: EmaOptions = {}) {
    super(bits);
    this.estimator = new EmaEstimator(ema);
  }

  quantize(x: Tensor): Tensor {
    const r = this.range();
    return fakeQuantGroups(x, this.bits, [1, 1, x.size], r.mins, r.maxs, this.clamp);
  }

  quantizeCodes(x: Tensor, out?: CodesOut): ActCodes {
    const r = this.range();
    return fakeQuantGroupsCodes(x, this.bits, [1, 1, x.size], r.mins, r.maxs, this.clamp, out);
  }

  private range() {
    const r = this.estimator.ranges();
    if (r === null) throw new GranqError('layer activation quantizer: no range observed yet; calibrate (observe some batches) first');
    return r;
  }
}
