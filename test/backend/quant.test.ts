/**
 * Quantizer kernels: native bit-identical to the scalar reference over case tables (odd cols, bits 2..8, clamp,
 * dead/constant/half-step/signed-zero/NaN rows, fixed ranges narrower than the data), the channel loop equal to the
 * rows kernel, 1 vs 4 threads, the PyTorch fixtures on both backends, and bad inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { nativeBackend, refBackend, type Backend } from '../../src/backend/index.js';
import { GranqError } from '../../src/errors.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { qparams } from '../../src/backend/ref/quant.js';
import { assertBitEqual } from '../kit/compare.js';
import { randomFloats } from '../kit/random.js';
import { withThreads } from '../kit/threads.js';

const COLS = [1, 7, 17, 33, 64, 1024];
const BITS = [2, 3, 4, 5, 6, 7, 8];
const FIXTURES = path.resolve('../shared/fixtures/quantizers.safetensors');

/** Random rows in [-2, 3); when there are enough rows, a few special ones the formula has edge cases for. */
function rowsInput(rows: number, cols: number, seed: number): Float32Array {
  const x = randomFloats(rows * cols, seed, -2, 3);
  const row = (r: number, fn: (j: number) => number) => {
    if (r < rows) for (let j = 0; j < cols; j++) x[r * cols + j] = fn(j);
  };
  if (rows < 8) return x;
  row(0, () => 0); // dead row: range 0 -> 1e-8
  row(1, () => 0.7); // constant row: s m is huge, z is not a float32 at most widths
  row(2, (j) => 0.5 * (j % 17) - 4); // exact half steps (the `half` fixture's values)
  row(3, (j) => -1 - (j % 5) * 0.25); // all negative
  row(4, (j) => (j % 2 ? 0 : -0) + (j % 3 === 2 ? 1.5 : 0)); // signed zeros: Math.min/max order -0 < +0
  row(5, (j) => (j === cols >> 1 ? NaN : j)); // NaN propagates through the range
  row(6, (j) => 1000 + (j % 2) * 1e-4); // tiny range far from 0
  row(7, (j) => (j % 4) * 0.5 * 7); // on a 3-bit grid exactly: s x - z lands on integers and halves
  return x;
}

function rowsFwd(b: Backend, rows: number, cols: number, bits: number, clamp: boolean, x: Float32Array) {
  const y = new Float32Array(rows * cols).fill(-123);
  const rowMin = new Float32Array(rows);
  const rowMax = new Float32Array(rows);
  const codes = new Uint8Array(rows * cols).fill(77);
  b.quantRowsFwd({ rows, cols, bits, clamp, x, y, rowMin, rowMax, codes });
  return { y, rowMin, rowMax, codes };
}

function loopFwd(b: Backend, n: number, c: number, hw: number, bits: number, x: Float32Array): Float32Array {
  const y = new Float32Array(n * c * hw).fill(-123);
  b.quantChannelLoopFwd({ n, c, hw, bits, x, y });
  return y;
}

interface Groups {
  outer: number;
  groups: number;
  inner: number;
  bits: number;
  clamp: boolean;
  mins: Float32Array;
  maxs: Float32Array;
  x: Float32Array;
}

function groupsFwd(b: Backend, g: Groups): Float32Array {
  return groupsCodes(b, g).y;
}
function groupsCodes(b: Backend, g: Groups): { y: Float32Array; codes: Uint8Array } {
  const y = new Float32Array(g.x.length).fill(-123);
  const codes = new Uint8Array(g.x.length).fill(77);
  b.quantGroupsFwd({ ...g, y, codes });
  return { y, codes };
}

/** Fixed ranges: random, narrower than the data (the clamp matters), empty, reversed, huge constant. */
function groupRanges(groups: number, seed: number): { mins: Float32Array; maxs: Float32Array } {
  const a = randomFloats(groups, seed, -1.5, 0.5);
  const w = randomFloats(groups, seed + 1, 0, 2);
  const mins = a.slice();
  const maxs = a.map((v, i) => v + w[i]!);
  const set = (g: number, m: number, M: number) => {
    if (g < groups) [mins[g], maxs[g]] = [m, M];
  };
  set(1, 0, 0);
  set(2, 0.7, 0.7);
  set(3, 1, -1);
  set(4, 1000, 1000);
  set(5, -3, 3.5);
  return { mins, maxs };
}

