/** Scalar reference twin of native/gemm.cc: c = op(a) . op(b) + beta c, row-major, accumulated in JS doubles. */
import type { Backend, Buf } from '../backend.js';

type GemmArgs = Parameters<Backend['gemm']>[0];

/** op(a)[i, p]: a is [m, k], or [k, m] when transposed. */
function at(a: Buf, transposed: boolean, rows: number, cols: number, i: number, p: number): number {
  return transposed ? a[p * rows + i]! : a[i * cols + p]!;
}

export function gemmRef(p: GemmArgs): void {
  const { m, n, k, transA, transB, beta, a, b, c } = p;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let q = 0; q < k; q++) acc += at(a, transA, m, k, i, q) * at(b, transB, k, n, q, j);
      c[i * n + j] = beta === 0 ? acc : acc + c[i * n + j]!;
    }
  }
}

export const refGemm: Pick<Backend, 'gemm'> = { gemm: gemmRef };
