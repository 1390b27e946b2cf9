/** The reference backend: scalar TypeScript, single-threaded, the living definition of every kernel. */
import type { Backend } from '../backend.js';
import { refGemm } from './gemm.js';
import { refConv2d } from './conv2d.js';
import { refBatchnorm } from './batchnorm.js';
import { refEltwise } from './eltwise.js';
import { refReduce } from './reduce.js';
import { refPool2d } from './pool2d.js';
import { refLoss } from './loss.js';
import { refOptim } from './optim.js';
import { refQuant } from './quant.js';
import { refQgemm } from './qgemm.js';
import { refQconv } from './qconv.js';

let threads = 1;

export const refBackend: Backend = Object.freeze({
  name: 'ref' as const,
  setThreads(n: number) {
    threads = n;
  },
  numThreads() {
    return threads;
  },
  ...refGemm,
  ...refConv2d,
  ...refBatchnorm,
  ...refEltwise,
  ...refReduce,
  ...refPool2d,
  ...refLoss,
  ...refOptim,
  ...refQuant,
  ...refQgemm,
  ...refQconv,
});
