#!/usr/bin/env bash
# Steps 1-3 of the manual's "Setting up the server" (docs/operations/server.md) on one machine, as
# written there (tests/test_docs.py holds the two together): the Prefect server, the work pool, the
# deployments (with the code-table dropdowns), the worker.
#
#   DATABASE_URL=... [PREFECT_API_AUTH_STRING=librarian:PASSWORD] deployments/one-machine.sh
#
# Runs until stopped (Ctrl-C stops the worker and the server). PREFECT_API_AUTH_STRING, when set, turns
# on the server's authentication with that credential (PREFECT_SERVER_API_AUTH_STRING) and gives it to
# the worker and the commands; it is never printed. PREFECT_PORT (4200) and PREFECT_HOST (127.0.0.1)
# say where the server listens. tests/e2e/test_browser.py starts its library this way.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
PORT="${PREFECT_PORT:-4200}"
HOST="${PREFECT_HOST:-127.0.0.1}"

# Step 1: every prefect command and the worker talk to this server (without PREFECT_API_URL a command
# starts a temporary server of its own, and the worker refuses to start).
export PREFECT_API_URL="http://127.0.0.1:${PORT}/api"
if [ -n "${PREFECT_API_AUTH_STRING:-}" ]; then
  export PREFECT_SERVER_API_AUTH_STRING="${PREFECT_SERVER_API_AUTH_STRING:-$PREFECT_API_AUTH_STRING}"
fi
"$BIN/prefect" server start --host "$HOST" --port "$PORT" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 120); do
  "$BIN/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
    "$PREFECT_API_URL/health" 2>/dev/null && break
  kill -0 $server || exit 1
  sleep 1
done

# Step 2: the work pool (once; again does no harm), step 3: the deployments.
"$BIN/prefect" work-pool create library-jobs --type process --overwrite
"$BIN/python" deployments/deploy.py

# Step 2: the worker, with DATABASE_URL (or DATABASE_URL_SECRET_BLOCK) from this environment.
"$BIN/prefect" worker start --pool library-jobs
