/**
 * Static per-channel activation quantizer: per-channel min/max over (B, H, W) calibrated on a few batches, then
 * frozen; the same range for every sample; codes clamped to the signed range.
 */
import { check, GranqError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { groupView, StaticChannelEstimator } from '../estimators.js';
import { fakeQuantGroups, fakeQuantGroupsCodes, type ActCodes, type CodesOut } from '../fake-quant.js';
import { ActQuantizer } from '../quantizer.js';

export class ChannelStaticActQuantizer extends ActQuantizer {
  readonly kind = 'channel-static' as const;
  readonly estimator = new StaticChannelEstimator();
  readonly clamp = true;

  quantize(x: Tensor): Tensor {
    const { view, r } = this.ranged(x);
    return fakeQuantGroups(x, this.bits, view, r.mins, r.maxs, this.clamp);
  }

  quantizeCodes(x: Tensor, out?: CodesOut): ActCodes {
    const { view, r } = this.ranged(x);
    return fakeQuantGroupsCodes(x, this.bits, view, r.mins, r.maxs, this.clamp, out);
  }

  private ranged(x: Tensor) {
    const r = this.estimator.ranges();
    if (r === null) throw new GranqError('channel-static activation quantizer: no range observed yet; calibrate first');
    const view = groupView(x.shape, 1);
    check(view[1] === r.mins.length, () => `channel-static activation quantizer: calibrated ${r.mins.length} channels, got ${view[1]}`);
    return { view, r };
  }
}
