/**
 * Model names (used by sidecars and the CLI) mapped to constructors: CIFAR ResNets of any depth 6n+2, `resnet<depth>-a`
 * (option-A shortcuts) and `resnet<depth>-b` (projection shortcuts). MODEL_NAMES lists the depths of the papers.
 */
import { GranqError } from '../errors.js';
import { registryArchitecture } from '../io/sidecar.js';
import type { Module } from '../nn/module.js';
import { ResNetCifarA, ResNetCifarB } from './resnet-cifar.js';

export const MODEL_NAMES = [20, 32, 44, 56, 110].flatMap((d) => [`resnet${d}-a`, `resnet${d}-b`]);

/** True when `name` is a registry name (`resnet<6n+2>-a|b`, not another spelling). */
export function isModelName(name: string): boolean {
  return registryArchitecture(name) === name;
}

export function createModel(name: string, numClasses: number): Module {
  if (!isModelName(name)) throw new GranqError(`model: unknown architecture '${name}'; expected resnet<6n+2>-a|b, e.g. ${MODEL_NAMES.join(', ')}`);
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new GranqError(`model: num_classes must be an integer >= 2, got ${numClasses}`);
  const depth = Number(/^resnet(\d+)/.exec(name)![1]);
  return name.endsWith('-a') ? new ResNetCifarA(depth, numClasses) : new ResNetCifarB(depth, numClasses);
}
