/**
 * Calibration of static activation ranges (layer, channel-static) for PTQ: every activation quantizer observes
 * the FP activations of the given batches (quantization off while observing, as torch.ao's PTQ observers), then
 * all ranges are frozen. Dynamic quantizers (granq, channel-loop) need none; calling this on them is harmless.
 */
import { noGrad } from '../autograd/index.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { actQuantizers } from './quantize-model.js';
import { ACT_CAPABILITIES, type ActKind } from './quantizer.js';

export function calibrate(student: Module, batches: Iterable<{ x: Tensor }>): { batches: number; images: number } {
  const qs = actQuantizers(student).map(([, q]) => q);
  const wasTraining = student.training;
  student.eval();
  let n = 0;
  let images = 0;
  try {
    for (const q of qs) {
      q.observing = true;
      q.quantizing = false;
    }
    for (const { x } of batches) {
      noGrad(() => student.forward(x));
      n++;
      images += x.shape[0]!;
    }
  } finally {
    for (const q of qs) {
      q.observing = false;
      q.quantizing = true;
    }
    student.train(wasTraining);
  }
  return { batches: n, images };
}

/** Whether the act quantizers of this policy need calibration before use. */
export const needsCalibration = (act: ActKind) => ACT_CAPABILITIES[act].needsCalibration;
