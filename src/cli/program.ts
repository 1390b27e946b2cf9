/**
 * The granq command line. Errors are one line on stderr and a non-zero exit: 1 for a GranqError (bad input),
 * 2 for bad usage; GRANQ_DEBUG=1 adds stack traces.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { GranqError } from '../errors.js';
import { positiveInt } from './args.js';
import { runEval } from './eval.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('granq')
    .description('Zero-shot quantization (GranQ) of CIFAR networks, on CPU')
    .version(pkg.version)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('eval')
    .description('evaluate a model (safetensors + sidecar JSON) on its test set: top-1 and top-5')
    .requiredOption('--model <file>', 'weights (.safetensors) with a <name>.json sidecar beside them')
    .option('--data <dir>', 'data directory (default: $GRANQ_DATA, else ../shared/data)')
    .addOption(new Option('--batch <n>', 'batch size').argParser(positiveInt).default(256))
    .addOption(new Option('--limit <n>', 'evaluate only the first N test images').argParser(positiveInt))
    .option('--json', 'print one JSON object as the last line of stdout')
    .action((opts) => runEval(opts));

  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has printed its message already; help and version exit 0.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof GranqError) {
      process.stderr.write(`granq: ${e.message}\n`);
      if (process.env.GRANQ_DEBUG) process.stderr.write(`${e.stack}\n`);
      return 1;
    }
    const err = e as Error;
    process.stderr.write(`granq: internal error: ${err?.message ?? String(e)}\n`);
    if (process.env.GRANQ_DEBUG) process.stderr.write(`${err?.stack}\n`);
    return 70;
  }
}
