/** Scalar reference twins of native/reduce.cc (stub: to be implemented). */
import type { Backend } from '../backend.js';

export const refReduce: Pick<Backend, 'reduceFwd' | 'reduceMinMaxBwd'> = {
  reduceFwd() {
    throw new Error('ref reduceFwd: not implemented yet');
  },
  reduceMinMaxBwd() {
    throw new Error('ref reduceMinMaxBwd: not implemented yet');
  },
};