test('quantRowsFwd: case table, native bit-identical to ref (y, rowMin, rowMax)', () => {
  let seed = 100;
  for (const cols of COLS) {
    for (const rows of [1, 37]) {
      const x = rowsInput(rows, cols, seed++);
      for (const bits of BITS) {
        for (const clamp of [false, true]) {
          const what = `rows ${rows} cols ${cols} bits ${bits} clamp ${clamp} seed=${seed - 1}`;
          const n = rowsFwd(nativeBackend, rows, cols, bits, clamp, x);
          const r = rowsFwd(refBackend, rows, cols, bits, clamp, x);
          assertBitEqual(n.y, r.y, `y ${what}`);
          assertBitEqual(n.rowMin, r.rowMin, `rowMin ${what}`);
          assertBitEqual(n.rowMax, r.rowMax, `rowMax ${what}`);
          assert.deepEqual(n.codes, r.codes, `codes ${what}`);
        }
      }
    }
  }
});

test('quantRowsFwd: rowMin/rowMax and codes are optional', () => {
  const x = rowsInput(9, 33, 7);
  const y = new Float32Array(x.length);
  nativeBackend.quantRowsFwd({ rows: 9, cols: 33, bits: 3, clamp: false, x, y, rowMin: null, rowMax: null });
  assertBitEqual(y, rowsFwd(refBackend, 9, 33, 3, false, x).y, 'y without ranges');
});

test('quantRowsFwd, quantGroupsFwd: with codes and a null y, the same codes (native and ref), y untouched elsewhere', () => {
  for (const b of [nativeBackend, refBackend]) {
    for (const bits of BITS) {
      for (const clamp of [false, true]) {
        const x = rowsInput(9, 70, bits);
        const full = rowsFwd(b, 9, 70, bits, clamp, x);
        const codes = new Uint8Array(x.length).fill(77);
        b.quantRowsFwd({ rows: 9, cols: 70, bits, clamp, x, y: null, rowMin: null, rowMax: null, codes });
        assert.deepEqual(codes, full.codes, `rows ${b.name} bits ${bits} clamp ${clamp}`);
        const { mins, maxs } = groupRanges(3, bits);
        const g = { outer: 2, groups: 3, inner: 105, bits, clamp, mins, maxs, x: x.subarray(0, 630) };
        const gc = new Uint8Array(630).fill(77);
        b.quantGroupsFwd({ ...g, y: null, codes: gc });
        assert.deepEqual(gc, groupsCodes(b, g).codes, `groups ${b.name} bits ${bits} clamp ${clamp}`);
      }
    }
    assert.throws(() => b.quantRowsFwd({ rows: 9, cols: 70, bits: 3, clamp: false, x: rowsInput(9, 70, 1), y: null, rowMin: null, rowMax: null }), GranqError, `${b.name}: rows, neither y nor codes`);
    assert.throws(() => b.quantGroupsFwd({ outer: 1, groups: 1, inner: 4, bits: 3, clamp: true, mins: new Float32Array(1), maxs: Float32Array.of(1), x: new Float32Array(4), y: null }), GranqError, `${b.name}: groups, neither y nor codes`);
  }
});

test('quant codes: y = (code - 2^(bits-1) + z) / s, codes in 0..2^bits - 1 (clamped) or 0..2^bits (rows, saturated at 255)', () => {
  const x = rowsInput(37, 64, 8);
  for (const bits of BITS) {
    for (const clamp of [false, true]) {
      if (!clamp && bits === 8) continue; // the one case whose code 256 saturates (the integer path refuses it)
      const { y, rowMin, rowMax, codes } = rowsFwd(nativeBackend, 37, 64, bits, clamp, x);
      for (let r = 0; r < 37; r++) {
        if (!Number.isFinite(rowMin[r]!) || !Number.isFinite(rowMax[r]!)) continue;
        const { s, z } = qparams(rowMin[r]!, rowMax[r]!, bits);
        for (let j = r * 64; j < (r + 1) * 64; j++) {
          assert.ok(codes[j]! <= (clamp ? 2 ** bits - 1 : 2 ** bits), `bits ${bits} row ${r}: code ${codes[j]}`);
          assert.equal(y[j], Math.fround(Math.fround(codes[j]! - 2 ** (bits - 1) + z) / s), `bits ${bits} clamp ${clamp} row ${r} col ${j - r * 64}`);
        }
      }
    }
  }
});

const LOOP_SHAPES: [number, number, number][] = [[1, 1, 1], [2, 3, 7], [3, 5, 17], [2, 4, 33], [4, 16, 64], [1, 3, 1024], [5, 2, 1]];

