/**
 * `granq train` on tiny CIFAR files the test writes: the loss falls on a learnable task, an interrupted run resumed
 * (after epoch 1, and mid-epoch) ends with the same weights bit for bit, changed settings are refused, and the
 * augmentation is reproducible and equals a direct pad-crop-flip. Also the two pieces it adds to shared code:
 * label smoothing in crossEntropy and the cosine schedule.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import * as F from '../../src/autograd/index.js';
import { cropFlip, cutMixBatch, cutoutSquare, epochPlan, lowPassBatch, mirrorRows, planBatch, shiftFlipBatch } from '../../src/data/augment.js';
import { IMAGE_BYTES } from '../../src/data/cifar.js';
import { GranqError } from '../../src/errors.js';
import { CHECKPOINT_FILE } from '../../src/io/run-dir.js';
import { loadModel } from '../../src/models/load.js';
import { cosineLr } from '../../src/optim/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../../src/train/config.js';
import { runTrain, type TrainOptions } from '../../src/train/run.js';
import { assertBitEqual } from '../kit/compare.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-train-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const quiet = { log: () => {} };

/** n records whose class is visible: class k brightens a k-dependent horizontal band of one colour channel. */
function records(n: number, seed: number): Buffer {
  const rng = new Rng(seed);
  const out = Buffer.alloc(n * 3073);
  for (let i = 0; i < n; i++) {
    const y = rng.randint(0, 10);
    const r = i * 3073;
    out[r] = y;
    for (let p = 0; p < 3072; p++) {
      const c = Math.floor(p / 1024);
      const row = Math.floor((p % 1024) / 32);
      const band = c === y % 3 && Math.floor(row / 8) === Math.floor(y / 3) % 4;
      out[r + 1 + p] = Math.min(255, rng.randint(0, 96) + (band ? 150 : 0));
    }
  }
  return out;
}

const dataDir = path.join(tmp, 'data');
fs.mkdirSync(path.join(dataDir, 'cifar-10-batches-bin'), { recursive: true });
fs.writeFileSync(path.join(dataDir, 'cifar-10-batches-bin', 'data_batch_1.bin'), records(96, 1));
fs.writeFileSync(path.join(dataDir, 'cifar-10-batches-bin', 'test_batch.bin'), records(32, 2));

const small: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, epochs: 3, batch: 32, lr: 0.05, seed: 5 };
function options(out: string, over: Partial<TrainOptions> = {}): TrainOptions {
  return { config: small, out, resume: false, data: dataDir, evalEvery: 1, evalBatch: 32, ...over };
}
const outDir = (name: string) => path.join(tmp, name);

