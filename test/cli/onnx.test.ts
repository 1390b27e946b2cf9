/**
 * ONNX through the CLI: `granq eval` of the shared .onnx on the full test set, `granq quantize` of an ONNX teacher,
 * and the export round trip: W4A4 granq students of the option-A and of the default teacher -> `granq export` ->
 * onnxruntime-node, predictions on the CIFAR-10 test set against granq's own; one-line errors on bad input.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { noGrad } from '../../src/autograd/index.js';
import { batches, loadCifarSplit } from '../../src/data/cifar.js';
import { decodeModel, encodeModel, int64, tensorFromProto } from '../../src/io/onnx-proto.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadQuantizedModel } from '../../src/quant/index.js';
import { DEFAULT_TEACHER } from '../../src/models/default-teacher.js';
import { ptqRunDir } from '../kit/run-dir.js';
import { CIFAR10_DIR, noShared, SHARED_MODEL } from '../kit/shared.js';
import { granq, lastJson, assertOneLineError } from '../kit/cli.js';

const ONNX_MODEL = SHARED_MODEL.replace(/\.safetensors$/, '.onnx');
const BN_ONNX_MODEL = SHARED_MODEL.replace(/\.safetensors$/, '.bn.onnx');
const W4A4 = { wbits: 4, abits: 4, act: 'granq', weight: 'slice' } as const;


/** The spacing of float32 values at |v|. */
const ulp = (v: number) => 2 ** (Math.floor(Math.log2(Math.abs(v))) - 23);

/** Top-1 hits of granq's student and of onnxruntime on the exported graph, and how often their top-1 agree. */
async function roundTrip(runDir: string, onnxFile: string, limit?: number) {
  const { model, sidecar } = loadQuantizedModel(path.join(runDir, 'student.safetensors'));
  const session = await ort.InferenceSession.create(onnxFile);
  const data = loadCifarSplit(CIFAR10_DIR, { format: 'cifar10', split: 'test', limit });
  const argmax = (d: ArrayLike<number>, i: number, c: number) => {
    let best = 0;
    for (let j = 1; j < c; j++) if (d[i * c + j]! > d[i * c + best]!) best = j;
    return best;
  };
  const r = { images: 0, granq: 0, ort: 0, agree: 0, granqSeconds: 0, ortSeconds: 0 };
  for (const { x, y } of batches(data, { batchSize: 256, mean: sidecar.mean, std: sidecar.std })) {
    let t = performance.now();
    const ours = noGrad(() => model.forward(x)).data;
    r.granqSeconds += (performance.now() - t) / 1000;
    t = performance.now();
    const out = await session.run({ input: new ort.Tensor('float32', x.data, [...x.shape]) });
    r.ortSeconds += (performance.now() - t) / 1000;
    const theirs = out['logits']!.data as Float32Array;
    for (let i = 0; i < y.length; i++) {
      const a = argmax(ours, i, 10);
      const b = argmax(theirs, i, 10);
      r.granq += Number(a === y[i]);
      r.ort += Number(b === y[i]);
      r.agree += Number(a === b);
      r.images++;
    }
  }
  return r;
}

