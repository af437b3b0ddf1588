#!/usr/bin/env bash
# The README's demo (`make demo`) on a library of N users (default 100,000) in a scratch SQLite file,
# each step timed: the target is the purge job under 30 s at 100,000 users.
#     benchmarks/readme_demo.sh [N]
# Uses a temporary Prefect API of its own (PREFECT_API_URL unset: the flows start one locally).
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-100000}"
work="$(mktemp -d /tmp/lumj-demo-XXXXXX)"
trap 'rm -rf "$work"' EXIT
export DATABASE_URL="sqlite:///$work/library.db" PREFECT_HOME="$work/prefect" PREFECT_SERVER_ANALYTICS_ENABLED=false
unset PREFECT_API_URL
step() {
  local started ended
  started=$(date +%s.%N)
  .venv/bin/python -m flows "$@" > "$work/out.txt" 2> "$work/err.txt"
  ended=$(date +%s.%N)
  printf '| `%s` | %.1f |\n' "$*" "$(echo "$ended - $started" | bc)"
}
echo "| step ($users users, SQLite) | seconds |"
echo "|---|---:|"
step init-db
step demo-data --users "$users" --seed 42
step purge --grace-period-days 30
step purge --grace-period-days 30 --confirm
grep -E "^\| (eligible|purged)|purged" "$work/out.txt" | head -3 || true
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
