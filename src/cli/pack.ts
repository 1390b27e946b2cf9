/**
 * `granq pack RUN_DIR --out MODEL.granq`: the quantized student of a `granq quantize` run in granq's compact form
 * (quant/pack.ts: bit-packed codes, scales, integer zero points, the policy); `granq eval --model MODEL.granq` loads it.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { GranqError } from '../errors.js';
import { loadQuantizedModel, PACK_EXT, policyLabel, writePackedModel } from '../quant/index.js';

const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

export function runPack(runDir: string, o: { out: string }): void {
  if (!o.out.endsWith(PACK_EXT)) throw new GranqError(`--out: expected a file name ending in ${PACK_EXT}, got ${o.out}`);
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new GranqError(`RUN_DIR: expected a granq quantize output directory, got ${runDir}`);
  const studentPath = path.join(runDir, 'student.safetensors');
  if (!existsSync(studentPath)) throw new GranqError(`RUN_DIR: ${runDir} has no student.safetensors (a finished granq quantize run writes it)`);
  const { model, sidecar, policy } = loadQuantizedModel(studentPath);
  const { weights, bytes } = writePackedModel(o.out, model, sidecar, policy);
  let fpValues = 0;
  for (const [, t] of model.stateDict()) fpValues += t.size;
  const fpBytes = 4 * fpValues;
  const coded = weights.filter((w) => w.stored === 'codes');
  const kept = weights.filter((w) => w.stored === 'f32');
  const wider = coded.filter((w) => w.width > w.bits);
  const out = process.stdout;
  out.write(`model    ${sidecar.model} (${policyLabel(policy)}), from ${studentPath}\n`);
  out.write(`weights  ${coded.length} bit-packed${wider.length ? ` (${wider.map((w) => `${w.name} at ${w.width} bits`).join(', ')}: unclamped codes past the k-bit range)` : ''}` +
    `${kept.length ? `; ${kept.length} kept as float32 (${kept.map((w) => w.name).join(', ')}: no integer zero point)` : ''}\n`);
  out.write(`size     ${o.out}: ${bytes} bytes (${kib(bytes)}), against ${fpBytes} bytes (${kib(fpBytes)}) of float32: 1/${(fpBytes / bytes).toFixed(2)}\n`);
}
