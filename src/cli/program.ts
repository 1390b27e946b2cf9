/**
 * The granq command line. Errors are one line on stderr and a non-zero exit: 1 for a GranqError (bad input),
 * 2 for bad usage; GRANQ_DEBUG=1 adds stack traces. GRANQ_CHECK_FINITE=1 turns on autograd's finite check (every op's
 * outputs and gradients scanned; the first NaN or Inf is an error naming the op).
 */
import { Command, CommanderError, Option } from 'commander';
import { setFiniteCheck } from '../autograd/index.js';
import { GranqError } from '../errors.js';
import { ACT_KINDS, EXPORT_FORMATS, WEIGHT_CLIPS, WEIGHT_KINDS } from '../quant/index.js';
import { runAnalyzeError } from './analyze-error.js';
import { bitWidth, DATA_DEFAULT_HELP, positiveInt, positiveIntList } from './args.js';
import { runBenchQuant } from './bench-quant.js';
import { runBenchIter } from './bench-iter.js';
import { runBenchInt } from './bench-int.js';
import { addDataCommand } from './data-fetch.js';
import { DEFAULT_TEACHER, resolveModelArg } from '../models/default-teacher.js';
import { runEval } from './eval.js';
import { runExport } from './export.js';
import { addQuantizeCommand, WEIGHT_CLIP_HELP } from './quantize.js';
import { runPack } from './pack.js';
import { addReportCommand } from './report.js';
import { addSweepCommands } from './sweep.js';
import { addTrainCommand } from './train.js';
import { versionLine } from '../run/build-info.js';

