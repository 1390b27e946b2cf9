/**
 * `granq export RUN_DIR --onnx out.onnx`: the quantized student of a `granq quantize` run (RUN_DIR/student.safetensors
 * + student.json) as a standard ONNX graph, plus `out.quant.safetensors` (the weights' integer codes, scales and
 * zero points) and `out.json` (preprocessing, classes, policy) beside it.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { GranqError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { encodeModel } from '../io/onnx-proto.js';
import { writeSafetensors } from '../io/safetensors.js';
import { EXPORT_OPSET, exportOnnx, policyLabel, QDQ_OPSET, type ExportFormat } from '../quant/index.js';
import { loadQuantizedModel } from '../quant/index.js';

export interface ExportCliOptions {
  onnx: string;
  format?: ExportFormat;
}

/** The input shape [C, H, W] a sidecar declares (`input.shape`, batch dim first), else CIFAR's. */
function inputShape(raw: Record<string, unknown>): [number, number, number] {
  const shape = (raw['input'] as { shape?: unknown } | undefined)?.shape;
  if (Array.isArray(shape) && shape.length === 4 && shape.slice(1).every((d) => Number.isInteger(d) && d > 0)) {
    return shape.slice(1) as [number, number, number];
  }
  return [3, 32, 32];
}

export function runExport(runDir: string, o: ExportCliOptions): void {
  if (!o.onnx.endsWith('.onnx')) throw new GranqError(`--onnx: expected a file name ending in .onnx, got ${o.onnx}`);
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new GranqError(`RUN_DIR: expected a granq quantize output directory, got ${runDir}`);
  const studentPath = path.join(runDir, 'student.safetensors');
  if (!existsSync(studentPath)) throw new GranqError(`RUN_DIR: ${runDir} has no student.safetensors (a finished granq quantize run writes it)`);
  const { model, sidecar, policy } = loadQuantizedModel(studentPath);
  const t0 = performance.now();
  const format = o.format ?? 'fake';
  const opset = format === 'qdq' ? QDQ_OPSET : EXPORT_OPSET;
  const ex = exportOnnx(model, { input: inputShape(sidecar.raw), format, docString: `granq ${policyLabel(policy)} student of ${sidecar.model} (${format})` });
  const stem = o.onnx.slice(0, -'.onnx'.length);
  const codesPath = `${stem}.quant.safetensors`;
  const jsonPath = `${stem}.json`;
  const bytes = encodeModel(ex.model);
  writeFileAtomic(o.onnx, [bytes]);
  if (format === 'fake') {
    writeSafetensors(codesPath, ex.codes, {
      granq_weights: JSON.stringify(ex.weights),
      formula: 'w = (codes + zero_point) / scale, one scale and zero point per row of the weight viewed as [rows, cols] (the ONNX initializer of the same name holds w)',
    });
  }
  const input = { ...(sidecar.raw['input'] as Record<string, unknown> | undefined), mean: sidecar.mean, std: sidecar.std };
  writeFileAtomic(jsonPath, [Buffer.from(`${JSON.stringify({
    model: sidecar.model, num_classes: sidecar.numClasses, input, quantization: policy,
    onnx: { file: path.basename(o.onnx), format, opset, ops: ex.ops, ...(format === 'fake' ? { weight_codes: path.basename(codesPath) } : { weights: ex.qdqWeights }) },
    exported_from: path.resolve(studentPath),
  }, null, 2)}\n`)]);
  const out = process.stdout;
  out.write(`model    ${sidecar.model} (${policyLabel(policy)}), from ${studentPath}\n`);
  out.write(`onnx     ${o.onnx} (${format}): opset ${opset}, ${bytes.length} bytes, ${Object.entries(ex.ops).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
  if (format === 'fake') {
    out.write(`weights  ${ex.weights.length} fake-quantized in the graph; codes, scales, zero points in ${codesPath}\n`);
  } else {
    const by = (w: number) => ex.qdqWeights.filter((q) => q.width === w);
    const kept = by(32);
    out.write(`weights  ${ex.qdqWeights.length - kept.length} as integer initializers + DequantizeLinear (${by(4).length} INT4, ${by(8).length} INT8)` +
      `${kept.length ? `; ${kept.length} as float (${kept.map((q) => q.name).join(', ')}: no int8 zero point)` : ''}; activations as unit-scale QuantizeLinear/DequantizeLinear pairs\n`);
  }
  out.write(`sidecar  ${jsonPath}\n`);
  out.write(`time     ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
}
