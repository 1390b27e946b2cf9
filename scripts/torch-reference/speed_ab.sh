#!/usr/bin/env bash
# Interleaved A/B timing of the FP forward, the FP training step and the 19 granq activation quantizers: PyTorch
# (speed_bench.py; stock, and with glibc malloc told to keep freed memory, as zsq_iter_ab.sh) against granq's
# `npm run bench -- fp` and `granq bench quant --batches 64`, alternating within each round, on the same machine.
# With PAUSE=PATTERN every process whose command line matches PATTERN (pgrep -f; e.g. a background sweep) is paused
# (SIGSTOP) for the duration and resumed (SIGCONT) on exit.
#
#   scripts/torch-reference/speed_ab.sh [ROUNDS=3] [RUNS=15]
#
# Prints each measurement and the granq/PyTorch ratios per round (higher is better for granq). Needs dist/ built and
# /usr/bin/python3 with PyTorch.
set -u
cd "$(dirname "$0")/../.."
R=${1:-3}
N=${2:-15}
PY=/usr/bin/python3
. scripts/torch-reference/ab-common.sh

echo "# $R rounds, $N runs; $(date -Is); load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$R"); do
  $PY scripts/torch-reference/speed_bench.py --runs "$N" --json 2>/dev/null | tail -1 > "$TMP/torch.json"
  MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=536870912 \
    $PY scripts/torch-reference/speed_bench.py --runs "$N" --json 2>/dev/null | tail -1 > "$TMP/malloc.json"
  node --single-threaded-gc dist/bench/main.js fp --json 2>/dev/null | tail -1 > "$TMP/fp.json"
  node --single-threaded-gc dist/src/cli/main.js bench quant --batches 64 --runs "$N" --json 2>/dev/null | tail -1 > "$TMP/quant.json"
  $PY - "$TMP" "$r" <<'PYEOF'
import json, sys
d, r = sys.argv[1], sys.argv[2]
t, m = json.load(open(f'{d}/torch.json')), json.load(open(f'{d}/malloc.json'))
fp, q = json.load(open(f'{d}/fp.json')), json.load(open(f'{d}/quant.json'))
g = {'forward_b64': fp['forward_b64'], 'forward_b256': fp['forward_b256'], 'train_b64': fp['train_b64'],
     'act_quant_granq_b64_ms': q['rows'][0]['granq_ms']}
for k in g:
    ratio = (lambda ref, ours: ref / ours) if k.endswith('_ms') else (lambda ref, ours: ours / ref)
    print(f"round {r}  {k:24s} granq {g[k]:9.2f}  pytorch {t[k]:9.2f}  pytorch-malloc {m[k]:9.2f}  "
          f"granq/pytorch {ratio(t[k], g[k]):5.2f}  granq/pytorch-malloc {ratio(m[k], g[k]):5.2f}")
PYEOF
done
