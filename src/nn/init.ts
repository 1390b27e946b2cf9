/** Parameter initialisation, seeded. Modules take an Rng; without one they draw from the global seeded generator. */
import { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import type { Shape } from '../tensor/shape.js';

let globalRng = new Rng(0);

/** Reseeds the generator used by modules created without an explicit Rng (like torch.manual_seed). */
export function manualSeed(seed: number): void {
  globalRng = new Rng(seed);
}
export function defaultRng(): Rng {
  return globalRng;
}

/** PyTorch's default for conv and linear layers: kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
export function uniformFanIn(shape: Shape, fanIn: number, rng: Rng): Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return Tensor.uniform(shape, rng, -bound, bound);
}
