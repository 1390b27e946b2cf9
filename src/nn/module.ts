/**
 * Module: named parameters, buffers and children, PyTorch's dotted state-dict keys, train/eval.
 * Subclasses register what they own in their constructor and implement forward().
 */
import { GranqError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { sameShape, shapeStr } from '../tensor/shape.js';

export type StateDict = Map<string, Tensor>;

export abstract class Module {
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this._params.set(name, t);
    return t;
  }
  protected buffer(name: string, t: Tensor): Tensor {
    this._buffers.set(name, t);
    return t;
  }
  protected child<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  /**
   * Replaces a child (module swapping for quantization). Children are kept in fields of the same name, so the
   * field is updated too and forward() sees the new module.
   */
  replaceChild(name: string, m: Module): void {
    if (!this._children.has(name)) throw new GranqError(`replaceChild: no child '${name}'`);
    this._children.set(name, m);
    if (Object.prototype.hasOwnProperty.call(this, name)) Reflect.set(this, name, m);
  }

  children(): [string, Module][] {
    return [...this._children];
  }
  /** Every module in the tree with its dotted path ('' for this one), parents before children. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, m] of this._children) out.push(...m.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [n, t] of m._params) out.push([path ? `${path}.${n}` : n, t]);
    }
    return out;
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [n, t] of m._buffers) out.push([path ? `${path}.${n}` : n, t]);
    }
    return out;
  }

  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Parameters and buffers by dotted key, sharing data with the module. */
  stateDict(): StateDict {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copies tensors into the module's parameters and buffers. Strict (the default) demands the exact key set;
   * any missing, unexpected or mismatched key is listed in one error.
   */
  loadStateDict(sd: StateDict, { strict = true }: { strict?: boolean } = {}): void {
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !sd.has(k));
    const unexpected = [...sd.keys()].filter((k) => !own.has(k));
    const mismatched = [...own].filter(([k, t]) => sd.has(k) && !sameShape(sd.get(k)!.shape, t.shape))
      .map(([k, t]) => `${k} (expected ${shapeStr(t.shape)}, got ${shapeStr(sd.get(k)!.shape)})`);
    const problems: string[] = [];
    if (mismatched.length) problems.push(`shape mismatch: ${mismatched.join(', ')}`);
    if (strict && missing.length) problems.push(`missing keys: ${missing.join(', ')}`);
    if (strict && unexpected.length) problems.push(`unexpected keys: ${unexpected.join(', ')}`);
    if (problems.length) throw new GranqError(`loadStateDict: ${problems.join('; ')}`);
    for (const [k, t] of own) {
      const src = sd.get(k);
      if (src) t.data.set(src.data);
    }
  }
}

/**
 * Loads flat arrays saved under `prefix + key` (a checkpoint stores every tensor as [length]) into the module,
 * strictly, giving each the shape of the module's own tensor.
 */
export function loadFlatStateDict(m: Module, flat: Map<string, Float32Array>, prefix: string): void {
  const own = m.stateDict();
  const sd: StateDict = new Map();
  for (const [k, v] of flat) {
    if (!k.startsWith(prefix)) continue;
    const key = k.slice(prefix.length);
    sd.set(key, new Tensor(v, own.get(key)?.shape ?? [v.length]));
  }
  m.loadStateDict(sd);
}