describe('granq train (in process)', () => {
  test('loss falls; files, log and sidecar; the saved model loads and reproduces the final accuracy', async () => {
    const out = outDir('plain');
    const r = await runTrain(options(out, { config: { ...small, epochs: 4, flip: false, cropPadding: 0 } }), quiet);
    assert.equal(r.status, 'done');
    if (r.status !== 'done') return;
    const log = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(log.map((l) => [l.epoch, l.iters]), [[1, 3], [2, 3], [3, 3], [4, 3]]);
    assert.ok(log[3].loss < log[0].loss, `loss ${log.map((l) => l.loss.toFixed(3)).join(' -> ')}`);
    assert.equal(log[0].lr, 0.05);
    assert.equal(log[2].lr, cosineLr(0.05, 2, 4));
    const { model, sidecar } = loadModel(path.join(out, 'model.safetensors'));
    assert.equal(sidecar.architecture, 'resnet20-b');
    assert.deepEqual(sidecar.mean, [0.49139968, 0.48215827, 0.44653124]);
    assert.equal(sidecar.measuredTop1, undefined); // only a full 10,000-image test set gives measured_top1
    const res = JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8'));
    assert.equal(res.final_top1, log[3].test_top1);
    assert.equal(res.train.images, 96);
    const { evaluate } = await import('../../src/models/evaluate.js');
    const { batches, loadCifarSplit } = await import('../../src/data/cifar.js');
    const c = evaluate(model, batches(loadCifarSplit(dataDir, { format: 'cifar10', split: 'test' }), { batchSize: 32, mean: sidecar.mean, std: sidecar.std }));
    assert.equal(c.correct / c.images, res.final_top1);
  });

  test('interrupted after epoch 1, and mid-epoch, then resumed: the same weights and log as uninterrupted', async () => {
    const straight = outDir('straight');
    assert.equal((await runTrain(options(straight), quiet)).status, 'done');
    for (const [name, stopAfter, at] of [['cut-epoch', 3, [1, 0]], ['cut-iter', 5, [1, 2]]] as const) {
      const cut = outDir(name);
      let n = 0;
      const first = await runTrain(options(cut), { ...quiet, interrupted: () => ++n >= stopAfter });
      assert.deepEqual(first.status === 'interrupted' ? [first.epoch, first.iter] : first.status, at, name);
      assert.equal((await runTrain(options(cut, { resume: true }), quiet)).status, 'done');
      const a = loadModel(path.join(straight, 'model.safetensors')).model.stateDict();
      const b = loadModel(path.join(cut, 'model.safetensors')).model.stateDict();
      for (const [k, t] of a) assertBitEqual(b.get(k)!.data, t.data, `${name}: ${k}`);
      const strip = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => ({ ...JSON.parse(l), wall_s: 0 }));
      assert.deepEqual(strip(path.join(cut, 'log.jsonl')), strip(path.join(straight, 'log.jsonl')), name);
    }
  });

  test('a non-finite loss stops the run with an error: the epoch logged as far as it went, no model, the last checkpoint kept', async () => {
    const out = outDir('diverged');
    let msg = '';
    await assert.rejects(runTrain(options(out, { config: { ...small, lr: 1e8 } }), quiet), (e: unknown) => {
      msg = e instanceof GranqError ? e.message : String(e);
      return e instanceof GranqError;
    });
    const m = /^training diverged: loss (NaN|-?Infinity) at epoch (\d+), iteration (\d+) \(lr [0-9.e+]+\); lower --lr$/.exec(msg);
    assert.ok(m, msg);
    const [epoch, iteration] = [Number(m[2]), Number(m[3])];
    const log = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(log.map((l) => l.epoch), Array.from({ length: epoch }, (_, i) => i + 1));
    assert.equal(log[epoch - 1].iters, iteration, 'the diverged epoch logged as far as it went');
    assert.equal(fs.existsSync(path.join(out, 'model.safetensors')), false);
    assert.equal(fs.existsSync(path.join(out, CHECKPOINT_FILE)), epoch > 1, 'a checkpoint only for epochs that finished');
  });

  test('resume refuses changed settings or training data, and a fresh run refuses an existing checkpoint', async () => {
    const out = outDir('straight');
    assert.ok(fs.existsSync(path.join(out, CHECKPOINT_FILE)));
    await assert.rejects(runTrain(options(out), quiet), /already holds a checkpoint; pass --resume/);
    await assert.rejects(runTrain(options(out, { resume: true, config: { ...small, lr: 0.1 } }), quiet),
      (e: unknown) => e instanceof GranqError && /settings differ .*lr: 0\.05 -> 0\.1/.test(e.message));
    await assert.rejects(runTrain(options(out, { resume: true, config: { ...small, epochs: 5 } }), quiet), /epochs: 3 -> 5/);
    await assert.rejects(runTrain(options(out, { resume: true, trainLimit: 64 }), quiet), /training images: 96 .* -> 64/);
  });

  test('--init starts from given weights, not the seed\'s random init; resume and architecture checks', async () => {
    const src = path.join(outDir('straight'), 'model.safetensors'); // trained 3 epochs by the resume test
    const trained = loadModel(src).model;
    // A learning rate far below the weights' precision: training leaves every parameter where --init put it.
    const still: TrainConfig = { ...small, epochs: 1, lr: 1e-30, weightDecay: 0 };
    const out = outDir('init');
    const r = await runTrain(options(out, { config: still, init: src }), quiet);
    assert.equal(r.status, 'done');
    const got = loadModel(path.join(out, 'model.safetensors')).model;
    const fresh = outDir('no-init');
    assert.equal((await runTrain(options(fresh, { config: still }), quiet)).status, 'done');
    const random = loadModel(path.join(fresh, 'model.safetensors')).model;
    const want = new Map(trained.namedParameters());
    const seedInit = new Map(random.namedParameters());
    for (const [k, p] of got.namedParameters()) {
      assertBitEqual(p.data, want.get(k)!.data, k);
      assert.notDeepEqual(p.data, seedInit.get(k)!.data, `${k} equals the random init`);
    }
    const res = JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8'));
    assert.equal(res.init.file, path.resolve(src));
    assert.match(res.init.sha256, /^[0-9a-f]{64}$/);
    // Resuming with other starting weights (or none) is refused, as any changed setting.
    await assert.rejects(runTrain(options(out, { config: still, resume: true }), quiet), /settings differ .*--init: .*model\.safetensors .* -> none/);
    await assert.rejects(runTrain(options(outDir('init-a'), { config: { ...still, model: 'resnet20-a' }, init: src }), quiet),
      (e: unknown) => e instanceof GranqError && /--init: .* is a resnet20-b, not the --model resnet20-a/.test(e.message));
  });
});

