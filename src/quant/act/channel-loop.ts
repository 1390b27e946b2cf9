/**
 * The "conventional channel-wise" baseline of the latency experiment: the same per-(sample, channel) dynamic ranges
 * and values as granq, but computed channel by channel (a loop over C, each step a min/max, qparams and
 * quantize/dequantize of that channel), without GranQ's vectorised pre-scaling.
 */
import type { Tensor } from '../../tensor/tensor.js';
import { RowsEstimator } from '../estimators.js';
import { fakeQuantChannelLoop, fakeQuantRowsCodes, type ActCodes, type CodesOut } from '../fake-quant.js';
import { ActQuantizer } from '../quantizer.js';

export class ChannelLoopActQuantizer extends ActQuantizer {
  readonly kind = 'channel-loop' as const;
  readonly estimator = new RowsEstimator();
  readonly clamp = false;

  quantize(x: Tensor): Tensor {
    return fakeQuantChannelLoop(x, this.bits);
  }

  /** The same values as granq's rows (the loop differs, not the numbers), so the rows kernel's codes. */
  quantizeCodes(x: Tensor, out?: CodesOut): ActCodes {
    return fakeQuantRowsCodes(x, this.bits, this.clamp, out);
  }
}
