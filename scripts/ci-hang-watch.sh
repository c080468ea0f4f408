#!/usr/bin/env bash
# CI's watch for a test process whose main thread sits in a futex wait without using CPU for 120 s:
# a deadlock no test timeout can end (the event loop is blocked). Seen twice in CI runs of 2026-12-05,
# not reproduced since. Prints its native stacks (gdb, when present) and sockets into the CI log, then
# kills it, so that the run fails with the evidence instead of waiting out CI's limit.
set -u
declare -A cpu since
while sleep 15; do
  for pid in $(pgrep -f "vitest" || true); do
    [ -r "/proc/$pid/stat" ] || continue
    used=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || continue
    call=$(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null || echo ?)
    now=$(date +%s)
    if [ "$call" != "202" ] || [ "${cpu[$pid]:-}" != "$used" ]; then
      cpu[$pid]=$used
      since[$pid]=$now
      continue
    fi
    [ $((now - since[$pid])) -lt "${HANG_WATCH_SECONDS:-120}" ] && continue
    {
      echo "==> hang watch: process $pid has waited on a futex for $((now - since[$pid])) s without CPU: $(tr '\0' ' ' < "/proc/$pid/cmdline" | cut -c1-200)"
      ss -tanp 2>/dev/null | grep "pid=$pid," | head -20
      if command -v gdb > /dev/null; then gdb -p "$pid" -batch -ex "thread apply all bt 25" 2>&1 | grep -E "^Thread|^#" | head -200; fi
      echo "==> hang watch: killing $pid"
    } >&2
    kill -9 "$pid" 2>/dev/null
    unset "cpu[$pid]" "since[$pid]"
  done
done
