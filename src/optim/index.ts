export * from './optimizer.js';
