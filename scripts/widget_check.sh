#!/usr/bin/env bash
# Quando's booking widget (/widget.js and /book/{id}) end to end in Debian's headless Chromium, on
# SQLite and on PostgreSQL.
#
#   bash scripts/widget_check.sh
#
# - Chromium from Debian (`apt-get install chromium` when /usr/bin/chromium is missing; no browser
#   is ever downloaded by Playwright), driven by playwright-core (npm, pinned in
#   scripts/widget/package-lock.json, installed with `npm ci`);
# - scripts/widget/widget_e2e.mjs starts `quando serve` on a free port (a fresh SQLite database in
#   a temp dir, then a scratch PostgreSQL database quando_widget_<random> made with psql and
#   dropped after), makes a Europe/Rome calendar, an event type and a publishable key for a host
#   page served from a second loopback origin, and books through the widget in Rome and in New
#   York, a refused slot and its next slots, a double click with a lost answer, the /book page at
#   360x740 by keyboard with its .ics download under the CSP, and a hold running out; each booking
#   is checked through the API. Screenshots of each step: target/widget-screens/ (SQLite) and
#   target/widget-screens/postgresql/.
#
# Environment:
#   QUANDO_BIN                the binary (default target/debug/quando; `cargo build -p quando-api`)
#   QUANDO_TEST_POSTGRES_URL  the PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/test);
#                             SKIP_POSTGRES=1 runs the SQLite half only
#   KEEP_WORK=1               keep the temp dirs (server logs) and print their paths
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=/usr/bin/chromium

BIN=$(realpath -m "${QUANDO_BIN:-target/debug/quando}")
if [[ ! -x $BIN ]]; then
  echo "widget_check.sh: $BIN is missing; build it with 'cargo build -p quando-api'" >&2
  exit 1
fi
PG_URL=${QUANDO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}

if [[ ! -x $CHROMIUM ]]; then
  echo "== chromium (Debian) is missing: apt-get install chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends chromium >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
fi
echo "== $("$CHROMIUM" --version 2>/dev/null | head -n 1)"

echo "== npm ci in scripts/widget (playwright-core $(node -p "require('./scripts/widget/package.json').dependencies['playwright-core']"))"
(cd scripts/widget && npm ci --no-audit --no-fund --silent)

WORK=$(mktemp -d -t quando-widget-XXXXXX)
scratch=""
cleanup() {
  if [[ -n $scratch ]]; then
    psql "$PG_URL" -v ON_ERROR_STOP=1 -q -c "DROP DATABASE IF EXISTS \"$scratch\" WITH (FORCE)" >/dev/null || true
  fi
  if [[ ${KEEP_WORK:-} == 1 ]]; then echo "widget_check.sh: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

e2e() {
  node scripts/widget/widget_e2e.mjs --binary "$BIN" --chromium "$CHROMIUM" "$@"
}

echo "== the widget in Chromium on SQLite"
e2e --label SQLite --database-url "sqlite://$WORK/q.db?mode=rwc" --screens target/widget-screens
if [[ ${SKIP_POSTGRES:-} == 1 ]]; then
  echo "widget_check.sh: PostgreSQL half skipped (SKIP_POSTGRES=1)"
else
  echo "== the widget in Chromium on PostgreSQL"
  scratch="quando_widget_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  psql "$PG_URL" -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE \"$scratch\"" >/dev/null
  e2e --label PostgreSQL --database-url "${PG_URL%/*}/$scratch" --screens target/widget-screens/postgresql
  psql "$PG_URL" -v ON_ERROR_STOP=1 -q -c "DROP DATABASE IF EXISTS \"$scratch\" WITH (FORCE)" >/dev/null
  scratch=""
fi
echo "widget_check.sh: passed (Chromium $("$CHROMIUM" --version 2>/dev/null | grep -Eo '[0-9]+(\.[0-9]+)+' | head -n 1)," \
  "playwright-core $(node -p "require('./scripts/widget/node_modules/playwright-core/package.json').version"))"
