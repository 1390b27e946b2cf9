/** Scalar reference twins of native/gemm.cc (stub: to be implemented). */
import type { Backend } from '../backend.js';

export const refGemm: Pick<Backend, 'gemm'> = {
  gemm() {
    throw new Error('ref gemm: not implemented yet');
  },
};
