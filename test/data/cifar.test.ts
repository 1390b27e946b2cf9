import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  batches, batchOrder, loadCifarSplit, locateCifarSplit, normalizeImages, readCifar, type CifarData,
} from '../../src/data/cifar.js';
import { GranqError } from '../../src/errors.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { noShared, SHARED } from '../kit/shared.js';

const TEST_BIN = path.join(SHARED, 'data', 'cifar-10-batches-bin', 'test_batch.bin');
const FIRST8 = path.join(SHARED, 'fixtures', 'resnet20_cifar10_first8.safetensors');
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-cifar-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Pixel j of image i in the synthetic files: a pattern that differs per image, channel and position. */
const pixel = (i: number, j: number) => (i * 31 + j * 7 + (j >> 10) * 13) & 255;

/** Writes records: each label list entry is the header bytes of one record. */
function writeRecords(file: string, headers: number[][]): void {
  const rec = headers[0]!.length + 3072;
  const buf = Buffer.alloc(headers.length * rec);
  headers.forEach((h, i) => {
    buf.set(h, i * rec);
    for (let j = 0; j < 3072; j++) buf[i * rec + h.length + j] = pixel(i, j);
  });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, buf);
}

function checkPixels(d: CifarData, offset = 0): void {
  for (let i = 0; i < d.n; i++) {
    for (const j of [0, 1, 1023, 1024, 2048, 3071]) assert.equal(d.images[i * 3072 + j], pixel(i + offset, j), `image ${i} byte ${j}`);
  }
}

describe('CIFAR readers', () => {
  test('CIFAR-10: labels, pixels, limit', () => {
    const f = path.join(tmp, 'c10.bin');
    writeRecords(f, [[3], [8], [0], [9], [1]]);
    const d = readCifar(f, { format: 'cifar10' });
    assert.equal(d.n, 5);
    assert.deepEqual(Array.from(d.labels), [3, 8, 0, 9, 1]);
    assert.equal(d.images.length, 5 * 3072);
    checkPixels(d);
    const two = readCifar(f, { format: 'cifar10', limit: 2 });
    assert.equal(two.n, 2);
    assert.deepEqual(Array.from(two.labels), [3, 8]);
    assert.equal(readCifar(f, { format: 'cifar10', limit: 99 }).n, 5);
    assert.equal(readCifar(f, { format: 'cifar10', limit: 0 }).n, 0);
  });

  test('CIFAR-100: fine by default, coarse on request', () => {
    const f = path.join(tmp, 'c100.bin');
    writeRecords(f, [[10, 49], [10, 33], [19, 99], [0, 0]]);
    const fine = readCifar(f, { format: 'cifar100' });
    assert.deepEqual(Array.from(fine.labels), [49, 33, 99, 0]);
    checkPixels(fine);
    assert.deepEqual(Array.from(readCifar(f, { format: 'cifar100', label: 'coarse' }).labels), [10, 10, 19, 0]);
    assert.deepEqual(Array.from(readCifar(f, { format: 'cifar100', label: 'fine', limit: 1 }).labels), [49]);
  });

  test('a size that is not a multiple of the record size names file, size and record size', () => {
    const f = path.join(tmp, 'odd.bin');
    writeRecords(f, [[1], [2]]);
    // 2 CIFAR-10 records = 6,146 bytes: not a multiple of 3,074.
    assert.throws(() => readCifar(f, { format: 'cifar100' }),
      (e: unknown) => e instanceof GranqError && e.message === `${f}: size 6146 bytes is not a multiple of the cifar100 record size 3074`);
    fs.appendFileSync(f, Buffer.alloc(5));
    assert.throws(() => readCifar(f, { format: 'cifar10' }), /size 6151 bytes is not a multiple of the cifar10 record size 3073/);
  });

  test('bad labels, options and missing files are GranqErrors', () => {
    const f = path.join(tmp, 'badlabel.bin');
    writeRecords(f, [[1], [10]]);
    assert.throws(() => readCifar(f, { format: 'cifar10' }), /record 1: expected a cifar10 fine label in \[0, 10\), got 10/);
    assert.throws(() => readCifar(f, { format: 'cifar10', label: 'coarse' }), /coarse labels exist only in cifar100/);
    assert.throws(() => readCifar(f, { format: 'cifar10', limit: -1 }), /limit: expected a non-negative integer/);
    assert.throws(() => readCifar(f, { format: 'svhn' as 'cifar10' }), /format: expected cifar10 or cifar100/);
    assert.throws(() => readCifar(path.join(tmp, 'none.bin'), { format: 'cifar10' }), (e: unknown) => e instanceof GranqError && /ENOENT/.test(e.message));
  });
});

