#!/usr/bin/env bash
# Drive procmem's MCP server (stdio) with the official MCP Inspector CLI
# (https://github.com/modelcontextprotocol/inspector, `--cli` mode):
#   1. learn procedures from the bundled τ-retail sample into a temporary memory;
#   2. tools/list: the fixed tools and one tool per learned procedure, with input schemas;
#   3. tools/call search_procedures for a task;
#   4. tools/call a learned procedure tool: it answers with the next tool call to make.
# Each answer is checked; the script exits non-zero when one is wrong.
#
# Usage: scripts/mcp_inspector.sh
# Env:   PYTHON=PATH            interpreter with procmem and the mcp extra installed
#                               (default: .venv/bin/python of the repo, else python3)
#        PROCMEM_NODE_DIR=DIR   npm folder for the Inspector (default: .ci/node of the repo);
#                               `npm install --prefix DIR @modelcontextprotocol/inspector`
#                               runs only when it is not installed there yet.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -x "$root/.venv/bin/python" ]]; then
    python="$root/.venv/bin/python"
else
    python="$(command -v python3)"
fi
node_dir="${PROCMEM_NODE_DIR:-$root/.ci/node}"
mkdir -p "$node_dir"
node_dir="$(cd "$node_dir" && pwd)"

step() { printf '\n==> %s\n' "$*"; }

if [[ ! -d "$node_dir/node_modules/@modelcontextprotocol/inspector" ]]; then
    step "npm install --prefix $node_dir @modelcontextprotocol/inspector"
    npm install --prefix "$node_dir" --no-audit --no-fund @modelcontextprotocol/inspector
fi
inspector_version="$(cd "$node_dir" && node -p \
    'require("@modelcontextprotocol/inspector/package.json").version')"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
db="$work/memory.db"

step "learn the τ-retail sample into $db"
"$python" -m procmem --db "$db" learn --json "$root/tests/data/tau_retail_sample.jsonl" \
    > "$work/learn.json"
"$python" - "$work/learn.json" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))
print(f"{data['import']['stored']} traces stored, {len(data['learn']['created'])} procedures learned")
EOF

# The Inspector starts the server itself: `<python> -m procmem --db DB mcp` (stdio).
inspect() {
    (cd "$node_dir" && npx --no-install @modelcontextprotocol/inspector --cli \
        "$python" -m procmem --db "$db" mcp "$@")
}

# check.py NAME FILE: assert what the Inspector printed for one call.
cat > "$work/check.py" <<'EOF'
import json, sys

name, path = sys.argv[1], sys.argv[2]
data = json.load(open(path))
FIXED = ["search_procedures", "get_procedure", "start_recording", "record_step",
         "finish_recording", "report_evidence", "continue_execution"]
TASK = "Cancel order #W6067464 because no longer needed."

def fail(why):
    sys.exit(f"FAILED {name}: {why}")

if name == "tools/list":
    tools = {t["name"]: t for t in data["tools"]}
    missing = [n for n in FIXED if n not in tools]
    if missing:
        fail(f"fixed tools missing: {missing}")
    procedures = [n for n in tools if n not in FIXED]
    cancel = tools.get("cancel_pending_order")
    if cancel is None:
        fail("no tool for the learned procedure cancel_pending_order")
    schema = cancel["inputSchema"]
    if schema.get("required") != ["order_id", "reason"] or "task" not in schema["properties"]:
        fail(f"unexpected input schema of cancel_pending_order: {schema}")
    print(f"{len(tools)} tools: {len(FIXED)} fixed + {len(procedures)} procedure tools, e.g.")
    for n in FIXED + procedures[:3]:
        print(f"  {n}({', '.join(tools[n]['inputSchema'].get('properties', {}))})")
elif name == "search_procedures":
    hits = data["structuredContent"]["hits"]
    if not hits or hits[0]["tool"] != "cancel_pending_order":
        fail(f"top hit is not cancel_pending_order: {hits[:1]}")
    for h in hits:
        print(f"  {h['rank']}. {h['tool']} score={h['score']} bound={h['bound']}")
elif name == "cancel_pending_order":
    turn = data["structuredContent"]
    call = turn.get("next_call") or {}
    want = {"order_id": "#W6067464", "reason": "no longer needed"}
    if data.get("isError") or turn["awaiting"] != "tool_result" or call.get("args") != want:
        fail(f"expected the call cancel_pending_order({want}), got {turn}")
    print(f"  execution {turn['execution_id']}: call {call['action']}({call['args']})")
    print(f"  {turn['instruction']}")
else:
    fail("unknown check")
EOF

step "Inspector $inspector_version --cli --method tools/list"
inspect --method tools/list > "$work/list.json"
"$python" "$work/check.py" tools/list "$work/list.json"

step "Inspector --cli --method tools/call --tool-name search_procedures"
inspect --method tools/call --tool-name search_procedures \
    --tool-arg "task=Cancel order #W6067464 because no longer needed." --tool-arg limit=3 \
    > "$work/search.json"
"$python" "$work/check.py" search_procedures "$work/search.json"

step "Inspector --cli --method tools/call --tool-name cancel_pending_order (a learned procedure)"
inspect --method tools/call --tool-name cancel_pending_order \
    --tool-arg "task=Cancel order #W6067464 because no longer needed." > "$work/run.json"
"$python" "$work/check.py" cancel_pending_order "$work/run.json"

step "OK: the MCP Inspector listed and called procmem's tools"
