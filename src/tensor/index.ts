export * from './tensor.js';
export * from './shape.js';
export * from './rng.js';
