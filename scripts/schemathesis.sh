#!/usr/bin/env bash
# Run schemathesis (every check) against procmem's REST API.
#
#   scripts/schemathesis.sh                 # starts `procmem serve` on a fresh memory seeded
#                                           # from tests/data/tau_retail_sample.jsonl, then stops it
#   PROCMEM_URL=http://127.0.0.1:8765 PROCMEM_KEY=pmk_... scripts/schemathesis.sh
#                                           # against a server you run (a key with every scope)
#
# Extra arguments go to `schemathesis run` (e.g. --max-examples 200, --seed 1).
# The check configuration is scripts/schemathesis.toml (shared with
# tests/test_rest_schemathesis.py). Exit status: schemathesis's (0 = no failures).
# Needs the test extras: pip install -e '.[test]'.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${VIRTUAL_ENV:-$root/.venv}/bin"
procmem="$bin/procmem"
schemathesis="$bin/schemathesis"
[ -x "$procmem" ] || procmem=procmem
[ -x "$schemathesis" ] || schemathesis=schemathesis

url="${PROCMEM_URL:-}"
server=""
workdir=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    if [ -n "$workdir" ]; then rm -rf "$workdir"; fi
}
trap cleanup EXIT

if [ -z "$url" ]; then
    port="${PROCMEM_PORT:-8765}"
    url="http://127.0.0.1:$port"
    workdir="$(mktemp -d)"
    "$procmem" --db "$workdir/memory.db" learn "$root/tests/data/tau_retail_sample.jsonl" >/dev/null
    PROCMEM_KEY="$("$procmem" --db "$workdir/memory.db" keys create --scope read --scope write \
        --scope run --scope admin --name schemathesis 2>/dev/null)"
    "$procmem" --db "$workdir/memory.db" serve --port "$port" --log-level warning &
    server=$!
fi

"$schemathesis" --config-file "$root/scripts/schemathesis.toml" run "$url/openapi.json" \
    --header "Authorization: Bearer ${PROCMEM_KEY:?set PROCMEM_KEY to a key with every scope}" \
    --checks all --wait-for-schema 30 --max-examples "${MAX_EXAMPLES:-50}" "$@"
