import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { GranqError } from '../../src/errors.js';
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/io/half.js';
import {
  itemsize, loadStateDictFile, parseSafetensors, readSafetensors, toTensor, writeSafetensors, type StoredTensor,
} from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { noShared, SHARED } from '../kit/shared.js';
import { leftoverTemps } from '../kit/files.js';

const MODEL = path.join(SHARED, 'models', 'resnet20_cifar10_akamaster.safetensors');
const FIRST8 = path.join(SHARED, 'fixtures', 'resnet20_cifar10_first8.safetensors');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-st-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A file from a header (object or raw JSON text) and a data buffer of `dataLen` zero bytes. */
function build(header: unknown, dataLen = 0): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + json.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

function rejects(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => parseSafetensors(bytes, 'bad.safetensors'), (e: unknown) => {
    assert.ok(e instanceof GranqError, `expected a GranqError, got ${String(e)}`);
    assert.match(e.message, /^bad\.safetensors: /);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'one-line message');
    return true;
  });
}

const f32 = (n: number) => Float32Array.from({ length: n }, (_, i) => (i - 3) * 0.5);
const SAMPLES: StoredTensor[] = [
  { dtype: 'F32', shape: [2, 3], data: f32(6) },
  { dtype: 'F64', shape: [5], data: f32(5) },
  { dtype: 'F16', shape: [3, 1], data: Float32Array.from([1, -2.5, 65504]) },
  { dtype: 'BF16', shape: [3], data: Float32Array.from([1, -0.5, 2 ** 100]) },
  { dtype: 'I64', shape: [3], data: BigInt64Array.from([-1n, 2n ** 40n, 7n]) },
  { dtype: 'U64', shape: [1], data: BigUint64Array.from([2n ** 63n]) },
  { dtype: 'I32', shape: [2, 2], data: Int32Array.from([-2147483648, 0, 1, 2147483647]) },
  { dtype: 'U32', shape: [1], data: Uint32Array.from([4294967295]) },
  { dtype: 'I16', shape: [2], data: Int16Array.from([-32768, 32767]) },
  { dtype: 'U16', shape: [1], data: Uint16Array.from([65535]) },
  { dtype: 'I8', shape: [3], data: Int8Array.from([-128, 0, 127]) },
  { dtype: 'U8', shape: [4], data: Uint8Array.from([0, 1, 254, 255]) },
  { dtype: 'BOOL', shape: [2], data: Uint8Array.from([0, 1]) },
  { dtype: 'F32', shape: [], data: Float32Array.from([42]) },
  { dtype: 'I32', shape: [0, 4], data: new Int32Array(0) },
];

describe('safetensors round trip', () => {
  for (const [i, st] of SAMPLES.entries()) {
    test(`${st.dtype} ${JSON.stringify(st.shape)}`, () => {
      const file = path.join(tmp, `rt${i}.safetensors`);
      writeSafetensors(file, { t: st });
      const back = readSafetensors(file).tensors.get('t')!;
      assert.equal(back.dtype, st.dtype);
      assert.deepEqual(back.shape, st.shape);
      assert.deepEqual(Array.from(back.data as ArrayLike<number | bigint>), Array.from(st.data as ArrayLike<number | bigint>));
      assert.deepEqual(leftoverTemps(file), [], 'no temporary file left behind');
    });
  }

  test('all dtypes in one file: metadata kept, header padded to 8, each tensor aligned, no holes', () => {
    const file = path.join(tmp, 'all.safetensors');
    const entries = new Map<string, StoredTensor | Tensor>(SAMPLES.map((s, i) => [`k${i}`, s]));
    entries.set('tensor', Tensor.from([1, 2, 3, 4], [2, 2]));
    writeSafetensors(file, entries, { format: 'pt', note: 'ünïcode' });
    const bytes = fs.readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: 'F32'; data_offsets: [number, number] }>;
    const spans = Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => v);
    spans.sort((a, b) => a.data_offsets[0] - b.data_offsets[0]);
    let at = 0;
    for (const s of spans) {
      assert.equal(s.data_offsets[0], at, 'contiguous');
      assert.equal((8 + n + at) % itemsize(s.dtype), 0, `${s.dtype} aligned`);
      at = s.data_offsets[1];
    }
    assert.equal(8 + n + at, bytes.length);
    const f = readSafetensors(file);
    assert.deepEqual(f.metadata, { format: 'pt', note: 'ünïcode' });
    assert.equal(f.tensors.size, SAMPLES.length + 1);
    assert.deepEqual(Array.from(toTensor(f.tensors.get('tensor')!).data), [1, 2, 3, 4]);
    writeSafetensors(file, { only: Tensor.from([5]) }); // overwriting an existing file
    assert.deepEqual([...readSafetensors(file).tensors.keys()], ['only']);
  });

  test('writer refuses bad entries and metadata', () => {
    const file = path.join(tmp, 'bad-write.safetensors');
    const bad: [Record<string, StoredTensor>, Record<string, string>, RegExp][] = [
      [{ a: { dtype: 'I32', shape: [2], data: Float32Array.from([1, 2]) } as unknown as StoredTensor }, {}, /expects a Int32Array/],
      [{ a: { dtype: 'F32', shape: [3], data: f32(2) } }, {}, /2 elements, shape \[3\] needs 3/],
      [{ a: { dtype: 'X9', shape: [1], data: f32(1) } as unknown as StoredTensor }, {}, /unknown dtype/],
      [{ __metadata__: { dtype: 'F32', shape: [1], data: f32(1) } }, {}, /expected a tensor name/],
      [{ a: { dtype: 'F32', shape: [1], data: f32(1) } }, { k: 3 as unknown as string }, /metadata 'k'/],
    ];
    for (const [entries, meta, re] of bad) {
      assert.throws(() => writeSafetensors(file, entries, meta), (e: unknown) => e instanceof GranqError && re.test(e.message));
    }
    assert.ok(!fs.existsSync(file));
    assert.deepEqual(leftoverTemps(file), []);
  });
});

