/** Scalar reference twin of native/qgemm.cc: c[m, n] = sum_k a[m, k] * b[n, k], exact in integers. */
import type { Backend } from '../backend.js';

export const refQgemm: Pick<Backend, 'qgemmU8S8'> = {
  qgemmU8S8({ m, n, k, a, b, c }) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) s += a[i * k + t]! * b[j * k + t]!;
        c[i * n + j] = s;
      }
    }
  },
};
