/**
 * The FP activations that reach each activation quantizer, and relative quantization errors on them: the data of
 * `granq analyze error` (GranQ's Fig. 4) and of the report's activation maps (Fig. 1). The probe student is built
 * with `layer` quantizers switched to observe-only, so one FP forward also gives every `layer` quantizer the
 * per-tensor range of that batch (one EMA step with the correct bias correction = the batch min/max).
 */
import { noGrad } from '../autograd/index.js';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { quantizers, quantizeModel, actQuantizers } from './quantize-model.js';
import { WeightQuantizer, type ActQuantizer } from './quantizer.js';

export interface ActivationProbe {
  name: string;
  /** The FP activation tensor at this quantizer. */
  x: Tensor;
  /** A `layer` quantizer whose range was observed on exactly this batch: quantize(x) gives the per-tensor result. */
  layer: ActQuantizer;
}

/** One FP forward of `teacher` on x (never modified: the probe is a quantized copy with every quantizer off). */
export function probeActivations(teacher: Module, x: Tensor, bits: number): ActivationProbe[] {
  const { student } = quantizeModel(teacher, { wbits: bits, abits: bits, act: 'layer', weight: 'slice' }, { warn: () => {} });
  for (const [, q] of quantizers(student)) {
    q.quantizing = false;
    if (!(q instanceof WeightQuantizer)) q.observing = true;
  }
  const seen: ActivationProbe[] = [];
  for (const [name, q] of actQuantizers(student)) q.hooks.push((t) => seen.push({ name, x: t, layer: q }));
  noGrad(() => student.forward(x));
  return seen;
}

/** ||x - y||2 / ||x||2 over elements [from, to) (default: all); 0 when x is zero there. */
export function relError(x: Tensor, y: Tensor, from = 0, to = x.size): number {
  const a = x.data;
  const b = y.data;
  let num = 0;
  let den = 0;
  for (let i = from; i < to; i++) {
    const d = a[i]! - b[i]!;
    num += d * d;
    den += a[i]! * a[i]!;
  }
  return den > 0 ? Math.sqrt(num / den) : 0;
}