test('quantChannelLoopFwd: native = ref = quantRowsFwd(rows = n c, no clamp)', () => {
  let seed = 300;
  for (const [n, c, hw] of LOOP_SHAPES) {
    const x = rowsInput(n * c, hw, seed++);
    for (const bits of BITS) {
      const what = `[${n},${c},${hw}] bits ${bits} seed=${seed - 1}`;
      const yn = loopFwd(nativeBackend, n, c, hw, bits, x);
      assertBitEqual(yn, loopFwd(refBackend, n, c, hw, bits, x), `loop native vs ref ${what}`);
      assertBitEqual(yn, rowsFwd(nativeBackend, n * c, hw, bits, false, x).y, `loop vs rows ${what}`);
    }
  }
});

const GROUP_SHAPES: [number, number, number][] = [[1, 1, 1], [1, 1, 1024], [3, 1, 17], [1, 8, 7], [4, 6, 33], [2, 7, 64], [1, 1, 50000], [3, 2, 20001]];

test('quantGroupsFwd: case table, native bit-identical to ref', () => {
  let seed = 500;
  for (const [outer, groups, inner] of GROUP_SHAPES) {
    const x = randomFloats(outer * groups * inner, seed++, -3, 4);
    if (x.length > 3) x[3] = -0;
    const { mins, maxs } = groupRanges(groups, seed++);
    for (const bits of BITS) {
      for (const clamp of [false, true]) {
        const g = { outer, groups, inner, bits, clamp, mins, maxs, x };
        const what = `[${outer},${groups},${inner}] bits ${bits} clamp ${clamp} seed=${seed - 2}`;
        const n = groupsCodes(nativeBackend, g), r = groupsCodes(refBackend, g);
        assertBitEqual(n.y, r.y, what);
        assert.deepEqual(n.codes, r.codes, `codes ${what}`);
      }
    }
  }
});

function clipRanges(b: Backend, rows: number, cols: number, bits: number, x: Float32Array, steps = 36, lowest = 0.3) {
  const rowMin = new Float32Array(rows).fill(-123);
  const rowMax = new Float32Array(rows).fill(-123);
  b.quantClipRanges({ rows, cols, bits, steps, lowest, x, rowMin, rowMax });
  return { rowMin, rowMax };
}

/** Squared error of the clamped fake quantization of x[from, from + len) with the range [m, M]. */
function clampedError(x: Float32Array, from: number, len: number, m: number, M: number, bits: number): number {
  const y = new Float32Array(len);
  refBackend.quantGroupsFwd({ outer: 1, groups: 1, inner: len, bits, clamp: true, mins: Float32Array.of(m), maxs: Float32Array.of(M), x: x.subarray(from, from + len), y });
  let e = 0;
  for (let i = 0; i < len; i++) e += (y[i]! - x[from + i]!) ** 2;
  return e;
}

test('quantClipRanges: case table (odd cols, bits 2..8, special rows, grids), native bit-identical to ref', () => {
  let seed = 700;
  for (const cols of COLS) {
    for (const rows of [1, 37]) {
      const x = rowsInput(rows, cols, seed++);
      for (const bits of BITS) {
        for (const [steps, lowest] of [[36, 0.3], [1, 0.5], [7, 0.9], [2, 1]] as const) {
          const what = `rows ${rows} cols ${cols} bits ${bits} steps ${steps} lowest ${lowest} seed=${seed - 1}`;
          const n = clipRanges(nativeBackend, rows, cols, bits, x, steps, lowest);
          const r = clipRanges(refBackend, rows, cols, bits, x, steps, lowest);
          assertBitEqual(n.rowMin, r.rowMin, `rowMin ${what}`);
          assertBitEqual(n.rowMax, r.rowMax, `rowMax ${what}`);
        }
      }
    }
  }
});