describe('CIFAR splits', () => {
  test('CIFAR-10 test in the dir itself, train from the canonical subfolder (batches that exist)', () => {
    const dir = path.join(tmp, 'd10');
    writeRecords(path.join(dir, 'test_batch.bin'), [[1]]);
    writeRecords(path.join(dir, 'cifar-10-batches-bin', 'data_batch_1.bin'), [[2], [3]]);
    writeRecords(path.join(dir, 'cifar-10-batches-bin', 'data_batch_3.bin'), [[4], [5], [6]]);
    assert.deepEqual(locateCifarSplit(dir, 'cifar10', 'test'), [path.join(dir, 'test_batch.bin')]);
    const train = locateCifarSplit(dir, 'cifar10', 'train');
    assert.deepEqual(train.map((f) => path.basename(f)), ['data_batch_1.bin', 'data_batch_3.bin']);
    const all = loadCifarSplit(dir, { format: 'cifar10', split: 'train' });
    assert.deepEqual(Array.from(all.labels), [2, 3, 4, 5, 6]);
    checkPixels({ ...all, n: 2 });
    const cut = loadCifarSplit(dir, { format: 'cifar10', split: 'train', limit: 3 });
    assert.deepEqual(Array.from(cut.labels), [2, 3, 4]);
    assert.equal(cut.images.length, 3 * 3072);
  });

  test('CIFAR-100 in cifar-100-binary/, and a clear error when nothing is there', () => {
    const dir = path.join(tmp, 'd100');
    writeRecords(path.join(dir, 'cifar-100-binary', 'test.bin'), [[10, 49]]);
    assert.deepEqual(locateCifarSplit(dir, 'cifar100', 'test'), [path.join(dir, 'cifar-100-binary', 'test.bin')]);
    assert.throws(() => locateCifarSplit(dir, 'cifar100', 'train'), (e: unknown) => e instanceof GranqError &&
      e.message.includes('no cifar100 train split found') && e.message.includes(path.join(dir, 'cifar-100-binary', 'train.bin')));
    assert.throws(() => locateCifarSplit(dir, 'cifar10', 'train'), /data_batch_\{1\.\.5\}\.bin/);
  });
});

