/** Running the built `granq` command from tests: one spawn helper, one-line error checks, a real SIGINT mid-run. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const CLI = path.resolve('dist/src/cli/main.js');
/** GRANQ_DEBUG off, so errors are the one line users see. */
export const CLI_ENV = { ...process.env, GRANQ_DEBUG: '' };

export interface CliResult { code: number | null; stdout: string; stderr: string }

export function granq(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: CLI_ENV });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The JSON object on the last line of a command's stdout. */
export const lastJson = (s: string) => JSON.parse(s.trim().split('\n').pop()!);

/** A one-line error: the exit code given, a single stderr line matching `pattern`, no stack frames. */
export function assertOneLineError(r: CliResult, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code ${r.code}, stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

/**
 * Starts `granq ARGS` and sends SIGINT `afterMs` after the run's first epoch is logged (DIR/log.jsonl non-empty),
 * i.e. inside or at the end of epoch 2; resolves with the exit code and stderr.
 */
export async function interruptAfterFirstEpoch(args: string[], outDir: string, afterMs: number): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], { env: CLI_ENV });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => { stderr += String(d); });
  child.stdout.on('data', (d) => { stdout += String(d); });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const log = path.join(outDir, 'log.jsonl');
  while (!(fs.existsSync(log) && fs.readFileSync(log, 'utf8').length > 0)) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, afterMs));
  child.kill('SIGINT');
  return { code: await exited, stdout, stderr };
}
