/** Scalar reference twins of native/batchnorm.cc (stub: to be implemented). */
import type { Backend } from '../backend.js';

export const refBatchnorm: Pick<Backend, 'batchNormFwdTrain' | 'batchNormFwdEval' | 'batchNormBwdTrain' | 'batchNormBwdEval'> = {
  batchNormFwdTrain() {
    throw new Error('ref batchNormFwdTrain: not implemented yet');
  },
  batchNormFwdEval() {
    throw new Error('ref batchNormFwdEval: not implemented yet');
  },
  batchNormBwdTrain() {
    throw new Error('ref batchNormBwdTrain: not implemented yet');
  },
  batchNormBwdEval() {
    throw new Error('ref batchNormBwdEval: not implemented yet');
  },
};
