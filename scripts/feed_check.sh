#!/usr/bin/env bash
# Quando's calendar feed read by Python's icalendar and recurring-ical-events, on SQLite and on
# PostgreSQL.
#
#   bash scripts/feed_check.sh
#
# - icalendar and recurring-ical-events (PyPI, pinned) in a virtualenv under a temp dir;
# - scripts/feed_check.py starts `quando serve` on a free port (a fresh SQLite database, then a
#   scratch PostgreSQL database quando_feed_<random> made with psql and dropped after), books
#   events in Rome, New York, a cancelled one, an all-day one and a weekly Europe/Rome series
#   across a DST change (one instance moved, one deleted), fetches `/feeds/{token}.ics` without a
#   key and checks every event's instants, STATUS:CANCELLED, the series' expansion against
#   Quando's own instance list, ETag/If-None-Match (304), and 404 for rotated and made-up tokens.
#
# Environment:
#   QUANDO_BIN                the binary (default target/debug/quando; `cargo build -p quando-api`)
#   QUANDO_TEST_POSTGRES_URL  the PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/test);
#                             SKIP_POSTGRES=1 runs the SQLite half only
#   KEEP_WORK=1               keep the temp dir (the virtualenv) and print its path
set -euo pipefail
cd "$(dirname "$0")/.."

ICALENDAR_VERSION=7.3.2
RECURRING_ICAL_EVENTS_VERSION=3.8.2

BIN=$(realpath -m "${QUANDO_BIN:-target/debug/quando}")
if [[ ! -x $BIN ]]; then
  echo "feed_check.sh: $BIN is missing; build it with 'cargo build -p quando-api'" >&2
  exit 1
fi
PG_URL=${QUANDO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}

WORK=$(mktemp -d -t quando-feed-XXXXXX)
cleanup() {
  if [[ ${KEEP_WORK:-} == 1 ]]; then echo "feed_check.sh: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "== icalendar==$ICALENDAR_VERSION recurring-ical-events==$RECURRING_ICAL_EVENTS_VERSION into $WORK/venv"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check \
  "icalendar==$ICALENDAR_VERSION" "recurring-ical-events==$RECURRING_ICAL_EVENTS_VERSION"

echo "== the feed against icalendar on SQLite"
"$WORK/venv/bin/python" scripts/feed_check.py --binary "$BIN"
if [[ ${SKIP_POSTGRES:-} == 1 ]]; then
  echo "feed_check.sh: PostgreSQL half skipped (SKIP_POSTGRES=1)"
else
  echo "== the feed against icalendar on PostgreSQL"
  "$WORK/venv/bin/python" scripts/feed_check.py --binary "$BIN" --postgres-admin-url "$PG_URL"
fi
echo "feed_check.sh: passed (icalendar $ICALENDAR_VERSION, recurring-ical-events $RECURRING_ICAL_EVENTS_VERSION)"
