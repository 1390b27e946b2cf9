#!/usr/bin/env bash
# Copies what a sweep folder's results are (kilobytes, for results/ in git): sweep.json and, per cell, cell.json,
# result.json, log.jsonl and output.log; never checkpoints or weights.
# Usage: scripts/keep-sweep-results.sh SWEEP_DIR DEST_DIR
set -euo pipefail
src=${1:?SWEEP_DIR}; dst=${2:?DEST_DIR}
[ -f "$src/sweep.json" ] || { echo "keep-sweep-results: $src holds no sweep.json" >&2; exit 1; }
mkdir -p "$dst/cells"
cp "$src/sweep.json" "$dst/"
for c in "$src"/cells/*/; do
  id=$(basename "$c")
  mkdir -p "$dst/cells/$id"
  for f in cell.json result.json log.jsonl output.log; do [ -f "$c/$f" ] && cp "$c/$f" "$dst/cells/$id/"; done
done
du -sh "$dst"
