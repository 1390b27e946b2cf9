#!/usr/bin/env bash
# Interleaved A/B timing of one zero-shot QAT iteration: PyTorch (zsq_iter_bench.py, default and --released
# variants) against `granq bench iter`, on the same machine, alternating within each round. With PAUSE=PATTERN, every
# process whose command line matches PATTERN (pgrep -f; e.g. the runs of background sweeps) is paused (SIGSTOP) for
# the duration and resumed (SIGCONT) on exit.
#
#   scripts/torch-reference/zsq_iter_ab.sh [BATCH=16] [ROUNDS=3] [RUNS=15] [WARMUP=3]
#
# With MALLOC_TUNED=1 (the default; 0 to skip) each round also runs the default PyTorch variant with glibc malloc told
# to keep freed memory (MALLOC_MMAP_THRESHOLD_=32 MiB, the most glibc allows, MALLOC_TRIM_THRESHOLD_=4 GiB,
# MALLOC_TOP_PAD_=512 MiB): with glibc's defaults PyTorch's large CPU tensors are mmap'ed and page-faulted afresh at
# every allocation, which costs a lot of system time at batch 200.
#
# Prints one line per measurement (round, who, batch, median ms, min ms; granq's CLI reports only the median) and
# the granq/PyTorch ratio of medians per round. Needs dist/ built (it is not rebuilt here) and /usr/bin/python3 with
# PyTorch.
set -u
cd "$(dirname "$0")/../.."
B=${1:-16}
R=${2:-3}
N=${3:-15}
W=${4:-3}
MALLOC_TUNED=${MALLOC_TUNED:-1}
PY=/usr/bin/python3
. scripts/torch-reference/ab-common.sh

echo "# batch $B, $R rounds, $N runs, $W warm-up; $(date -Is); load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$R"); do
  $PY scripts/torch-reference/zsq_iter_bench.py --batch "$B" --runs "$N" --warmup "$W" --json 2>/dev/null | tail -1 > "$TMP/torch.$r.json"
  $PY scripts/torch-reference/zsq_iter_bench.py --batch "$B" --runs "$N" --warmup "$W" --released --json 2>/dev/null | tail -1 > "$TMP/released.$r.json"
  if [ "$MALLOC_TUNED" = 1 ]; then
    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=536870912 \
      $PY scripts/torch-reference/zsq_iter_bench.py --batch "$B" --runs "$N" --warmup "$W" --json 2>/dev/null | tail -1 > "$TMP/malloc.$r.json"
  fi
  node --single-threaded-gc dist/src/cli/main.js bench iter --batch "$B" --runs "$N" --warmup "$W" --json 2>/dev/null | tail -1 > "$TMP/granq.$r.json"
  $PY - "$TMP" "$r" <<'EOF'
import json, os, sys
d, r = sys.argv[1], sys.argv[2]
rows = {}
for who in ['torch', 'released', 'malloc', 'granq']:
    if who == 'malloc' and not os.path.exists(f'{d}/malloc.{r}.json'):
        continue
    try:
        rows[who] = json.load(open(f'{d}/{who}.{r}.json'))['rows'][0]
    except Exception as e:
        rows[who] = None
        print(f'round {r}  {who:<15} failed ({e})')
names = {'torch': 'pytorch', 'released': 'pytorch-released', 'malloc': 'pytorch-malloc', 'granq': 'granq'}
for who, x in rows.items():
    if x:
        mn = x.get('min_ms')
        print(f"round {r}  {names[who]:<17} batch {x['batch']:>4}  median {x['ms']:>9.1f} ms  min {mn if mn is not None else '-':>9} ms")
g = rows['granq']
for who in ['torch', 'released', 'malloc']:
    if g and rows.get(who):
        print(f"round {r}  ratio granq/{names[who]:<17} {g['ms'] / rows[who]['ms']:.3f}")
sys.stdout.flush()
EOF
done