/** `setExit` receives the exit code of a command that has one of its own (quantize, train: 130 when interrupted). */
export function buildProgram(setExit: (code: number) => void = () => {}): Command {
  const program = new Command();
  program
    .name('granq')
    .description('Zero-shot quantization (GranQ) of CIFAR networks, on CPU')
    .version(versionLine())
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('eval')
    .description('evaluate a model (safetensors + sidecar JSON) on its test set: top-1 and top-5')
    .option('--model <file>', `weights (.safetensors) or an ONNX model (.onnx), with a <name>.json sidecar beside them, or a granq pack file (.granq) (default: ${DEFAULT_TEACHER})`)
    .option('--data <dir>', `data directory (default: ${DATA_DEFAULT_HELP})`)
    .addOption(new Option('--batch <n>', 'batch size').argParser(positiveInt).default(256))
    .addOption(new Option('--limit <n>', 'evaluate only the first N test images').argParser(positiveInt))
    .option('--json', 'print one JSON object as the last line of stdout (with --wbits: also policy and calibration)')
    .addOption(new Option('--wbits <k>', 'post-training quantization: weight bits (2..8); needs --abits').argParser(bitWidth))
    .addOption(new Option('--abits <k>', 'post-training quantization: activation bits (2..8); needs --wbits').argParser(bitWidth))
    .addOption(new Option('--act <name>', 'activation quantizer (default granq)').choices([...ACT_KINDS]))
    .addOption(new Option('--weight <name>', 'weight quantizer (default slice, the released rule)').choices([...WEIGHT_KINDS]))
    .addOption(new Option('--weight-clip <how>', WEIGHT_CLIP_HELP).choices([...WEIGHT_CLIPS]))
    .addOption(new Option('--calib <n>', 'layer/channel-static: calibrate on the first N batches of the training split ' +
      '(data_batch_1.bin...; the test split when there is none)').argParser(positiveInt).default(4))
    .option('--released-ema', "layer: GDFQ's recursive EMA bias correction (overshoots early) instead of the correct one")
    .option('--skip <paths>', 'comma-separated module paths kept in full precision')
    .option('--int', 'integer inference of the quantized model: every conv/linear whose input is an activation quantizer\'s output runs on codes (int32 partial sums, float32 scales)')
    .option('--vs <file>', 'also compare with this model image by image on the same test images: how many each gets right where the other is wrong, and the exact McNemar p of equal accuracy (e.g. a student --vs its FP teacher)')
    .action((opts) => runEval({ ...opts, model: resolveModelArg(opts.model) }));

  addQuantizeCommand(program, setExit);
  addTrainCommand(program, setExit);
  addDataCommand(program);
  addSweepCommands(program, setExit);

  program
    .command('export')
    .description('write the quantized student of a granq quantize run as a standard ONNX model (opset 13): quantizers ' +
      'as ReduceMin/ReduceMax and elementwise ops, weights already fake-quantized; beside it <out>.quant.safetensors ' +
      '(integer codes, scales, zero points) and <out>.json (preprocessing, classes, policy)')
    .argument('<run-dir>', 'output directory of granq quantize (student.safetensors + student.json)')
    .requiredOption('--onnx <file>', 'the .onnx file to write')
    .addOption(new Option('--format <name>', 'fake: float ops, weights already fake-quantized (opset 13); qdq: weights as INT4/INT8 ' +
      'initializers + DequantizeLinear, activations through QuantizeLinear/DequantizeLinear (opset 21)').choices([...EXPORT_FORMATS]).default('fake'))
    .action((runDir: string, opts) => runExport(runDir, opts));

  program
    .command('pack')
    .description('write the quantized student of a granq quantize run in granq\'s compact form (.granq: bit-packed ' +
      'integer codes, a float32 scale and an integer zero point per row, the policy); granq eval --model FILE loads it')
    .argument('<run-dir>', 'output directory of granq quantize (student.safetensors + student.json)')
    .requiredOption('--out <file>', 'the .granq file to write')
    .action((runDir: string, opts) => runPack(runDir, opts));

  const bench = program.command('bench').description('timing experiments');
  bench
    .command('quant')
    .description('latency of activation quantization on ResNet-20: (a) the 19 activation quantizers alone on the 19 ' +
      'activation tensors of one forward pass, (b) the whole quantized forward (no grad, slice weights), for layer ' +
      '(per-tensor: EMA observe = one min + one max reduction, then fake-quant; observing on), channel-loop and granq; ' +
      'median of --runs runs after one warm-up')
    .addOption(new Option('--bits <k>', 'bit width').argParser(bitWidth).default(3))
    .addOption(new Option('--batches <list>', 'batch sizes').argParser(positiveIntList).default([16, 32, 64, 128, 256, 512]))
    .addOption(new Option('--runs <n>', 'timed runs per measurement').argParser(positiveInt).default(5))
    .option('--json', 'print {"bits", "rows": [...]} as the last line of stdout')
    .action((opts) => runBenchQuant(opts));

  bench
    .command('iter')
    .description('median time of one full zero-shot QAT iteration (generator step + student step; granq activations, ' +
      'slice weights, warm-up over) on ResNet-20, after warm-up iterations; and iterations/s')
    .addOption(new Option('--batch <list>', 'batch sizes').argParser(positiveIntList).default([16, 200]))
    .addOption(new Option('--wbits <k>', 'weight bits').argParser(bitWidth).default(4))
    .addOption(new Option('--abits <k>', 'activation bits').argParser(bitWidth).default(4))
    .addOption(new Option('--runs <n>', 'timed iterations per batch size (median)').argParser(positiveInt).default(5))
    .addOption(new Option('--warmup <n>', 'untimed iterations first').argParser(positiveInt).default(2))
    .option('--profile', 'then time --runs more iterations op by op (forward and backward ms per iteration, on stderr)')
    .option('--json', 'print {"rows": [{batch, ms, it_per_s}]} as the last line of stdout')
    .action((opts) => runBenchIter(opts));

  bench
    .command('int')
    .description('images/s of a ResNet-20 forward per batch size: FP teacher, fake-quant student, integer student ' +
      '(granq eval --int) and onnxruntime-node on the QDQ export, interleaved; W8A8 and W4A4 layer/channel, W4A4 granq/channel')
    .option('--model <file>', `teacher weights (.safetensors) with a <name>.json sidecar (default: ${DEFAULT_TEACHER})`)
    .addOption(new Option('--batch <list>', 'batch sizes').argParser(positiveIntList).default([1, 64]))
    .addOption(new Option('--runs <n>', 'timed runs of each (median)').argParser(positiveInt).default(5))
    .option('--json', 'print {"rows": [...]} as the last line of stdout')
    .action((opts) => runBenchInt({ ...opts, model: resolveModelArg(opts.model) }));

  const analyze = program.command('analyze').description('analyses of a quantized model');
  analyze
    .command('error')
    .description('relative error ||x - Q(x)||2 / ||x||2 of each activation quantizer on the FP activations of the first ' +
      '--batch test images, each layer alone: layer (per-tensor range = one EMA step on that batch, i.e. its min/max) vs granq')
    .option('--model <file>', `weights (.safetensors) with a <name>.json sidecar beside them (default: ${DEFAULT_TEACHER})`)
    .addOption(new Option('--bits <k>', 'bit width').argParser(bitWidth).default(3))
    .option('--data <dir>', `data directory (default: ${DATA_DEFAULT_HELP})`)
    .addOption(new Option('--batch <n>', 'number of test images').argParser(positiveInt).default(256))
    .option('--synthetic <run-dir>', "inputs: --batch images of this granq quantize run's saved generator instead of test images")
    .option('--json', 'print {"bits", "inputs", "images", "layers": [...]} as the last line of stdout')
    .action((opts) => runAnalyzeError({ ...opts, model: resolveModelArg(opts.model) }));

  addReportCommand(program);

  return program;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  try {
    if (process.env.GRANQ_CHECK_FINITE) setFiniteCheck(true);
    await buildProgram((c) => { code = c; }).parseAsync(argv, { from: 'user' });
    return code;
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
