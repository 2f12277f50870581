#!/usr/bin/env bash
# Clients generated from the checked-in openapi.yaml, the way integrators build them.
#
#   bash scripts/generated_clients.sh
#
# - openapi-python-client (PyPI, pinned) in a virtualenv under a temp dir generates a Python
#   client; any warning of the generator (a schema or response it had to leave out) fails the
#   check: it is a bug of our spec, to be fixed in the code that generates it (api/src/spec.rs);
# - scripts/generated_clients.py starts `quando serve` on a free port with a fresh SQLite
#   database and, with the generated client only, creates a calendar and an event type, books an
#   event, lists the events and reads the event back, comparing every value (and gets the
#   declared 409 and 404 as typed error envelopes);
# - openapi-typescript (npm, pinned) generates TypeScript types; any warning or error fails the
#   check; then `tsc --strict` (typescript, pinned) type-checks a small program that uses them.
#
# Environment:
#   QUANDO_BIN   the binary (default target/debug/quando; build it with `cargo build -p quando-api`)
#   KEEP_WORK=1  keep the temp dir (generated client, types, server log) and print its path
set -euo pipefail
cd "$(dirname "$0")/.."

OPENAPI_PYTHON_CLIENT_VERSION=0.29.1
OPENAPI_TYPESCRIPT_VERSION=7.13.0
TYPESCRIPT_VERSION=5.9.3

SPEC=$PWD/openapi.yaml
BIN=$(realpath -m "${QUANDO_BIN:-target/debug/quando}")
if [[ ! -x $BIN ]]; then
  echo "generated_clients.sh: $BIN is missing; build it with 'cargo build -p quando-api'" >&2
  exit 1
fi

WORK=$(mktemp -d -t quando-clients-XXXXXX)
cleanup() {
  if [[ ${KEEP_WORK:-} == 1 ]]; then echo "generated_clients.sh: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Fails when a generator's output has a line matching $2 (its warnings), printing them.
no_warnings() {
  local log=$1 pattern=$2 what=$3
  if grep -Eiq "$pattern" "$log"; then
    echo "generated_clients.sh: $what warned about openapi.yaml (a bug of our spec):" >&2
    cat "$log" >&2
    return 1
  fi
}

# --- Python ---------------------------------------------------------------------------------
echo "== openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION into $WORK/venv"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check \
  "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION"
# No post hooks: the default ones run ruff, which is not part of this check.
printf 'post_hooks: []\nproject_name_override: quando-client\npackage_name_override: quando_client\n' >"$WORK/config.yaml"
echo "== generating the Python client from openapi.yaml"
"$WORK/venv/bin/openapi-python-client" generate --path "$SPEC" --config "$WORK/config.yaml" \
  --meta none --output-path "$WORK/python/quando_client" >"$WORK/python-generate.log" 2>&1 || {
  cat "$WORK/python-generate.log" >&2
  exit 1
}
no_warnings "$WORK/python-generate.log" 'warning|unable|cannot|error' openapi-python-client
echo "== the generated Python client against a real server"
PYTHONPATH="$WORK/python" "$WORK/venv/bin/python" scripts/generated_clients.py \
  --package quando_client --binary "$BIN"

# --- TypeScript -----------------------------------------------------------------------------
echo "== openapi-typescript@$OPENAPI_TYPESCRIPT_VERSION and typescript@$TYPESCRIPT_VERSION into $WORK/ts"
mkdir -p "$WORK/ts"
(cd "$WORK/ts" && npm init -y >/dev/null &&
  npm install --silent --no-audit --no-fund --no-save \
    "openapi-typescript@$OPENAPI_TYPESCRIPT_VERSION" "typescript@$TYPESCRIPT_VERSION")
echo "== generating TypeScript types from openapi.yaml"
"$WORK/ts/node_modules/.bin/openapi-typescript" "$SPEC" -o "$WORK/ts/quando.d.ts" \
  >"$WORK/ts-generate.log" 2>&1 || {
  cat "$WORK/ts-generate.log" >&2
  exit 1
}
no_warnings "$WORK/ts-generate.log" 'warn|error|⚠|✘' openapi-typescript
# A small program over the generated types: it compiles only if the operations, their bodies,
# their success payloads and the error envelope carry the names and types the API documents.
cat >"$WORK/ts/use.ts" <<'TS'
import type { components, operations, paths } from "./quando";

type EventIn = components["schemas"]["EventIn"];
type EventOut = components["schemas"]["EventOut"];
type ErrorCode = components["schemas"]["ErrorCode"];
type Created = operations["createEvent"]["responses"][201]["content"]["application/json; charset=utf-8"];
type Conflict = operations["createEvent"]["responses"][409]["content"]["application/json; charset=utf-8"];
type Listed = paths["/v1/calendar/events"]["get"]["responses"][200]["content"]["application/json; charset=utf-8"];

const booking: EventIn = {
  calendarId: "0196f6d2-8c1e-7a3b-9f00-0000000000c1",
  eventTypeId: "0196f6d2-8c1e-7a3b-9f00-0000000000e1",
  startTime: "2030-01-07T10:00:00Z",
  endTime: "2030-01-07T10:30:00Z",
  timezone: "Europe/Rome",
  customerName: "Laura Bianchi",
};

function describe(created: Created, listed: Listed, refused: Conflict): string {
  const event: EventOut = created.data;
  const code: ErrorCode = refused.error.code;
  const total: number = listed.pagination?.total ?? listed.data.length;
  return `${event.id} ${event.status} ${event.startTime} ${code} ${total} ${created.requestId}`;
}

export { booking, describe };
TS
echo "== tsc --strict over a program using the generated types"
"$WORK/ts/node_modules/.bin/tsc" --strict --noEmit --target es2020 --module es2020 \
  --moduleResolution node "$WORK/ts/use.ts"
echo "generated_clients.sh: passed (openapi-python-client $OPENAPI_PYTHON_CLIENT_VERSION," \
  "openapi-typescript $OPENAPI_TYPESCRIPT_VERSION, typescript $TYPESCRIPT_VERSION)"