describe('ONNX models through the CLI', { skip: noShared }, () => {
  test('granq eval --model resnet20.onnx: top-1 0.9173 on the full test set, as the safetensors model', () => {
    const r = granq('eval', '--model', ONNX_MODEL, '--data', CIFAR10_DIR, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = lastJson(r.stdout);
    assert.equal(j.images, 10000);
    assert.equal(j.correct, 9173);
    assert.equal(j.top1, 0.9173);
  });

  // granq's W4A4 granq/slice PTQ student of each teacher: its top-1 hits on the test set (the option-A figure is the PTQ
  // table's), its convolutions (resnet20-b adds two 1x1 projection convs, whose 1-element slices have zero-width
  // ranges) and quantized weights (convs + the linear).
  const roundTrips = [
    { name: 'the option-A teacher', teacher: SHARED_MODEL, granqCorrect: 9107, convs: 19, oneByOne: 0 },
    { name: 'the default teacher (projection shortcuts)', teacher: path.resolve(DEFAULT_TEACHER), granqCorrect: 9268, convs: 21, oneByOne: 32 * 16 + 64 * 32 },
  ];
  for (const c of roundTrips) {
    test(`export round trip of ${c.name}: W4A4 granq student -> ONNX -> onnxruntime, same top-1 within 2 images on the 10,000 test images`, async () => {
      const dir = ptqRunDir(c.teacher, W4A4);
      const out = path.join(dir, 'w4a4.onnx');
      const r = granq('export', dir, '--onnx', out);
      assert.equal(r.code, 0, r.stderr);
      const m = decodeModel(fs.readFileSync(out), out);
      const ops = m.graph!.node!.map((n) => n.opType);
      assert.ok(m.graph!.node!.every((n) => !n.domain), 'standard operators only');
      assert.equal(ops.filter((o) => o === 'ReduceMin').length, 19); // one per activation quantizer
      assert.equal(ops.filter((o) => o === 'ReduceMax').length, 19);
      assert.equal(ops.filter((o) => o === 'Conv').length, c.convs);
      const res = await roundTrip(dir, out);
      process.stderr.write(`# round trip W4A4 granq/slice of ${c.name}: granq ${res.granq}, onnxruntime ${res.ort}, top-1 agree ${res.agree} of ${res.images}; ` +
        `granq ${res.granqSeconds.toFixed(1)} s, onnxruntime ${res.ortSeconds.toFixed(1)} s\n`);
      assert.equal(res.images, 10000);
      assert.equal(res.granq, c.granqCorrect);
      assert.ok(Math.abs(res.ort - res.granq) <= 2, `granq ${res.granq}, onnxruntime ${res.ort}`);

      // The sidecar's integer codes give back the graph's fake-quantized weights exactly, except in a row of zero
      // width (a 1x1 kernel slice under `slice`: s = n / 1e-8) whose zero point round(s m) + 2^(k-1) lies beyond
      // float32's integers (2^24): the kernels keep it in double there, the F32 zero_point cannot (its relative
      // rounding error, 2^-24, carries into the weight), so such a row (effectively full precision anyway) comes
      // back within 4 float32 ulps.
      const codes = readSafetensors(out.replace(/\.onnx$/, '.quant.safetensors'));
      const inits = new Map(m.graph!.initializer!.map((t) => [t.name!, t]));
      const weights = JSON.parse(codes.metadata['granq_weights']!) as { name: string; rows: number; cols: number }[];
      assert.equal(weights.length, c.convs + 1);
      let inexact = 0;
      for (const w of weights) {
        const fq = tensorFromProto(inits.get(w.name)!, w.name).data;
        const q = codes.tensors.get(`${w.name}.codes`)!.data as Int8Array;
        const s = codes.tensors.get(`${w.name}.scale`)!.data as Float32Array;
        const z = codes.tensors.get(`${w.name}.zero_point`)!.data as Float32Array;
        for (let i = 0; i < fq.length; i++) {
          const row = Math.floor(i / w.cols);
          const back = Math.fround(Math.fround(q[i]! + z[row]!) / s[row]!);
          if (Math.abs(z[row]!) < 2 ** 24) {
            assert.equal(back, fq[i], `${w.name}[${i}]`);
          } else {
            assert.equal(w.cols, 1, `${w.name}: a zero point beyond 2^24 in a row of ${w.cols}`);
            assert.ok(Math.abs(back - fq[i]!) <= 4 * ulp(fq[i]!), `${w.name}[${i}]: ${back} vs ${fq[i]}`);
            inexact++;
          }
        }
      }
      // Only 1x1 weights get there (asserted above), the larger ones of them (|w| > 2^24 / s ≈ 0.011).
      assert.ok(inexact <= c.oneByOne && (inexact > 0) === (c.oneByOne > 0), `${inexact} inexact of ${c.oneByOne} 1x1 weights`);
      assert.deepEqual(JSON.parse(fs.readFileSync(out.replace(/\.onnx$/, '.json'), 'utf8')).quantization, W4A4);
    });
  }

  // --format qdq: integer weights + DequantizeLinear, activations through unit-scale QuantizeLinear/DequantizeLinear.
  const qdqCases = [
    { policy: { wbits: 4, abits: 4, act: 'granq', weight: 'channel' } as const, int4: 22, int8: 0, float: 0 },
    { policy: { wbits: 4, abits: 4, act: 'granq', weight: 'slice' } as const, int4: null, int8: null, float: 2 },
    { policy: { wbits: 4, abits: 4, act: 'layer', weight: 'channel' } as const, int4: 22, int8: 0, float: 0 },
  ];
  for (const c of qdqCases) {
    const label = `W4A4 ${c.policy.act}/${c.policy.weight}`;
    test(`--format qdq of the default teacher's ${label} student: INT4/INT8 weights, Q/DQ ops, onnxruntime top-1 within 2 images on the 10,000 test images`, async () => {
      const dir = ptqRunDir(path.resolve(DEFAULT_TEACHER), c.policy, c.policy.act === 'layer' ? CIFAR10_DIR : undefined);
      const out = path.join(dir, 'qdq.onnx');
      const r = granq('export', dir, '--onnx', out, '--format', 'qdq');
      assert.equal(r.code, 0, r.stderr);
      const m = decodeModel(fs.readFileSync(out), out);
      assert.equal(int64(m.opsetImport![0]!.version), 21);
      const ops = m.graph!.node!.map((n) => n.opType);
      // Round is left only in the zero points (one per quantizer); the codes are rounded by QuantizeLinear.
      assert.equal(ops.filter((o) => o === 'Round').length, 19);
      assert.equal(ops.filter((o) => o === 'QuantizeLinear').length, 19, 'one per activation quantizer');
      const quantized = m.graph!.initializer!.filter((t) => t.name!.endsWith('.weight_quantized'));
      const count = (dt: number) => quantized.filter((t) => t.dataType === dt).length;
      if (c.int4 !== null) assert.equal(count(22), c.int4, 'INT4 weights');
      if (c.int8 !== null) assert.equal(count(3), c.int8, 'INT8 weights');
      assert.equal(quantized.length, 22 - c.float, 'integer weights');
      assert.equal(ops.filter((o) => o === 'DequantizeLinear').length, quantized.length + 19);
      assert.ok(!fs.existsSync(out.replace(/\.onnx$/, '.quant.safetensors')), 'no codes sidecar: the codes are in the graph');
      if (c.policy.weight === 'channel') {
        const fp = granq('export', dir, '--onnx', path.join(dir, 'fake.onnx'));
        assert.equal(fp.code, 0, fp.stderr);
        // The fake form holds float weights: the size of the FP model's graph.
        const ratio = fs.statSync(path.join(dir, 'fake.onnx')).size / fs.statSync(out).size;
        assert.ok(ratio >= 6, `qdq is 1/${ratio.toFixed(2)} of the float graph`);
      }
      const res = await roundTrip(dir, out);
      process.stderr.write(`# qdq round trip ${label}: granq ${res.granq}, onnxruntime ${res.ort}, top-1 agree ${res.agree} of ${res.images}\n`);
      assert.equal(res.images, 10000);
      assert.ok(Math.abs(res.ort - res.granq) <= 2, `granq ${res.granq}, onnxruntime ${res.ort}`);
    });
  }

  test('a student of the BN-folded .onnx exports too (constant shortcut convs, graph copied into the run)', async () => {
    const dir = ptqRunDir(ONNX_MODEL, W4A4);
    assert.ok(fs.existsSync(path.join(dir, 'student.graph.onnx')));
    const out = path.join(dir, 'folded.onnx');
    assert.equal(granq('export', dir, '--onnx', out).code, 0);
    const res = await roundTrip(dir, out, 512);
    assert.ok(Math.abs(res.ort - res.granq) <= 2 && res.agree >= 508, JSON.stringify(res));
    // The option-A shortcuts stay the graph's constant 1x1 convs (19 quantized convs + 2 constant ones).
    const m = decodeModel(fs.readFileSync(out), out);
    assert.equal(m.graph!.node!.filter((n) => n.opType === 'Conv').length, 21);
  });

  test('granq quantize accepts an ONNX teacher (.bn.onnx keeps the BatchNorm statistics the BNS loss needs)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-onnx-q-'));
    const r = granq('quantize', '--model', BN_ONNX_MODEL, '--wbits', '4', '--abits', '4', '--preset', 'tiny', '--epochs', '1', '--iters', '2',
      '--warmup', '0', '--data', CIFAR10_DIR, '--test-limit', '64', '--eval-batch', '64', '--agree-images', '16', '--out', dir, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'student.json'), 'utf8')).graph, 'student.graph.onnx');
    const ev = granq('eval', '--model', path.join(dir, 'student.safetensors'), '--data', CIFAR10_DIR, '--limit', '64', '--batch', '64', '--json');
    assert.equal(ev.code, 0, ev.stderr);
    assert.equal(lastJson(ev.stdout).top1, lastJson(r.stdout).final_top1);
    assert.equal(granq('export', dir, '--onnx', path.join(dir, 's.onnx')).code, 0);
  });

  test('one-line errors: a corrupt or unsupported ONNX file, a bad run directory, a bad --onnx name', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-onnx-err-'));
    fs.copyFileSync(SHARED_MODEL.replace(/\.safetensors$/, '.json'), path.join(dir, 'm.json'));
    fs.writeFileSync(path.join(dir, 'm.onnx'), 'this is not protobuf');
    assertOneLineError(granq('eval', '--model', path.join(dir, 'm.onnx')), 1, /^granq: .*m\.onnx: expected an ONNX model/);
    const bytes = fs.readFileSync(ONNX_MODEL);
    const m = decodeModel(bytes, 'x');
    m.graph!.node![1]!.opType = 'Softplus';
    fs.writeFileSync(path.join(dir, 'm.onnx'), encodeModel(m));
    assertOneLineError(granq('eval', '--model', path.join(dir, 'm.onnx')), 1, /^granq: .*unsupported ONNX operator 'Softplus' in node '\/Relu'/);
    assertOneLineError(granq('export', path.join(dir, 'nope'), '--onnx', 'x.onnx'), 1, /^granq: RUN_DIR: expected a granq quantize output directory/);
    assertOneLineError(granq('export', dir, '--onnx', 'x.onnx'), 1, /^granq: RUN_DIR: .* has no student\.safetensors/);
    assertOneLineError(granq('export', dir, '--onnx', 'x.bin'), 1, /^granq: --onnx: expected a file name ending in \.onnx/);
  });
});