describe('augmentation', () => {
  const rng = new Rng(3);
  const images = Uint8Array.from({ length: 4 * IMAGE_BYTES }, () => rng.randint(0, 256));

  /** The definition: zero-pad the image by p, take the 32x32 window at (dy, dx), mirror it left-right if flip. */
  function reference(src: number, p: number, dy: number, dx: number, flip: boolean): Uint8Array {
    const side = 32 + 2 * p;
    const padded = new Uint8Array(3 * side * side);
    for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
      padded[c * side * side + (y + p) * side + x + p] = images[src * IMAGE_BYTES + c * 1024 + y * 32 + x]!;
    }
    const out = new Uint8Array(IMAGE_BYTES);
    for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
      const crop = padded[c * side * side + (y + dy) * side + x + dx]!;
      out[c * 1024 + y * 32 + (flip ? 31 - x : x)] = crop;
    }
    return out;
  }

  test('cropFlip equals pad, crop, then mirror, for every offset and both flips', () => {
    const out = new Uint8Array(IMAGE_BYTES);
    for (const p of [0, 1, 4]) for (let dy = 0; dy <= 2 * p; dy++) for (let dx = 0; dx <= 2 * p; dx++) for (const flip of [false, true]) {
      cropFlip(images, 2, p, dy, dx, flip, out, 0);
      assert.deepEqual(out, reference(2, p, dy, dx, flip), `p ${p} dy ${dy} dx ${dx} flip ${flip}`);
    }
  });

  test('cropFlip on float images is the same map; shiftFlipBatch applies one draw per image from its Rng', () => {
    const f = Float32Array.from(images.subarray(0, 3 * IMAGE_BYTES), (v) => v + 1); // no pixel is 0, the fill is
    const out = new Float32Array(IMAGE_BYTES);
    for (const [dy, dx, flip] of [[0, 0, false], [3, 1, true], [4, 4, false]] as const) {
      cropFlip(f, 2, 2, dy, dx, flip, out, 0);
      const ref = reference(2, 2, dy, dx, flip);
      out.forEach((v, i) => assert.equal(v === 0 ? 0 : v - 1, ref[i], `dy ${dy} dx ${dx} flip ${flip} at ${i}`));
    }
    const batch = shiftFlipBatch(f, 3, 4, new Rng(5));
    const rng = new Rng(5);
    for (let i = 0; i < 3; i++) {
      const dy = rng.randint(0, 9), dx = rng.randint(0, 9), flip = rng.uniform() < 0.5;
      cropFlip(f, i, 4, dy, dx, flip, out, 0);
      assert.deepEqual(batch.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), out, `image ${i}`);
    }
    assert.throws(() => shiftFlipBatch(f, 2, 4, new Rng(5)), /expected 2 images/);
  });

  test('mirrorRows reverses every row: cropFlip without shift, mirrored, for each image of a batch', () => {
    assert.deepEqual(mirrorRows(Float32Array.of(1, 2, 3, 4, 5, 6), 3), Float32Array.of(3, 2, 1, 6, 5, 4));
    const f = Float32Array.from(images.subarray(0, 3 * IMAGE_BYTES));
    const m = mirrorRows(f, 32);
    const out = new Float32Array(IMAGE_BYTES);
    for (let i = 0; i < 3; i++) {
      cropFlip(f, i, 0, 0, 0, true, out, 0);
      assert.deepEqual(m.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), out, `image ${i}`);
    }
    assert.deepEqual(mirrorRows(m, 32), f, 'twice is the identity');
    assert.throws(() => mirrorRows(new Float32Array(10), 3), /not whole rows of 3/);
  });

  test('cutMixBatch: each mixed image is itself outside one box and one partner inside it, over every channel', () => {
    // 6 images of 3 x 5 x 7 (H != W); every value names its image, channel and pixel, so each output value says
    // where it came from.
    const [n, c, h, w] = [6, 3, 5, 7];
    const x = Float32Array.from({ length: n * c * h * w }, (_, i) => i);
    const src = (v: number) => ({ img: Math.floor(v / (c * h * w)), rest: v % (c * h * w) });
    assert.deepEqual(cutMixBatch(x, [n, c, h, w], 0, new Rng(3)), x, 'p 0 changes nothing');
    let mixedImages = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const out = cutMixBatch(x, [n, c, h, w], 1, new Rng(seed));
      assert.deepEqual(out, cutMixBatch(x, [n, c, h, w], 1, new Rng(seed)), 'the same draws give the same batch');
      for (let i = 0; i < n; i++) {
        const partners = new Set<number>();
        let ys = [h, -1], xs = [w, -1], inBox = 0;
        for (let j = 0; j < c * h * w; j++) {
          const v = out[i * c * h * w + j]!;
          const s = src(v);
          assert.equal(s.rest, j, `image ${i}: a value moved within the plane`);
          if (s.img === i) continue;
          partners.add(s.img);
          inBox++;
          const y = Math.floor((j % (h * w)) / w), t = j % w;
          ys = [Math.min(ys[0]!, y), Math.max(ys[1]!, y)];
          xs = [Math.min(xs[0]!, t), Math.max(xs[1]!, t)];
        }
        assert.ok(partners.size <= 1, `image ${i}: more than one partner`);
        if (inBox > 0) {
          mixedImages++;
          assert.equal(inBox, c * (ys[1]! - ys[0]! + 1) * (xs[1]! - xs[0]! + 1), `image ${i}: the pasted region is not a box over every channel`);
        }
      }
    }
    assert.ok(mixedImages > 20 * n / 2, `only ${mixedImages} of ${20 * n} images got a box from another image`);
    assert.throws(() => cutMixBatch(x, [n, c, h, w + 1], 1, new Rng(1)), /expected x \[N, C, H, W\]/);
  });

  test('lowPassBatch: an ideal low-pass in the 2-D DFT, any H x W, every plane apart', () => {
    // Planes of 8 x 12 (H != W): a constant, a cosine at (fu, fv) = (1, 2) (radius sqrt 5) and one at (3, 4)
    // (radius 5, above the H/2 = 4 of fu but inside the signed range), summed with different weights per plane.
    const [n, c, h, w] = [2, 3, 8, 12];
    const wave = (fu: number, fv: number, r: number, t: number) => Math.cos(2 * Math.PI * (fu * r / h + fv * t / w) + 0.3);
    const x = new Float32Array(n * c * h * w);
    const low = new Float32Array(x.length);
    for (let p = 0; p < n * c; p++) {
      for (let r = 0; r < h; r++) for (let t = 0; t < w; t++) {
        const i = p * h * w + r * w + t;
        low[i] = 0.5 + p + (p + 1) * wave(1, 2, r, t);
        x[i] = low[i]! + 2 * wave(3, 4, r, t) - wave(0, 6, r, t);
      }
    }
    const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
    // Radius 3: keeps (1, 2) and the constant, drops (3, 4) (radius 5) and (0, 6) (the Nyquist column, radius 6).
    assert.ok(maxDiff(lowPassBatch(x, [n, c, h, w], 3), low) < 1e-5, `radius 3: ${maxDiff(lowPassBatch(x, [n, c, h, w], 3), low)}`);
    // Radius 5 keeps (3, 4) too; only the (0, 6) wave goes.
    const mid = Float32Array.from(x, (v, i) => v + Math.cos(2 * Math.PI * 6 * ((i % (h * w)) % w) / w + 0.3));
    assert.ok(maxDiff(lowPassBatch(x, [n, c, h, w], 5), mid) < 1e-5, 'radius 5');
    // A radius beyond every frequency keeps the planes as they are; a tiny one keeps each plane's mean only.
    assert.ok(maxDiff(lowPassBatch(x, [n, c, h, w], 100), x) < 1e-5, 'radius 100 = identity');
    const dc = lowPassBatch(x, [n, c, h, w], 0.5);
    for (let p = 0; p < n * c; p++) for (let i = 0; i < h * w; i++) assert.ok(Math.abs(dc[p * h * w + i]! - (0.5 + p)) < 1e-5, `plane ${p} mean`);
    assert.throws(() => lowPassBatch(x, [n, c, h, w + 1], 3), /expected \[N,C,H,W\] data/);
    assert.throws(() => lowPassBatch(x, [n, c, h, w], 0), /radius must be a positive number/);
  });

  test('an epoch plan depends on (seed, epoch) only; offsets and flips cover their ranges', () => {
    const aug = { padding: 4, flip: true, cutout: 0 };
    const a = epochPlan(1000, 7, 3, aug);
    assert.deepEqual(epochPlan(1000, 7, 3, aug), a);
    assert.notDeepEqual(epochPlan(1000, 7, 4, aug).order, a.order);
    assert.notDeepEqual(epochPlan(1000, 8, 3, aug).order, a.order);
    assert.deepEqual([...a.order].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
    assert.deepEqual([Math.min(...a.dy), Math.max(...a.dy), Math.min(...a.dx), Math.max(...a.dx)], [0, 8, 0, 8]);
    const flips = a.flip.reduce((s, f) => s + f, 0);
    assert.ok(flips > 400 && flips < 600, `flips ${flips}`);
    const none = epochPlan(1000, 7, 3, { padding: 0, flip: false, cutout: 0 });
    assert.ok(none.dy.every((v) => v === 0) && none.flip.every((v) => v === 0));
  });

  test('planBatch: batch b is the same whenever it is built, and is the plan applied to the data', () => {
    const data = { images, labels: Int32Array.from([3, 1, 4, 1]), n: 4 };
    const aug = { padding: 4, flip: true, cutout: 0 };
    const plan = epochPlan(4, 1, 0, aug);
    const b1 = planBatch(data, plan, 1, 3, aug, [0, 0, 0], [1, 1, 1]);
    assert.deepEqual(planBatch(data, epochPlan(4, 1, 0, aug), 1, 3, aug, [0, 0, 0], [1, 1, 1]), b1);
    assert.equal(b1.y.length, 1); // the short last batch
    const i = plan.order[3]!;
    assert.deepEqual(b1.y, Int32Array.from([data.labels[i]!]));
    const ref = reference(i, 4, plan.dy[3]!, plan.dx[3]!, plan.flip[3] === 1);
    assertBitEqual(b1.x.data, Float32Array.from(ref, (v) => Math.fround(v / 255)), 'pixels');
  });

  test('cutoutSquare zeroes rows and columns [c - side/2, c + side/2) clipped to the image, in every channel, only there', () => {
    for (const [side, cy, cx] of [[16, 10, 20], [16, 0, 31], [8, 31, 0], [5, 3, 4], [32, 16, 16]] as const) {
      const x = Float32Array.from({ length: 2 * IMAGE_BYTES }, (_, k) => 1 + (k % 7));
      cutoutSquare(x, 1, side, cy, cx);
      for (let k = 0; k < x.length; k++) {
        const i = Math.floor(k / IMAGE_BYTES), y = Math.floor(k / 32) % 32, xx = k % 32;
        const inside = i === 1 && y >= cy - (side >> 1) && y < cy - (side >> 1) + side && xx >= cx - (side >> 1) && xx < cx - (side >> 1) + side;
        assert.equal(x[k], inside ? 0 : 1 + (k % 7), `side ${side} centre (${cy}, ${cx}) at image ${i} (${y}, ${xx})`);
      }
    }
  });

  test('Cutout: the plan without it is unchanged, with it the centres cover the image and planBatch applies them', () => {
    const plain = epochPlan(500, 7, 3, { padding: 4, flip: true, cutout: 0 });
    const cut = epochPlan(500, 7, 3, { padding: 4, flip: true, cutout: 16 });
    assert.deepEqual([cut.order, cut.dy, cut.dx, cut.flip], [plain.order, plain.dy, plain.dx, plain.flip]);
    assert.equal(plain.cy.length, 0);
    assert.deepEqual([Math.min(...cut.cy), Math.max(...cut.cy), Math.min(...cut.cx), Math.max(...cut.cx)], [0, 31, 0, 31]);
    assert.throws(() => epochPlan(10, 1, 0, { padding: 4, flip: true, cutout: 33 }), /cutout: expected an integer in \[0, 32\]/);
    const data = { images, labels: Int32Array.from([3, 1, 4, 1]), n: 4 };
    const aug = { padding: 4, flip: true, cutout: 12 };
    const plan = epochPlan(4, 2, 0, aug);
    const got = planBatch(data, plan, 0, 4, aug, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]).x.data;
    const want = planBatch(data, plan, 0, 4, { ...aug, cutout: 0 }, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]).x.data.slice();
    for (let i = 0; i < 4; i++) cutoutSquare(want, i, 12, plan.cy[i]!, plan.cx[i]!);
    assertBitEqual(got, want, 'cutout batch');
  });
});

