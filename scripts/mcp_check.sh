#!/usr/bin/env bash
# The official MCP Python SDK as the client of Quando's MCP server (/mcp), on SQLite and on
# PostgreSQL.
#
#   bash scripts/mcp_check.sh
#
# - mcp (the MCP Python SDK, PyPI, pinned) in a virtualenv under a temp dir;
# - scripts/mcp_check.py starts `quando serve` on a free port (a fresh SQLite database, then a
#   scratch PostgreSQL database quando_mcp_<random> made with psql and dropped after), makes a
#   key with `quando org create` and a calendar:read one with `quando key create`, and connects
#   with `mcp.Client(streamable_http_client(f"{server}/mcp", http_client=...))` twice: in the
#   SDK's default mode (server/discover first) and with mode="legacy" (initialize). In each: the
#   tools and their schemas, a whole call in five tool calls (find slots, book, find by phone,
#   reschedule, cancel) checked through the REST API, a retried booking booked once, a taken
#   slot's reason and next slots, the read-only key refused on write tools; no key is 401.
#
# Environment:
#   QUANDO_BIN                the binary (default target/debug/quando; `cargo build -p quando-api`)
#   QUANDO_TEST_POSTGRES_URL  the PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/test);
#                             SKIP_POSTGRES=1 runs the SQLite half only
#   KEEP_WORK=1               keep the temp dir (the virtualenv) and print its path
set -euo pipefail
cd "$(dirname "$0")/.."

MCP_VERSION=2.3.0

BIN=$(realpath -m "${QUANDO_BIN:-target/debug/quando}")
if [[ ! -x $BIN ]]; then
  echo "mcp_check.sh: $BIN is missing; build it with 'cargo build -p quando-api'" >&2
  exit 1
fi
PG_URL=${QUANDO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}

WORK=$(mktemp -d -t quando-mcp-XXXXXX)
cleanup() {
  if [[ ${KEEP_WORK:-} == 1 ]]; then echo "mcp_check.sh: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "== mcp==$MCP_VERSION into $WORK/venv"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check "mcp==$MCP_VERSION"

echo "== the MCP Python SDK against Quando on SQLite"
"$WORK/venv/bin/python" scripts/mcp_check.py --binary "$BIN"
if [[ ${SKIP_POSTGRES:-} == 1 ]]; then
  echo "mcp_check.sh: PostgreSQL half skipped (SKIP_POSTGRES=1)"
else
  echo "== the MCP Python SDK against Quando on PostgreSQL"
  "$WORK/venv/bin/python" scripts/mcp_check.py --binary "$BIN" --postgres-admin-url "$PG_URL"
fi
echo "mcp_check.sh: passed (mcp $MCP_VERSION)"
