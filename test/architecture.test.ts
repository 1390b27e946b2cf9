/**
 * Layers import only downward (native -> backend -> tensor/autograd -> nn/optim/run -> models -> quant -> zsq/train -> cli);
 * data and io depend only on tensor. This test scans every import in src/ and fails on an upward edge or a cycle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve('src');
// Lower rank = lower layer. A file may import files of its own layer or of a lower rank.
const RANK: Record<string, number> = {
  'errors.ts': 0,
  backend: 1,
  tensor: 2,
  autograd: 3,
  io: 3,
  data: 3,
  nn: 4,
  optim: 4,
  models: 5,
  quant: 6,
  zsq: 7,
  train: 7,
  run: 4,
  report: 8,
  sweep: 8,
  cli: 9,
  'index.ts': 10,
};
// io and data may use only tensor (and errors), never autograd or above, whatever their rank.
const ONLY: Record<string, string[]> = { run: ['errors.ts', 'io', 'run'], sweep: ['errors.ts', 'io', 'sweep'], io: ['errors.ts', 'tensor', 'io'], data: ['errors.ts', 'tensor', 'data', 'io'] };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}
const layerOf = (file: string) => relative(SRC, file).split('/')[0]!;

test('src imports only downward and has no cycles', () => {
  const graph = new Map<string, string[]>();
  const violations: string[] = [];
  for (const file of files(SRC)) {
    const text = readFileSync(file, 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(/^(?:import|export)[^'"]*from\s+'(\.[^']+)'/gm)) {
      const target = resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'));
      deps.push(target);
      const from = layerOf(file);
      const to = layerOf(target);
      assert.ok(from in RANK && to in RANK, `unknown layer for ${relative(SRC, file)} -> ${relative(SRC, target)}`);
      if (RANK[to]! > RANK[from]!) violations.push(`${relative(SRC, file)} -> ${relative(SRC, target)} (upward)`);
      if (ONLY[from] && !ONLY[from]!.includes(to)) violations.push(`${relative(SRC, file)} -> ${relative(SRC, target)} (${from} may use only ${ONLY[from]!.join(', ')})`);
    }
    graph.set(file, deps);
  }
  assert.deepEqual(violations, [], violations.join('\n'));
  // Cycle detection over files.
  const state = new Map<string, 1 | 2>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 2) return;
    if (state.get(f) === 1) {
      cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(SRC, p)).join(' -> '));
      return;
    }
    state.set(f, 1);
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, 2);
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.join('\n')}`);
});

/**
 * The op table: every op registered at run time (OP_REGISTRY, filled by defineOp) is declared in an `interface OpAttrs`
 * block of the op table (the compile-time list that types defineOp, the tracer and the ONNX emitters), and every
 * declared op is registered. An op registered without a table entry (an untyped registration) fails here.
 */
test('op table: OP_REGISTRY equals the ops declared in OpAttrs blocks; defineOp calls name their op type', async () => {
  const declared = new Set<string>();
  const untyped: string[] = [];
  for (const file of files(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/interface OpAttrs \{((?:[^{}]|\{[^{}]*\})*)\}/g)) {
      for (const k of m[1]!.matchAll(/^\s*([a-z0-9_]+)\s*:/gm)) declared.add(k[1]!);
    }
    // defineOp's first type argument is the op name (or names); a call without type arguments is flagged.
    if (relative(SRC, file) === 'autograd/tape.ts') continue; // where defineOp is defined (and documented)
    for (const m of text.matchAll(/defineOp(<[^(]*>)?\(/g)) if (!m[1]) untyped.push(relative(SRC, file));
  }
  await import('../src/index.js');
  await import('../src/quant/index.js');
  const { OP_REGISTRY } = await import('../src/autograd/index.js');
  const registered = new Set<string>(OP_REGISTRY.keys());
  assert.deepEqual(untyped, [], `defineOp without its op-name type argument in: ${untyped.join(', ')}`);
  assert.deepEqual([...registered].filter((k) => !declared.has(k)), [], 'registered but not in the op table');
  assert.deepEqual([...declared].filter((k) => !registered.has(k)), [], 'in the op table but never registered');
  assert.ok(registered.size >= 30, `${registered.size} ops`);
  for (const k of registered) assert.match(k, /^[a-z][a-z0-9_]*$/, `op names are snake_case: ${k}`);
});