test('quantClipRanges: a candidate of the grid, inside min/max, never a larger error than min/max; steps 1 is min/max', () => {
  const [rows, cols] = [40, 27];
  const x = randomFloats(rows * cols, 811, -1, 1);
  for (let j = 0; j < cols; j++) x[5 * cols + j] = j === 3 ? 9 : 0.1 * Math.sin(j); // a far outlier: kept only if it pays
  for (const bits of [2, 3, 4, 8]) {
    const { rowMin, rowMax } = clipRanges(nativeBackend, rows, cols, bits, x);
    const one = clipRanges(nativeBackend, rows, cols, bits, x, 1, 0.3);
    let clipped = 0;
    for (let r = 0; r < rows; r++) {
      const [m, M] = minMax(x, r * cols, (r + 1) * cols);
      assert.equal(one.rowMin[r], Math.fround(m), `steps 1 row ${r}: min`);
      assert.equal(one.rowMax[r], Math.fround(M), `steps 1 row ${r}: max`);
      const j = Array.from({ length: 36 }, (_, i) => i).find((i) => {
        const a = Math.fround(1 - (i * (1 - Math.fround(0.3))) / 35);
        return rowMin[r] === Math.fround(a * m) && rowMax[r] === Math.fround(a * M);
      });
      assert.ok(j !== undefined, `row ${r} bits ${bits}: [${rowMin[r]}, ${rowMax[r]}] is a candidate a·[min, max] of the grid`);
      const a = 1 - j * 0.02;
      assert.ok(clampedError(x, r * cols, cols, rowMin[r]!, rowMax[r]!, bits) <= clampedError(x, r * cols, cols, m, M, bits) * (1 + 1e-6), `row ${r} bits ${bits}: no worse than min/max`);
      if (a < 1) clipped++;
    }
    if (bits <= 4) assert.ok(clipped > rows / 2, `bits ${bits}: most rows of uniform weights are clipped (${clipped}/${rows})`);
  }
});

test('quant kernels: bit-identical with 1 and 4 threads', () => {
  const [rows, cols] = [301, 257];
  const x = rowsInput(rows, cols, 900);
  const { mins, maxs } = groupRanges(7, 901);
  const g: Groups = { outer: 43, groups: 7, inner: 257, bits: 3, clamp: true, mins, maxs, x };
  const run = () => ({
    rows: rowsFwd(nativeBackend, rows, cols, 3, false, x),
    loop: loopFwd(nativeBackend, 43, 7, 257, 4, x),
    groups: groupsFwd(nativeBackend, g),
    tensor: groupsFwd(nativeBackend, { ...g, outer: 1, groups: 1, inner: x.length, mins: mins.subarray(0, 1), maxs: maxs.subarray(0, 1) }),
    clip: clipRanges(nativeBackend, rows, cols, 3, x),
  });
  const one = withThreads(1, run);
  const four = withThreads(4, run);
  assertBitEqual(four.rows.y, one.rows.y, 'rows y');
  assertBitEqual(four.rows.rowMin, one.rows.rowMin, 'rows rowMin');
  assertBitEqual(four.loop, one.loop, 'channel loop');
  assertBitEqual(four.groups, one.groups, 'groups');
  assertBitEqual(four.tensor, one.tensor, 'per-tensor');
  assertBitEqual(four.clip.rowMin, one.clip.rowMin, 'clip rowMin');
  assertBitEqual(four.clip.rowMax, one.clip.rowMax, 'clip rowMax');
});

function minMax(x: Float32Array, from: number, to: number): [number, number] {
  let m = Infinity;
  let M = -Infinity;
  for (let i = from; i < to; i++) [m, M] = [Math.min(m, x[i]!), Math.max(M, x[i]!)];
  return [m, M];
}

test('PyTorch fixtures: granq rows, per-tensor and per-output-channel, both backends, bit for bit', (t) => {
  if (!existsSync(FIXTURES)) {
    t.skip(`fixture file absent: ${FIXTURES}`);
    return;
  }
  const file = readSafetensors(FIXTURES);
  const f32 = (key: string): Float32Array => {
    const st = file.tensors.get(key);
    assert.ok(st && st.dtype === 'F32', `fixture ${key}: expected an F32 tensor`);
    return st.data as Float32Array;
  };
  let checked = 0;
  for (const [key, st] of file.tensors) {
    const m = /^(\w+)\.(granq|pertensor|perout)\.k(\d)$/.exec(key);
    if (!m) continue;
    const [, name, kind, k] = m as unknown as [string, string, string, string];
    const bits = Number(k);
    const x = f32(name);
    const shape = file.tensors.get(name)!.shape;
    const want = st.data as Float32Array;
    // Rows: (dim0, dim1) pairs over the rest for 4-D tensors, rows of dim 1 for 2-D ones.
    const rows = shape.length === 4 ? shape[0]! * shape[1]! : shape[0]!;
    const cols = x.length / rows;
    for (const b of [nativeBackend, refBackend]) {
      let y: Float32Array;
      if (kind === 'granq') {
        y = rowsFwd(b, rows, cols, bits, false, x).y;
      } else if (kind === 'pertensor') {
        const [lo, hi] = minMax(x, 0, x.length);
        y = groupsFwd(b, { outer: 1, groups: 1, inner: x.length, bits, clamp: true, mins: Float32Array.of(lo), maxs: Float32Array.of(hi), x });
      } else {
        const groups = shape[0]!;
        const inner = x.length / groups;
        const mins = new Float32Array(groups);
        const maxs = new Float32Array(groups);
        for (let g = 0; g < groups; g++) [mins[g], maxs[g]] = minMax(x, g * inner, (g + 1) * inner);
        y = groupsFwd(b, { outer: 1, groups, inner, bits, clamp: true, mins, maxs, x });
      }
      assertBitEqual(y, want, `${key} on ${b.name}`);
    }
    checked++;
  }
  assert.equal(checked, 85, 'every NAME.{granq,pertensor,perout}.kK fixture is checked');
});

