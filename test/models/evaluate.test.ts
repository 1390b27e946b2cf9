/**
 * Inference in chunks (models/evaluate.ts forwardChunked, what `granq eval` and every test-set evaluation run): a
 * forward at batch 7, 64 and 1,000 gives the same logits per image, bit for bit, chunked or not, for the FP teacher
 * and a granq W4A4 student (whose activation ranges are per sample), also from buffers recycled by F.recycled(); and
 * for an imported ONNX graph (a MobileNetV2 block stack), whose forward under F.inference() hands each dead
 * intermediate's buffer back to the pool. A model
 * with wide activations (the full CIFAR MobileNetV2) runs in smaller chunks, with the same logits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inference, noGrad, recycled } from '../../src/autograd/index.js';
import { decodeModel } from '../../src/io/onnx-proto.js';
import { graphFromProto } from '../../src/models/onnx-import.js';
import { poolStats } from '../../src/tensor/tensor.js';
import { MOBILENET_INPUT, MOBILENET_V2_CIFAR, mobileNetV2Onnx } from '../kit/mobilenet-onnx.js';
import { DEFAULT_TEACHER } from '../../src/models/default-teacher.js';
import { argmaxRows, CHUNK_FLOATS, chunkFor, countHits, evaluate, FORWARD_CHUNK, forwardChunked, mcnemarP, pairedCounts } from '../../src/models/evaluate.js';
import { loadModel } from '../../src/models/load.js';
import { quantizeModel } from '../../src/quant/index.js';
import { Rng } from '../../src/tensor/rng.js';
import { Tensor } from '../../src/tensor/tensor.js';

const { model: teacher } = loadModel(DEFAULT_TEACHER);
teacher.eval();
const { student } = quantizeModel(teacher, { wbits: 4, abits: 4, act: 'granq', weight: 'channel' }, { warn: () => {} });
student.eval();
const x = Tensor.randn([1000, 3, 32, 32], new Rng(4));
const first = (n: number) => new Tensor(x.data.subarray(0, n * 3072), [n, 3, 32, 32]);

for (const [name, model] of [['FP teacher', teacher], ['W4A4 granq/channel student', student]] as const) {
  test(`${name}: logits per image the same at batch 7, 64 and 1,000, in chunks of ${FORWARD_CHUNK} or in one forward`, () => {
    const all = forwardChunked(model, x);
    assert.deepEqual(all.shape, [1000, 10]);
    const whole = noGrad(() => model.forward(x));
    assert.deepEqual(all.data, whole.data, 'chunked = one forward of 1,000');
    for (const n of [7, 64]) assert.deepEqual(forwardChunked(model, first(n)).data, all.data.subarray(0, n * 10), `batch ${n}`);
    assert.deepEqual(forwardChunked(model, x, 7).data, all.data, 'chunks of 7');
    // Under recycled() (a teacher's forward at every training step) every intermediate goes back to the pool at the
    // end: a second forward of the same size allocates nothing, and gives the same logits.
    const x64 = first(64);
    recycled(() => model.forward(x64));
    const misses = poolStats().misses;
    const again = recycled(() => model.forward(x64));
    assert.equal(poolStats().misses, misses, 'no fresh buffer in the second recycled forward');
    assert.deepEqual(again.data, all.data.subarray(0, 640), 'the same logits from recycled buffers');
  });
}

test('ONNX graph (MobileNetV2 blocks, FP and W4A4 granq): inference() reuses dead intermediates, logits unchanged', () => {
  const graph = graphFromProto(decodeModel(mobileNetV2Onnx(), 'mbv2.onnx'), 'mbv2.onnx').eval();
  const { student: q } = quantizeModel(graph, { wbits: 4, abits: 4, act: 'granq', weight: 'channel' }, { warn: () => {} });
  q.eval();
  const xs = Tensor.randn([300, ...MOBILENET_INPUT], new Rng(5));
  const per = xs.size / 300;
  const firstOf = (n: number) => new Tensor(xs.data.subarray(0, n * per), [n, ...MOBILENET_INPUT]);
  for (const model of [graph, q]) {
    // Kept: plain noGrad releases nothing.
    const kept = noGrad(() => model.forward(xs));
    const hits = poolStats().hits;
    const reused = inference(() => model.forward(xs));
    assert.ok(poolStats().hits > hits, 'inference() took buffers back from the pool');
    assert.deepEqual(reused.data, kept.data, 'the same logits with dead intermediates released');
    // A second pass through the reused buffers (graph constants must not have been handed out).
    assert.deepEqual(inference(() => model.forward(xs)).data, kept.data, 'second inference forward');
    assert.deepEqual(forwardChunked(model, xs, 64).data, kept.data, 'chunks of 64');
    for (const n of [7, 64]) assert.deepEqual(forwardChunked(model, firstOf(n)).data, kept.data.subarray(0, n * 5), `batch ${n}`);
  }
});

test('chunkFor: ResNet-20 keeps FORWARD_CHUNK; the CIFAR MobileNetV2 (widest: 144 x 32 x 32 per image) runs in 28s, same logits', () => {
  assert.equal(chunkFor(teacher, x), FORWARD_CHUNK, 'ResNet-20: 16 x 32 x 32 floats per image, exactly CHUNK_FLOATS / 256');
  const graph = graphFromProto(decodeModel(mobileNetV2Onnx(1, MOBILENET_V2_CIFAR), 'mnv2.onnx'), 'mnv2.onnx').eval();
  const xs = Tensor.randn([40, 3, 32, 32], new Rng(6));
  // The widest intermediate, by hand: stage 2 expands 24 channels x6 at 32 x 32.
  assert.equal(chunkFor(graph, xs), Math.floor(CHUNK_FLOATS / (144 * 32 * 32)));
  assert.equal(chunkFor(graph, xs), 28);
  const whole = noGrad(() => graph.forward(xs));
  assert.deepEqual(forwardChunked(graph, xs).data, whole.data, 'chunks of 28 and 12 = one forward of 40');
});

test('pairedCounts: per-image hits of two models as their argmaxes give them; mcnemarP: exact binomial values', () => {
  // Labels: the teacher's class on even images, the student's on odd ones (plus a few of neither).
  const n = 200;
  const xs = first(n);
  const pt = argmaxRows(forwardChunked(teacher, xs));
  const ps = argmaxRows(forwardChunked(student, xs));
  const y = Int32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? (pt[i]! + 1) % 10 : i % 2 ? ps[i]! : pt[i]!));
  const batchesOf = (size: number) => Array.from({ length: Math.ceil(n / size) }, (_, b) => ({
    x: new Tensor(xs.data.subarray(b * size * 3072, Math.min(n, (b + 1) * size) * 3072), [Math.min(size, n - b * size), 3, 32, 32]),
    y: y.subarray(b * size, Math.min(n, (b + 1) * size)),
  }));
  const want = { images: n, aCorrect: 0, bCorrect: 0, aOnly: 0, bOnly: 0 };
  for (let i = 0; i < n; i++) {
    const a = ps[i] === y[i], b = pt[i] === y[i];
    want.aCorrect += +a;
    want.bCorrect += +b;
    want.aOnly += +(a && !b);
    want.bOnly += +(b && !a);
  }
  assert.ok(want.aOnly > 0 && want.bOnly > 0, `a test that separates: ${JSON.stringify(want)}`);
  const got = pairedCounts(student, teacher, batchesOf(64));
  assert.deepEqual([got.a.images, got.a.correct, got.b.correct, got.aOnly, got.bOnly], [n, want.aCorrect, want.bCorrect, want.aOnly, want.bOnly]);
  // Each model's counts are evaluate's (top-5 included), from one forward per model and batch.
  assert.deepEqual(got.a, evaluate(student, batchesOf(64)));
  assert.deepEqual(got.b, evaluate(teacher, batchesOf(64)));
  const self = pairedCounts(teacher, teacher, batchesOf(64));
  assert.deepEqual(self, { a: got.b, b: got.b, aOnly: 0, bOnly: 0 });
  // P(X <= k) for X ~ Binomial(n, 1/2), doubled: (5, 9): 2 * (1 + 14 + 91 + 364 + 1001 + 2002) / 2^14.
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12 * Math.max(1, b), `${a} vs ${b}`);
  close(mcnemarP(5, 9), 3473 / 8192);
  close(mcnemarP(9, 5), 3473 / 8192);
  close(mcnemarP(0, 6), 1 / 32);
  assert.equal(mcnemarP(3, 3), 1);
  assert.equal(mcnemarP(0, 0), 1);
  assert.equal(mcnemarP(4, 5), 1); // 2 * P(X <= 4 | n = 9) = 1 exactly
  // Large n: close to the normal approximation with continuity correction (z = 59 / sqrt(1060), p ~ 0.070).
  const p = mcnemarP(500, 560);
  assert.ok(p > 0.06 && p < 0.08, `${p}`);
});

test('the hit rule by hand: argmax\'s first index on ties, top-5 by rank, and a row with a NaN logit predicts nothing', () => {
  const rows = [
    [0, 5, 1, 5, 2, 0, 0, 0, 0, 0],  // ties for the maximum at 1 and 3: argmax 1
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],  // label 4 ranks fifth: a top-5 hit, not a top-1 hit
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],  // label 5 ranks sixth: neither
    [NaN, NaN, NaN, NaN, NaN, NaN, NaN, NaN, NaN, NaN],  // a diverged model's logits
    [1, 2, 3, NaN, 0, 0, 0, 0, 0, 0],  // one NaN: still no prediction
    [1, 2, 3, NaN, 0, 0, 0, 0, 0, 0],
  ];
  const logits = new Tensor(Float32Array.from(rows.flat()), [rows.length, 10]);
  assert.deepEqual([...argmaxRows(logits)], [1, 0, 0, -1, -1, -1]);
  const hits = (labels: number[]) => {
    const c = { images: 0, correct: 0, correct5: 0 };
    countHits(logits, Int32Array.from(labels), c);
    return c;
  };
  assert.deepEqual(hits([1, 4, 5, 0, 2, 3]), { images: 6, correct: 1, correct5: 2 });
  assert.deepEqual(hits([3, 0, 0, 7, 2, 3]), { images: 6, correct: 2, correct5: 3 });  // 3 ties 1 but comes after it
});