describe('pieces added to shared code', () => {
  test('crossEntropy with label smoothing e = (1 - e) CE + e * mean over classes of -log p; e = 0 is plain CE', () => {
    const logits = new Tensor(Float32Array.from([2, -1, 0.5, 0, 1, 3]), [2, 3]);
    const y = Int32Array.from([0, 2]);
    const logp = F.logSoftmax(logits).data;
    const ce = -(logp[0]! + logp[5]!) / 2;
    const uniform = -(logp[0]! + logp[1]! + logp[2]! + logp[3]! + logp[4]! + logp[5]!) / 6;
    assert.ok(Math.abs(F.crossEntropy(logits, y, 0.1).item() - (0.9 * ce + 0.1 * uniform)) < 1e-6);
    assert.equal(F.crossEntropy(logits, y, 0).item(), F.crossEntropy(logits, y).item());
    assert.throws(() => F.crossEntropy(logits, y, 1.5), /labelSmoothing must be in \[0, 1\]/);
  });

  test('cosineLr: base at epoch 0, half at the middle, 0 at the end (PyTorch CosineAnnealingLR, eta_min 0)', () => {
    assert.equal(cosineLr(0.1, 0, 200), 0.1);
    assert.ok(Math.abs(cosineLr(0.1, 100, 200) - 0.05) < 1e-15);
    assert.ok(cosineLr(0.1, 200, 200) < 1e-15);
  });
});