test('quant kernels: bad inputs through nativeBackend throw GranqError', () => {
  const x = new Float32Array(12);
  const y = new Float32Array(12);
  const rows = { rows: 3, cols: 4, bits: 3, clamp: false, x, y, rowMin: null, rowMax: null };
  const bad: [string, () => void][] = [
    ['rows bits 1', () => nativeBackend.quantRowsFwd({ ...rows, bits: 1 })],
    ['rows bits 9', () => nativeBackend.quantRowsFwd({ ...rows, bits: 9 })],
    ['rows short x', () => nativeBackend.quantRowsFwd({ ...rows, x: new Float32Array(11) })],
    ['rows long y', () => nativeBackend.quantRowsFwd({ ...rows, y: new Float32Array(13) })],
    ['rows rowMin length', () => nativeBackend.quantRowsFwd({ ...rows, rowMin: new Float32Array(2) })],
    ['loop bits 1', () => nativeBackend.quantChannelLoopFwd({ n: 1, c: 3, hw: 4, bits: 1, x, y })],
    ['loop bits 9', () => nativeBackend.quantChannelLoopFwd({ n: 1, c: 3, hw: 4, bits: 9, x, y })],
    ['loop short y', () => nativeBackend.quantChannelLoopFwd({ n: 1, c: 3, hw: 4, bits: 3, x, y: new Float32Array(5) })],
    ['groups bits 9', () => nativeBackend.quantGroupsFwd({ outer: 1, groups: 3, inner: 4, bits: 9, clamp: true, mins: new Float32Array(3), maxs: new Float32Array(3), x, y })],
    ['groups mins length', () => nativeBackend.quantGroupsFwd({ outer: 1, groups: 3, inner: 4, bits: 3, clamp: true, mins: new Float32Array(2), maxs: new Float32Array(3), x, y })],
    ['groups short x', () => nativeBackend.quantGroupsFwd({ outer: 2, groups: 3, inner: 4, bits: 3, clamp: true, mins: new Float32Array(3), maxs: new Float32Array(3), x, y })],
    ['clip bits 1', () => nativeBackend.quantClipRanges({ rows: 3, cols: 4, bits: 1, steps: 4, lowest: 0.5, x, rowMin: new Float32Array(3), rowMax: new Float32Array(3) })],
    ['clip steps 0', () => nativeBackend.quantClipRanges({ rows: 3, cols: 4, bits: 3, steps: 0, lowest: 0.5, x, rowMin: new Float32Array(3), rowMax: new Float32Array(3) })],
    ['clip lowest 0', () => nativeBackend.quantClipRanges({ rows: 3, cols: 4, bits: 3, steps: 4, lowest: 0, x, rowMin: new Float32Array(3), rowMax: new Float32Array(3) })],
    ['clip lowest 1.5', () => nativeBackend.quantClipRanges({ rows: 3, cols: 4, bits: 3, steps: 4, lowest: 1.5, x, rowMin: new Float32Array(3), rowMax: new Float32Array(3) })],
    ['clip short rowMax', () => nativeBackend.quantClipRanges({ rows: 3, cols: 4, bits: 3, steps: 4, lowest: 0.5, x, rowMin: new Float32Array(3), rowMax: new Float32Array(2) })],
    ['clip short x', () => nativeBackend.quantClipRanges({ rows: 3, cols: 5, bits: 3, steps: 4, lowest: 0.5, x, rowMin: new Float32Array(3), rowMax: new Float32Array(3) })],
  ];
  for (const [what, fn] of bad) assert.throws(fn, GranqError, what);
});