describe('normalisation and batching', () => {
  const data: CifarData = (() => {
    const n = 10;
    const images = new Uint8Array(n * 3072);
    for (let i = 0; i < n; i++) for (let j = 0; j < 3072; j++) images[i * 3072 + j] = pixel(i, j);
    return { images, labels: Int32Array.from({ length: n }, (_, i) => (i * 3) % 10), n };
  })();

  test('normalizeImages follows (p/255 - m)/s in float32 with the channel of each plane', () => {
    const x = normalizeImages(data.images, MEAN, STD);
    assert.deepEqual(x.shape, [10, 3, 32, 32]);
    const F = Math.fround;
    for (const k of [0, 5, 1023, 1024, 2047, 2048, 3071, 9 * 3072 + 2100]) {
      const c = Math.floor((k % 3072) / 1024);
      assert.equal(x.data[k], F(F(F(data.images[k]! / 255) - F(MEAN[c]!)) / F(STD[c]!)), `element ${k}`);
    }
    const sub = normalizeImages(data.images, MEAN, STD, [7, 2]);
    assert.deepEqual(Array.from(sub.data.subarray(0, 3072)), Array.from(x.data.subarray(7 * 3072, 8 * 3072)));
    assert.throws(() => normalizeImages(data.images, MEAN, STD, [10]), /index 10 out of range \[0, 10\)/);
    assert.throws(() => normalizeImages(data.images, [0.5], STD), /expected 3 means/);
  });

  test('batches: sizes, last partial batch kept, labels and images follow indices', () => {
    const got = [...batches(data, { batchSize: 4, mean: MEAN, std: STD })];
    assert.deepEqual(got.map((b) => b.y.length), [4, 4, 2]);
    assert.deepEqual(got[2]!.x.shape, [2, 3, 32, 32]);
    assert.deepEqual(got.flatMap((b) => Array.from(b.indices)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual([...batches(data, { batchSize: 4, mean: MEAN, std: STD, limit: 5 })].map((b) => b.y.length), [4, 1]);
    assert.throws(() => batches(data, { batchSize: 0, mean: MEAN, std: STD }).next(), /batchSize: expected a positive integer/);
  });

  test('shuffle: same seed same order, a permutation, other seed other order', () => {
    const run = (seed: number) => [...batches(data, { batchSize: 3, mean: MEAN, std: STD, shuffleSeed: seed })];
    const a = run(7);
    const b = run(7);
    const order = a.flatMap((x) => Array.from(x.indices));
    assert.deepEqual(order, b.flatMap((x) => Array.from(x.indices)));
    assert.deepEqual([...order].sort((p, q) => p - q), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.notDeepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.notDeepEqual(Array.from(batchOrder(10, 8)), order);
    for (const batch of a) {
      assert.deepEqual(Array.from(batch.y), Array.from(batch.indices, (i) => data.labels[i]!));
      assert.deepEqual(batch.x.data, normalizeImages(data.images, MEAN, STD, batch.indices).data);
    }
    assert.deepEqual(Array.from(batchOrder(10, 7, 4)), order.slice(0, 4), 'limit cuts the shuffled order');
  });
});

describe('real CIFAR-10 test set and fixture parity', { skip: noShared }, () => {
  test('first labels, image 0 top-left pixel, 1,000 per class', () => {
    const d = readCifar(TEST_BIN, { format: 'cifar10' });
    assert.equal(d.n, 10000);
    assert.deepEqual(Array.from(d.labels.subarray(0, 10)), [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);
    assert.deepEqual([d.images[0], d.images[1024], d.images[2048]], [158, 112, 49]);
    const counts = new Array<number>(10).fill(0);
    for (const y of d.labels) counts[y]!++;
    assert.deepEqual(counts, new Array<number>(10).fill(1000));
    assert.deepEqual(locateCifarSplit(path.join(SHARED, 'data'), 'cifar10', 'test'), [TEST_BIN]);
  });

  test('normalisation is bit-identical to PyTorch on the fixture (0 ulp)', () => {
    const fx = readSafetensors(FIRST8);
    const u8 = fx.tensors.get('input_uint8')!.data as Uint8Array;
    const want = fx.tensors.get('input')!.data as Float32Array;
    const d = readCifar(TEST_BIN, { format: 'cifar10', limit: 8 });
    assert.deepEqual(d.images, u8, 'the fixture was made from the first 8 test images');
    const [batch] = [...batches(d, { batchSize: 8, mean: MEAN, std: STD })];
    const got = new Uint32Array(batch!.x.data.buffer, batch!.x.data.byteOffset, batch!.x.size);
    const ref = new Uint32Array(want.buffer, want.byteOffset, want.length);
    let mismatches = 0;
    for (let i = 0; i < ref.length; i++) if (got[i] !== ref[i]) mismatches++;
    assert.equal(mismatches, 0, `${mismatches} of ${ref.length} elements differ in their bits`);
  });
});
