/** The differentiable operations, one namespace: `import * as F from '../autograd/index.js'`. */
export { noGrad, inference, recycled, releasingDeadIntermediates, isGradEnabled, defineOp, OP_REGISTRY, withoutGrad, releaseGraph, traceOps, profileOps, setFiniteCheck, finiteCheckOn, firstNonFinite, type OpTracer, type OpTime, type OpAttrs, type OpName, type OpCall } from './tape.js';
export * from './ops/eltwise.js';
export * from './ops/reduce.js';
export * from './ops/shape.js';
export * from './ops/conv.js';
export * from './ops/norm.js';
export * from './ops/pool.js';
export * from './ops/loss.js';
