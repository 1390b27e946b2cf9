/**
 * Softmax / log-softmax (forward, backward) and embedding kernels: native vs ref over a case table, stability with
 * large logits, float64 finite differences of the reference backward, embedding accumulation with repeated
 * indices, bit-identical results for 1 and 4 threads, and bad inputs (incl. out-of-range indices).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend, refBackend, type Backend, type Buf } from '../../src/backend/index.js';
import { GranqError } from '../../src/errors.js';
import { assertBitEqual, assertClose } from '../kit/compare.js';
import { randomFloats } from '../kit/random.js';
import { withThreads } from '../kit/threads.js';

const TOL = { atol: 1e-6, rtol: 1e-5 }; // float exp vs Math.exp

const SOFTMAX: [number, number][] = [[1, 1], [1, 7], [3, 17], [5, 33], [64, 10], [7, 1000]];

function runSoftmax(b: Backend, rows: number, cols: number, log: boolean, x: Float32Array, dy: Float32Array) {
  const y = new Float32Array(rows * cols);
  const dx = new Float32Array(rows * cols);
  b.softmaxFwd({ rows, cols, log, x, y });
  b.softmaxBwd({ rows, cols, log, y, dy, dx });
  return [y, dx];
}

test('softmax: case table, plain and log, native vs ref', () => {
  SOFTMAX.forEach(([rows, cols], i) => {
    for (const log of [false, true]) {
      const x = randomFloats(rows * cols, i, -40, 40); // large logits: the row max must be subtracted
      const dy = randomFloats(rows * cols, i + 50);
      const nat = runSoftmax(nativeBackend, rows, cols, log, x, dy);
      const ref = runSoftmax(refBackend, rows, cols, log, x, dy);
      nat.forEach((a, j) => assertClose(a, ref[j]!, { atol: TOL.atol, rtol: log ? 1e-5 : 1e-4 }, `${j ? 'bwd' : 'fwd'} log=${log} [${rows},${cols}] seed=${i}`));
      if (!log) for (let r = 0; r < rows; r++) assertClose([nat[0]!.subarray(r * cols, (r + 1) * cols).reduce((s, v) => s + v, 0)], [1], { atol: 1e-5 }, `row ${r} sums to 1`);
    }
  });
});

test('softmax: hand values and overflow safety', () => {
  for (const b of [nativeBackend, refBackend]) {
    const [y] = runSoftmax(b, 1, 3, false, new Float32Array([1000, 1000, 1001]), new Float32Array(3));
    assertClose(y!, [1, 1, Math.E].map((v) => v / (2 + Math.E)), { atol: 1e-6 }, `${b.name} softmax`);
    const [ly] = runSoftmax(b, 1, 2, true, new Float32Array([0, 0]), new Float32Array(2));
    assertClose(ly!, [-Math.LN2, -Math.LN2], { atol: 1e-7 }, `${b.name} log-softmax`);
  }
});

test('softmax: reference backward matches float64 finite differences', () => {
  const rows = 2;
  const cols = 5;
  const x = Float64Array.from(randomFloats(rows * cols, 3, -2, 2));
  const w = Float64Array.from(randomFloats(rows * cols, 4));
  for (const log of [false, true]) {
    const loss = (v: Float64Array) => {
      const y = new Float64Array(v.length);
      refBackend.softmaxFwd({ rows, cols, log, x: v, y });
      return y.reduce((s, t, i) => s + t * w[i]!, 0);
    };
    const y = new Float64Array(x.length);
    refBackend.softmaxFwd({ rows, cols, log, x, y });
    const dx = new Float64Array(x.length);
    refBackend.softmaxBwd({ rows, cols, log, y, dy: w, dx });
    const h = 1e-6;
    const num = x.map((_, i) => {
      const p = x.slice(); p[i]! += h;
      const m = x.slice(); m[i]! -= h;
      return (loss(p) - loss(m)) / (2 * h);
    });
    assertClose(dx, num, { atol: 1e-7, rtol: 1e-6 }, `log=${log} dx vs finite differences`);
  }
});

test('embedding: repeated indices accumulate in order; native vs ref', () => {
  for (const [n, num, dim] of [[1, 1, 1], [7, 3, 17], [33, 10, 33], [200, 50, 300]] as const) {
    const idx = Int32Array.from({ length: n }, (_, i) => (i * 7 + 3) % num);
    const weight = randomFloats(num * dim, n);
    const dy = randomFloats(n * dim, n + 1);
    const outs = [nativeBackend, refBackend].map((b) => {
      const y = new Float32Array(n * dim);
      b.embeddingFwd({ n, num, dim, idx, weight, y });
      const dw = randomFloats(num * dim, n + 2); // accumulates into what is there
      b.embeddingBwd({ n, num, dim, idx, dy, dweight: dw });
      return [y, dw];
    });
    assertBitEqual(outs[0]![0]!, outs[1]![0]!, `embedding fwd n=${n}`);
    assertBitEqual(outs[0]![1]!, outs[1]![1]!, `embedding bwd n=${n}`); // same order, same float rounding
  }
  for (const b of [nativeBackend, refBackend]) {
    const dw = new Float32Array([10, 20, 30, 40]);
    b.embeddingBwd({ n: 3, num: 2, dim: 2, idx: new Int32Array([1, 1, 0]), dy: new Float32Array([1, 2, 3, 4, 5, 6]), dweight: dw });
    assert.deepEqual([...dw], [15, 26, 34, 46], `${b.name} hand values`);
  }
});

test('loss: bit-identical for 1 and 4 threads', () => {
  const run = () => {
    const out: Float32Array[] = [];
    for (const log of [false, true]) out.push(...runSoftmax(nativeBackend, 4096, 37, log, randomFloats(4096 * 37, 1, -5, 5), randomFloats(4096 * 37, 2)));
    const idx = Int32Array.from({ length: 512 }, (_, i) => (i * 13) % 100);
    const dw = new Float32Array(100 * 700);
    nativeBackend.embeddingBwd({ n: 512, num: 100, dim: 700, idx, dy: randomFloats(512 * 700, 3), dweight: dw });
    const y = new Float32Array(512 * 700);
    nativeBackend.embeddingFwd({ n: 512, num: 100, dim: 700, idx, weight: dw, y });
    return out.concat([dw, y]);
  };
  const one = withThreads(1, run);
  const four = withThreads(4, run);
  one.forEach((a, i) => assertBitEqual(four[i]!, a, `output ${i} threads 4 vs 1`));
});

test('loss: bad inputs throw GranqError', () => {
  const w = new Float32Array(6);
  const y = new Float32Array(4);
  assert.throws(() => nativeBackend.embeddingFwd({ n: 2, num: 3, dim: 2, idx: new Int32Array([0, 3]), weight: w, y }), GranqError);
  assert.throws(() => nativeBackend.embeddingFwd({ n: 2, num: 3, dim: 2, idx: new Int32Array([-1, 0]), weight: w, y }), GranqError);
  assert.throws(() => nativeBackend.embeddingBwd({ n: 2, num: 3, dim: 2, idx: new Int32Array([0, 5]), dy: y, dweight: w }), GranqError);
  assert.throws(() => nativeBackend.embeddingFwd({ n: 2, num: 3, dim: 2, idx: new Float32Array([0, 1]) as unknown as Int32Array, weight: w, y }), GranqError);
  assert.throws(() => nativeBackend.embeddingFwd({ n: 2, num: 3, dim: 2, idx: new Int32Array([0, 1, 2]), weight: w, y }), GranqError);
  assert.throws(() => nativeBackend.softmaxFwd({ rows: 2, cols: 3, log: false, x: w, y }), GranqError);
  assert.throws(() => nativeBackend.softmaxBwd({ rows: 2, cols: 2, log: 1 as unknown as boolean, y, dy: y, dx: y }), GranqError);
  assert.throws(() => nativeBackend.softmaxBwd({ rows: 2, cols: 2, log: true, y, dy: new Float64Array(4) as Buf, dx: y }), GranqError);
  assert.throws(() => refBackend.embeddingFwd({ n: 1, num: 3, dim: 2, idx: new Int32Array([3]), weight: w, y }), RangeError);
});
