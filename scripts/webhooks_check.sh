#!/usr/bin/env bash
# Quando's webhooks received by a real Standard Webhooks receiver, on SQLite and on PostgreSQL
# (issue 13).
#
#   bash scripts/webhooks_check.sh
#
# - standardwebhooks (PyPI, pinned: the official Standard Webhooks Python library) in a
#   virtualenv under a temp dir;
# - scripts/webhooks_check.py starts `quando serve` on free ports (fresh SQLite files, then
#   scratch PostgreSQL databases quando_whcheck_<random> made with psql and dropped after) and
#   receives with its own http.server on 127.0.0.1, verifying every delivery with
#   `standardwebhooks.webhooks.Webhook(secret).verify(body, headers)`: faults then recovery
#   (receiver down, 500, slow past the 10 s limit, then healthy, along the 5 s / 30 s / 2 min
#   schedule: each message once, in order per event, `previous` on a reschedule), kill -9 right
#   after bookings commit, two instances on one PostgreSQL database (each message once), secret
#   rotation (old and new secret both verify), SSRF refusals without --webhook-allow-private,
#   and a test ping. About 3.5 minutes per backend (the fault scenario's schedule).
#
# Environment:
#   QUANDO_BIN                the binary (default target/debug/quando; `cargo build -p quando-api`)
#   QUANDO_TEST_POSTGRES_URL  the PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/test);
#                             SKIP_POSTGRES=1 runs the SQLite half only
#   KEEP_WORK=1               keep the temp dir (the virtualenv) and print its path
set -euo pipefail
cd "$(dirname "$0")/.."

STANDARDWEBHOOKS_VERSION=1.1.0

BIN=$(realpath -m "${QUANDO_BIN:-target/debug/quando}")
if [[ ! -x $BIN ]]; then
  echo "webhooks_check.sh: $BIN is missing; build it with 'cargo build -p quando-api'" >&2
  exit 1
fi
PG_URL=${QUANDO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}

WORK=$(mktemp -d -t quando-whcheck-XXXXXX)
cleanup() {
  if [[ ${KEEP_WORK:-} == 1 ]]; then echo "webhooks_check.sh: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "== standardwebhooks==$STANDARDWEBHOOKS_VERSION into $WORK/venv"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check "standardwebhooks==$STANDARDWEBHOOKS_VERSION"

echo "== webhooks against Quando on SQLite"
"$WORK/venv/bin/python" scripts/webhooks_check.py --binary "$BIN"
if [[ ${SKIP_POSTGRES:-} == 1 ]]; then
  echo "webhooks_check.sh: PostgreSQL half skipped (SKIP_POSTGRES=1)"
else
  echo "== webhooks against Quando on PostgreSQL"
  "$WORK/venv/bin/python" scripts/webhooks_check.py --binary "$BIN" --postgres-admin-url "$PG_URL"
fi
echo "webhooks_check.sh: passed (standardwebhooks $STANDARDWEBHOOKS_VERSION)"
