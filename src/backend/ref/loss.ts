/** Scalar reference twins of native/loss.cc (stub: to be implemented). */
import type { Backend } from '../backend.js';

export const refLoss: Pick<Backend, 'softmaxFwd' | 'softmaxBwd' | 'embeddingFwd' | 'embeddingBwd'> = {
  softmaxFwd() {
    throw new Error('ref softmaxFwd: not implemented yet');
  },
  softmaxBwd() {
    throw new Error('ref softmaxBwd: not implemented yet');
  },
  embeddingFwd() {
    throw new Error('ref embeddingFwd: not implemented yet');
  },
  embeddingBwd() {
    throw new Error('ref embeddingBwd: not implemented yet');
  },
};
