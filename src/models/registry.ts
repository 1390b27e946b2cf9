/** Model names (used by sidecars and the CLI) mapped to constructors. */
import { GranqError } from '../errors.js';
import type { Module } from '../nn/module.js';
import { ResNetCifarA, ResNetCifarB } from './resnet-cifar.js';

export const MODEL_REGISTRY = {
  'resnet20-a': (numClasses: number) => new ResNetCifarA(20, numClasses),
  'resnet20-b': (numClasses: number) => new ResNetCifarB(20, numClasses),
  'resnet32-a': (numClasses: number) => new ResNetCifarA(32, numClasses),
  'resnet56-a': (numClasses: number) => new ResNetCifarA(56, numClasses),
} as const;

export type ModelName = keyof typeof MODEL_REGISTRY;

export function createModel(name: string, numClasses: number): Module {
  const ctor = (MODEL_REGISTRY as Record<string, (c: number) => Module>)[name];
  if (!ctor) throw new GranqError(`model: unknown architecture '${name}'; known: ${Object.keys(MODEL_REGISTRY).join(', ')}`);
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new GranqError(`model: num_classes must be an integer >= 2, got ${numClasses}`);
  return ctor(numClasses);
}
