/** Locations of the read-only shared assets (models, fixtures, data), next to the repository. */
import fs from 'node:fs';
import path from 'node:path';

export const SHARED = path.resolve('../shared');
export const SHARED_MODEL = path.join(SHARED, 'models', 'resnet20_cifar10_akamaster.safetensors');
export const FIXTURES = path.join(SHARED, 'fixtures');
export const CIFAR10_DIR = path.join(SHARED, 'data', 'cifar-10-batches-bin');
/** false when the shared folder is present; otherwise the reason to skip, spelled out. */
export const noShared: false | string = fs.existsSync(SHARED) ? false : `${SHARED} not found (tests run from the repo root, next to shared/)`;