describe('half and bfloat16', () => {
  test('F16 encode rounds to nearest even, decodes exactly', () => {
    const vals = Float32Array.from([1, -2, 0.5, 65504, 65519, 65520, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -14, 1 + 2 ** -11, NaN, Infinity, -0]);
    const bits = f32ToF16Bits(vals);
    assert.deepEqual(Array.from(bits), [0x3c00, 0xc000, 0x3800, 0x7bff, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0002, 0x0400, 0x3c00, 0x7e00, 0x7c00, 0x8000]);
    const back = f16BitsToF32(bits);
    assert.deepEqual(Array.from(back.subarray(0, 11)), [1, -2, 0.5, 65504, 65504, Infinity, 2 ** -24, 0, 2 ** -23, 2 ** -14, 1]);
    assert.ok(Number.isNaN(back[11]) && back[12] === Infinity && Object.is(back[13], -0));
  });
  test('BF16 encode rounds to nearest even', () => {
    const bits = f32ToBf16Bits(Float32Array.from([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, NaN, -Infinity]));
    assert.deepEqual(Array.from(bits), [0x3f80, 0x3f80, 0x3f82, 0x3f81, 0x7fc0, 0xff80]);
  });
});

describe('safetensors validation', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  test('a well-formed hand-built file parses, gaps allowed', () => {
    assert.equal(parseSafetensors(build(ok, 8), 'x').tensors.size, 1);
    const gap = { a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] }, b: { dtype: 'U8', shape: [1], data_offsets: [4, 5] } };
    assert.equal(parseSafetensors(build(gap, 8), 'x').tensors.size, 2);
    const empties = { a: { dtype: 'F32', shape: [0], data_offsets: [0, 0] }, b: { dtype: 'F32', shape: [0, 3], data_offsets: [0, 0] } };
    assert.equal(parseSafetensors(build(empties, 0), 'x').tensors.size, 2);
  });
  test('file shorter than 8 bytes', () => rejects(new Uint8Array(5), /at least 8 bytes, got 5/));
  test('header length beyond the file', () => {
    const b = build(ok, 8);
    new DataView(b.buffer).setBigUint64(0, 2n ** 63n, true);
    rejects(b, /header length 9223372036854775808 runs past the end/);
  });
  test('invalid JSON', () => rejects(build('{"a": ', 0), /invalid JSON/));
  test('invalid UTF-8', () => rejects(build('{"\xff":"x"}', 0).map((v, i) => (i === 10 ? 0xff : v)), /invalid JSON/));
  for (const h of ['[]', 'null', '3', '"s"']) test(`header ${h} is not an object`, () => rejects(build(h, 0), /header to be a JSON object/));
  test('entry not an object', () => rejects(build({ a: [1] }), /tensor 'a': expected \{dtype/));
  test('unknown dtype', () => rejects(build({ a: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, 1), /expected a dtype .* got "F8"/));
  for (const shape of [[-1], [1.5], '2', null, [2, '3']]) {
    test(`shape ${JSON.stringify(shape)}`, () => rejects(build({ a: { dtype: 'U8', shape, data_offsets: [0, 1] } }, 1), /shape to be an array of non-negative integers/));
  }
  for (const offs of [[0], [0, 1, 2], [0.5, 1], ['0', 1], [1, 0], [-1, 0], null]) {
    test(`data_offsets ${JSON.stringify(offs)}`, () => rejects(build({ a: { dtype: 'U8', shape: [1], data_offsets: offs } }, 2), /data_offsets \[begin, end\]/));
  }
  test('byte count does not match dtype and shape', () => {
    rejects(build({ a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 8] } }, 16), /hold 8 bytes, dtype F32 shape \[2,2\] needs 16/);
  });
  test('offsets beyond the data buffer', () => rejects(build(ok, 4), /run past the data buffer of 4 bytes/));
  test('overlapping tensors', () => {
    const h = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } };
    rejects(build(h, 12), /tensors 'a' and 'b' overlap/);
  });
  test('metadata not an object, or not strings', () => {
    rejects(build({ __metadata__: ['x'] }), /__metadata__ to be an object of strings/);
    rejects(build({ __metadata__: { n: 8 } }), /__metadata__\.n to be a string, got 8/);
  });
  test('missing file names the file', () => {
    const p = path.join(tmp, 'nope.safetensors');
    assert.throws(() => readSafetensors(p), (e: unknown) => e instanceof GranqError && e.message.startsWith(p) && /ENOENT/.test(e.message));
  });
});

