/**
 * `npm run bench -- memory [--json]`: peak RSS (`/usr/bin/time -f %M`, a child process each) of what users run:
 * `granq eval` of the default teacher at batch 256 and 1,000 (first 2,048 test images), and `granq quantize` for a
 * few iterations of the ResNet-20 teacher at batch 200 (the CIFAR-100 config) and of a full CIFAR MobileNetV2 ONNX
 * graph (random weights, test/kit/mobilenet-onnx.ts) at batch 16. Null where there is no /usr/bin/time, no test set
 * (eval) or the command failed. These are the figures of README's memory guidance.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MOBILENET_V2_CIFAR, mobileNetV2Onnx } from '../test/kit/mobilenet-onnx.js';

const CLI = path.resolve('dist/src/cli/main.js');

/** Peak RSS in MiB of `granq ARGS` in a child process, or null where it cannot be measured or the command failed. */
export function peakMib(args: string[], log?: (s: string) => void): number | null {
  if (!existsSync('/usr/bin/time')) return null;
  const r = spawnSync('/usr/bin/time', ['-f', 'peak-kb %M', process.execPath, CLI, ...args], { encoding: 'utf8' });
  const m = /peak-kb (\d+)/.exec(r.stderr);
  const mib = r.status === 0 && m ? Math.round(Number(m[1]) / 1024) : null;
  log?.(`granq ${args.join(' ')}: ${mib === null ? `failed (${r.stderr.trim().split('\n').slice(-2).join(' / ')})` : `${mib} MiB peak RSS`}`);
  return mib;
}

/** Peak RSS in MiB of `granq eval --batch B` on 2,048 test images. */
export const evalPeakMib = (batch: number, log?: (s: string) => void) => peakMib(['eval', '--batch', String(batch), '--limit', '2048'], log);

/** Peak RSS in MiB of `granq quantize` (W4A4 granq/channel, `iters` iterations, no test set) of `model` at `batch`. */
function quantizePeakMib(model: string | undefined, batch: number, iters: number, log: (s: string) => void): number | null {
  const out = mkdtempSync(path.join(os.tmpdir(), 'granq-mem-'));
  try {
    return peakMib(['quantize', ...(model ? ['--model', model] : []), '--wbits', '4', '--abits', '4', '--weight', 'channel',
      '--batch', String(batch), '--epochs', '1', '--iters', String(iters), '--warmup', '0', '--no-test', '--agree-images', String(batch),
      '--out', path.join(out, 'run')], log);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** Writes the CIFAR MobileNetV2 graph and its sidecar under `dir`; returns the .onnx path. */
function writeMobileNet(dir: string): string {
  const file = path.join(dir, 'mobilenetv2-cifar.onnx');
  writeFileSync(file, mobileNetV2Onnx(1, MOBILENET_V2_CIFAR));
  writeFileSync(path.join(dir, 'mobilenetv2-cifar.json'), JSON.stringify({
    model: 'mobilenetv2-cifar', architecture: 'mobilenetv2', num_classes: 10,
    input: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.243, 0.261] },
  }));
  return file;
}

export function benchMemory(log: (s: string) => void): Record<string, number | null> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'granq-mnv2-'));
  try {
    const mnv2 = writeMobileNet(dir);
    return {
      eval_peak_mib_b256: evalPeakMib(256, log), eval_peak_mib_b1000: evalPeakMib(1000, log),
      quantize_peak_mib_r20_b16: quantizePeakMib(undefined, 16, 4, log),
      quantize_peak_mib_r20_b200: quantizePeakMib(undefined, 200, 2, log),
      quantize_peak_mib_mnv2_b16: quantizePeakMib(mnv2, 16, 4, log),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
