/** Running the built `granq` command from tests: one spawn helper, one-line error checks, a real SIGINT mid-run. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
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
 * Starts `granq ARGS` with GRANQ_PAUSE_AT=EPOCH:ITER (run/loop.ts), so the run stops after that iteration and waits;
 * sends SIGINT when it says so on stderr (no timing involved: the run cannot move on before the signal); resolves with
 * the exit code and the output.
 */
export async function interruptAt(args: string[], epoch: number, iter: number): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...CLI_ENV, GRANQ_PAUSE_AT: `${epoch}:${iter}` } });
  let stderr = '';
  let stdout = '';
  let sent = false;
  const marker = `paused at epoch ${epoch}, iteration ${iter} (GRANQ_PAUSE_AT)`;
  child.stderr.on('data', (d) => {
    stderr += String(d);
    if (!sent && stderr.includes(marker)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  child.stdout.on('data', (d) => { stdout += String(d); });
  const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  assert.ok(sent, `the run never reached ${marker}; stderr:\n${stderr}`);
  return { code, stdout, stderr };
}
