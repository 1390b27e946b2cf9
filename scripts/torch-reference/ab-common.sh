# Sourced by the interleaved A/B scripts (speed_ab.sh, zsq_iter_ab.sh): a temporary folder $TMP, removed on exit,
# and with PAUSE=PATTERN every process whose command line matches PATTERN (pgrep -f; e.g. the runs of background
# sweeps) paused (SIGSTOP) now and resumed (SIGCONT) on exit.
TMP=$(mktemp -d)
PAUSED=""
if [ -n "${PAUSE:-}" ]; then PAUSED=$(pgrep -f "$PAUSE" | grep -vx "$$" | tr '\n' ' '); fi
ab_cleanup() {
  if [ -n "$PAUSED" ]; then kill -CONT $PAUSED 2>/dev/null; echo "# resumed $PAUSED" >&2; fi
  rm -rf "$TMP"
}
trap ab_cleanup EXIT
trap 'exit 130' INT TERM HUP
if [ -n "$PAUSED" ]; then kill -STOP $PAUSED 2>/dev/null; echo "# paused $PAUSED" >&2; fi
