#!/usr/bin/env bash
# Google's own Python client against Quando's Google Calendar v3 dialect, on SQLite and on
# PostgreSQL.
#
#   bash scripts/google_client.sh
#
# - google-api-python-client and google-auth (PyPI, pinned) in a virtualenv under a temp dir;
# - scripts/google_client.py starts `quando serve` on a free port (a fresh SQLite database, then
#   a scratch PostgreSQL database quando_gclient_<random> made with psql and dropped after) and,
#   through `googleapiclient.discovery.build("calendar", "v3", ...)` pointed at
#   `{server}/calendar/v3/`, inserts, reads, lists with paging, patches, updates, deletes, syncs
#   (a change made through the native API shows in the incremental list), asks freeBusy and the
#   calendar list, books a recurring event and reads its instances across a DST change, and gets the 409/412/410 errors as HttpError with Google's reasons.
#
# Environment:
#   QUANDO_BIN                the binary (default target/debug/quando; `cargo build -p quando-api`)
#   QUANDO_TEST_POSTGRES_URL  the PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/test);
#                             SKIP_POSTGRES=1 runs the SQLite half only
#   KEEP_WORK=1               keep the temp dir (the virtualenv) and print its path
set -euo pipefail
cd "$(dirname "$0")/.."

GOOGLE_API_PYTHON_CLIENT_VERSION=2.202.0
GOOGLE_AUTH_VERSION=2.62.2

BIN=$(realpath -m "${QUANDO_BIN:-target/debug/quando}")
if [[ ! -x $BIN ]]; then
  echo "google_client.sh: $BIN is missing; build it with 'cargo build -p quando-api'" >&2
  exit 1
fi
PG_URL=${QUANDO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}

WORK=$(mktemp -d -t quando-gclient-XXXXXX)
cleanup() {
  if [[ ${KEEP_WORK:-} == 1 ]]; then echo "google_client.sh: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "== google-api-python-client==$GOOGLE_API_PYTHON_CLIENT_VERSION google-auth==$GOOGLE_AUTH_VERSION into $WORK/venv"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check \
  "google-api-python-client==$GOOGLE_API_PYTHON_CLIENT_VERSION" "google-auth==$GOOGLE_AUTH_VERSION"

echo "== Google's client against Quando on SQLite"
"$WORK/venv/bin/python" scripts/google_client.py --binary "$BIN"
if [[ ${SKIP_POSTGRES:-} == 1 ]]; then
  echo "google_client.sh: PostgreSQL half skipped (SKIP_POSTGRES=1)"
else
  echo "== Google's client against Quando on PostgreSQL"
  "$WORK/venv/bin/python" scripts/google_client.py --binary "$BIN" --postgres-admin-url "$PG_URL"
fi
echo "google_client.sh: passed (google-api-python-client $GOOGLE_API_PYTHON_CLIENT_VERSION, google-auth $GOOGLE_AUTH_VERSION)"
