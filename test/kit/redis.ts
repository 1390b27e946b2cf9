/**
 * A throwaway Redis for the sweep tests: Debian's redis-server on a free loopback port, no persistence, its files in a
 * temporary folder; ready when it says so on stdout, stopped (and waited for) by stop().
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** false when redis-server is on PATH; otherwise the reason to skip, spelled out. */
export const noRedis: false | string = spawnSync('redis-server', ['--version']).status === 0
  ? false : 'redis-server not installed (apt-get install redis-server; .ci/run installs it)';

/** A loopback port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface TestRedis { url: string; port: number; stop(): Promise<void> }

/** On `port` (a free one by default): a restart without persistence is stop() and startRedis(sameport). */
export async function startRedis(port?: number): Promise<TestRedis> {
  port ??= await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granq-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += String(d);
      if (out.includes('Ready to accept connections')) resolve();
    });
    child.on('exit', (c) => reject(new Error(`redis-server exited with ${c} before it was ready:\n${out}`)));
  });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
