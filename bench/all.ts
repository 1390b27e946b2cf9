/**
 * `npm run bench -- all --json`: every speed and memory figure the speed issue tracks, in one JSON line, so a
 * regression is one command to see: FP forward and training step (fp.ts), the ZSQ iteration at batch 16 and 200
 * (`granq bench iter`), the 19 granq activation quantizers at batch 64 with their GB/s beside a copy's (`granq bench
 * quant`), the integer forward against FP at batch 64 (`granq bench int`), and memory.ts's peak RSS figures (eval
 * at batch 256 and 1,000, quantize of ResNet-20 and MobileNetV2). Figures of this host, not PyTorch ratios: those
 * need the reference in the same minutes (scripts/torch-reference/zsq_iter_ab.sh).
 */
import { benchInt } from '../src/cli/bench-int.js';
import { benchIter } from '../src/cli/bench-iter.js';
import { benchQuant } from '../src/cli/bench-quant.js';
import { DEFAULT_TEACHER } from '../src/models/default-teacher.js';
import { benchFp } from './fp.js';
import { benchMemory } from './memory.js';

const round1 = (v: number) => Number(v.toFixed(1));

export async function benchAll(log: (s: string) => void): Promise<Record<string, number | null>> {
  const fp = benchFp(log);
  const iter = benchIter({ batch: [16, 200], wbits: 4, abits: 4, runs: 5, warmup: 2 }, log).rows;
  const quant = benchQuant({ bits: 3, batches: [64], runs: 9 }, log).rows[0]!;
  const int = (await benchInt({ model: DEFAULT_TEACHER, batch: [64], runs: 5 }, log)).filter((r) => r.batch === 64);
  const intOf = (policy: string) => int.find((r) => r.policy === policy)?.int_vs_fp ?? null;
  return {
    fp_forward_b64_img_s: round1(fp.forward_b64), fp_forward_b256_img_s: round1(fp.forward_b256), fp_train_b64_img_s: round1(fp.train_b64),
    zsq_iter_b16_it_s: iter.find((r) => r.batch === 16)!.it_per_s, zsq_iter_b200_it_s: iter.find((r) => r.batch === 200)!.it_per_s,
    act_quant_granq_b64_ms: quant.granq_ms, act_quant_granq_b64_gb_s: quant.granq_gb_s, copy_b64_gb_s: quant.copy_gb_s,
    int_vs_fp_w8a8_layer_b64: intOf('W8A8 layer/channel'), int_vs_fp_w4a4_granq_b64: intOf('W4A4 granq/channel'),
    ...benchMemory(log),
  };
}
