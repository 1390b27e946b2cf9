#!/usr/bin/env -S node --single-threaded-gc
/** `npm run bench -- <suite> [--json]`. Suites: fp, memory, all. Human-readable lines go to stderr; --json prints one JSON line last on stdout. */
import { benchAll } from './all.js';
import { benchFp } from './fp.js';
import { benchMemory } from './memory.js';
import { backend } from '../src/backend/index.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const suite = args.find((a) => !a.startsWith('--')) ?? 'fp';
const log = (s: string) => process.stderr.write(`${s}\n`);

const suites: Record<string, () => object | Promise<object>> = {
  fp: () => benchFp(log),
  memory: () => benchMemory(log),
  all: () => benchAll(log),
};

const run = suites[suite];
if (!run) {
  log(`bench: unknown suite '${suite}'; known: ${Object.keys(suites).join(', ')}`);
  process.exit(2);
}
log(`granq bench ${suite}: backend ${backend().name}, ${backend().numThreads()} threads`);
const result = await run();
if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