describe('shared model and fixtures', { skip: noShared }, () => {
  test('resnet20 weights: 97 F32 tensors, shapes, parameter count', () => {
    const f = readSafetensors(MODEL);
    assert.equal(f.tensors.size, 97);
    assert.deepEqual(f.tensors.get('conv1.weight')!.shape, [16, 3, 3, 3]);
    assert.deepEqual(f.tensors.get('linear.weight')!.shape, [10, 64]);
    assert.deepEqual(f.tensors.get('layer3.2.conv2.weight')!.shape, [64, 64, 3, 3]);
    assert.ok([...f.tensors.values()].every((t) => t.dtype === 'F32'));
    assert.equal(f.metadata['arch'], 'resnet20-optionA');
    const sd = loadStateDictFile(MODEL);
    let params = 0;
    for (const [k, t] of sd) if (!k.includes('running_')) params += t.size;
    assert.equal(params, 269722);
  });
  test('first8 fixture: dtypes, labels as integers, logits row 0', () => {
    const f = readSafetensors(FIRST8);
    assert.deepEqual([...f.tensors.keys()].sort(), ['input', 'input_uint8', 'labels', 'logits', 'stem_out']);
    const labels = f.tensors.get('labels')!;
    assert.equal(labels.dtype, 'I64');
    assert.ok(labels.data instanceof BigInt64Array);
    assert.deepEqual(Array.from(labels.data as BigInt64Array, Number), [3, 8, 8, 0, 6, 6, 1, 6]);
    assert.deepEqual(Array.from(toTensor(labels).data), [3, 8, 8, 0, 6, 6, 1, 6]);
    assert.ok(f.tensors.get('input_uint8')!.data instanceof Uint8Array);
    const row0 = Array.from(f.tensors.get('logits')!.data.subarray(0, 10) as Float32Array, (v) => Number(v.toFixed(4)));
    assert.deepEqual(row0, [-5.3097, -0.4958, 0.8773, 23.7305, -4.105, 4.4637, -0.2343, -5.4179, -3.7118, -9.8822]);
    assert.equal(f.metadata['first_n'], '8');
  });
  test('loadStateDictFile refuses integer tensors unless told to skip them', () => {
    assert.throws(() => loadStateDictFile(FIRST8), /tensor '(labels|input_uint8)' has integer dtype/);
    const sd = loadStateDictFile(FIRST8, { integers: 'skip' });
    assert.deepEqual([...sd.keys()].sort(), ['input', 'logits', 'stem_out']);
    assert.deepEqual(sd.get('stem_out')!.shape, [8, 16, 32, 32]);
  });
  test('truncated copies of the fixture are rejected naming the file', () => {
    const whole = fs.readFileSync(FIRST8);
    const n = Number(whole.readBigUInt64LE(0));
    for (const len of [0, 7, 8, 100, 8 + n - 1, 8 + n, 8 + n + 1000, whole.length - 1]) {
      const p = path.join(tmp, `trunc${len}.safetensors`);
      fs.writeFileSync(p, whole.subarray(0, len));
      assert.throws(() => readSafetensors(p), (e: unknown) => e instanceof GranqError && e.message.startsWith(`${p}: `), `length ${len}`);
    }
  });
  test('read → write → read keeps every tensor of the fixture bit for bit', () => {
    const f = readSafetensors(FIRST8);
    const p = path.join(tmp, 'copy.safetensors');
    writeSafetensors(p, f.tensors, f.metadata);
    const g = readSafetensors(p);
    assert.deepEqual(g.metadata, f.metadata);
    for (const [k, t] of f.tensors) assert.deepEqual(g.tensors.get(k), t, k);
  });
});
