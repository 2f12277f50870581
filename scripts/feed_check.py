#!/usr/bin/env python3
"""Reads a real Quando server's calendar feed with Python's `icalendar` and
`recurring-ical-events` (run by scripts/feed_check.sh, which installs them pinned in a
virtualenv).

    python feed_check.py [--binary target/debug/quando] [--postgres-admin-url URL]

Through the native API (urllib) it makes a Rome calendar, an event type and events around now
(the feed's window is 90 days back to 365 days ahead): one in Rome, one in New York, one
cancelled, one all-day; through the Google dialect (`/calendar/v3`, which takes recurrence) a
weekly 09:00 Europe/Rome series of 8 crossing the next DST change, with one instance moved to
11:00 and one deleted. Then, without any key, it fetches `/feeds/{token}.ics` and checks:

- `icalendar.Calendar.from_ical` parses it; X-WR-CALNAME is the calendar's name; a VTIMEZONE
  for each zone used;
- every event is there by its UID with the UTC start and end Quando's own API gives, the all-day
  one as dates, the cancelled one `STATUS:CANCELLED`, SEQUENCE/DTSTAMP/LAST-MODIFIED present;
- `recurring_ical_events.of(cal).between(window)` expands the series to exactly the instants of
  Quando's own instance list (`.../events/{id}/instances`): the moved one at its new time, the
  deleted one absent, 09:00 Rome on both sides of the DST change;
- the ETag answers 304 to If-None-Match, a change gives a new ETag;
- a rotated token, and a token of another calendar's shape, are 404 in the JSON envelope.

With --postgres-admin-url it creates a scratch database quando_feed_<random> with psql and drops
it after; without it, a fresh SQLite database in a temp dir. Exit 0 when all holds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import REPO_ROOT, Server, psql  # noqa: E402

import icalendar  # noqa: E402
import recurring_ical_events  # noqa: E402

ROME = ZoneInfo("Europe/Rome")
UTC = dt.timezone.utc


def log(msg: str) -> None:
    print(f"[feed-check] {msg}", flush=True)


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def equal(got, want, what: str) -> None:
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def call(base: str, method: str, path: str, key: str | None = None, body: dict | None = None,
         headers: dict | None = None) -> tuple[int, dict, bytes]:
    """(status, headers by lower-case name, body) of one request; HTTP errors are answers, not
    exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def ok(answer: tuple[int, dict, bytes], status: int, what: str) -> dict:
    code, _, body = answer
    equal(code, status, f"{what}: HTTP status ({body[:300]!r})")
    return json.loads(body) if body else {}


def utc(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


def as_utc(value) -> dt.datetime:
    check(isinstance(value, dt.datetime) and value.tzinfo is not None, f"an aware date-time: {value!r}")
    return value.astimezone(UTC)


def uid_of(event: dict) -> str:
    return uuid.UUID(event["id"]).hex + "@quando"


def dst_crossing_monday(today: dt.date) -> dt.date:
    """A Monday at least a week ahead such that a weekly 09:00 Rome series of 8 from it has four
    instances before the next DST change and four after."""
    m = today + dt.timedelta(days=7 * 5)
    while m.weekday() != 0:
        m += dt.timedelta(days=1)
    while True:
        before = dt.datetime.combine(m - dt.timedelta(weeks=1), dt.time(9), ROME).utcoffset()
        if dt.datetime.combine(m, dt.time(9), ROME).utcoffset() != before:
            return m - dt.timedelta(weeks=4)
        m += dt.timedelta(weeks=1)


def unescape_text(value: str) -> str:
    """An RFC 5545 TEXT value (icalendar leaves X- properties as written)."""
    out, chars = [], iter(value)
    for c in chars:
        if c == "\\":
            n = next(chars, "")
            out.append("\n" if n in "nN" else n)
        else:
            out.append(c)
    return "".join(out)


def drive(base: str, key: str) -> None:
    now = dt.datetime.now(UTC)
    today = now.date()
    cal = ok(call(base, "POST", "/v1/calendar/calendars", key,
                  {"name": "Studio Rossi, sede 1", "timezone": "Europe/Rome"}), 201, "calendar")["data"]
    cal_id = cal["id"]
    et = ok(call(base, "POST", "/v1/calendar/event-types", key,
                 {"calendarId": cal_id, "name": "Visita", "durationMinutes": 30}), 201, "event type")["data"]

    def book(body: dict) -> dict:
        body = {"calendarId": cal_id, "eventTypeId": et["id"], **body}
        return ok(call(base, "POST", "/v1/calendar/events", key, body), 201, f"book {body}")["data"]

    d3 = today + dt.timedelta(days=3)
    rome = book({"startTime": f"{d3}T09:00:00", "endTime": f"{d3}T09:45:00", "timezone": "Europe/Rome",
                 "title": "Controllo; annuale", "location": "Via Roma 1, Milano",
                 "description": "Portare le lastre\nand the old ones",
                 "attendees": [{"name": "Bianchi, Laura", "email": "laura@example.com",
                                "responseStatus": "accepted"}]})
    new_york = book({"startTime": f"{d3}T09:00:00", "endTime": f"{d3}T10:00:00",
                     "timezone": "America/New_York", "title": "Call with New York"})
    d4 = today + dt.timedelta(days=4)
    cancelled = book({"startTime": f"{d4}T10:00:00Z", "endTime": f"{d4}T10:30:00Z", "title": "Disdetto"})
    cancelled = ok(call(base, "POST", f"/v1/calendar/events/{cancelled['id']}/cancel", key, {"reason": "ill"}),
                   200, "cancel")["data"]
    equal(cancelled["status"], "cancelled", "the cancelled event")
    d5 = today + dt.timedelta(days=5)
    all_day = book({"startDate": str(d5), "endDate": str(d5 + dt.timedelta(days=1)),
                    "timezone": "Europe/Rome", "title": "Chiuso"})
    singles = [rome, new_york, cancelled, all_day]
    log(f"booked {len(singles)} events through the native API")

    first = dst_crossing_monday(today)
    start = dt.datetime.combine(first, dt.time(9), ROME)
    series = ok(call(base, "POST", f"/calendar/v3/calendars/{cal_id}/events", key, {
        "summary": "Weekly review",
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "Europe/Rome"},
        "end": {"dateTime": (start + dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "Europe/Rome"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=8"],
    }), 200, "recurring event")
    sid = series["id"]
    starts = [dt.datetime.combine(first + dt.timedelta(weeks=i), dt.time(9), ROME) for i in range(8)]
    offsets = {s.utcoffset() for s in starts}
    equal(len(offsets), 2, "the series crosses a DST change")
    rule_id = lambda s: f"{sid}_{s.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"  # noqa: E731
    moved_to = starts[2].replace(hour=11)
    ok(call(base, "PATCH", f"/calendar/v3/calendars/{cal_id}/events/{rule_id(starts[2])}", key, {
        "start": {"dateTime": moved_to.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "Europe/Rome"},
        "end": {"dateTime": (moved_to + dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "Europe/Rome"},
    }), 200, "move the third instance")
    code, _, body = call(base, "DELETE", f"/calendar/v3/calendars/{cal_id}/events/{rule_id(starts[5])}", key)
    equal(code, 204, f"delete the sixth instance ({body[:200]!r})")
    listed = ok(call(base, "GET", f"/calendar/v3/calendars/{cal_id}/events/{sid}/instances", key), 200,
                "instances")["items"]
    quando_instants = sorted(utc(i["start"]["dateTime"]) for i in listed)
    equal(len(quando_instants), 7, "Quando lists 7 live instances")
    check(moved_to.astimezone(UTC) in quando_instants, "the moved instance is listed at 11:00")
    check(starts[5].astimezone(UTC) not in quando_instants, "the deleted instance is not listed")
    log(f"series {sid}: weekly from {first} 09:00 Rome across the DST change, one moved, one deleted")

    # The feed: made once, fetched without a key.
    made = call(base, "GET", f"/v1/calendar/calendars/{cal_id}/feed", key)
    url = ok(made, 201, "the feed is made")["data"]["url"]
    check(url.startswith(base + "/feeds/qfeed_") and url.endswith(".ics"), f"feed URL {url}")
    path = url[len(base):]
    again = ok(call(base, "GET", f"/v1/calendar/calendars/{cal_id}/feed", key), 200, "the feed again")
    equal(again["data"]["url"], None, "the URL is shown once")
    code, headers, ics = call(base, "GET", path)
    equal(code, 200, "the feed without a key")
    equal(headers.get("content-type"), "text/calendar; charset=utf-8", "Content-Type")
    etag = headers.get("etag")
    check(bool(etag) and etag.startswith('"'), f"a strong ETag: {etag!r}")

    parsed = icalendar.Calendar.from_ical(ics)
    equal(unescape_text(str(parsed.get("X-WR-CALNAME"))), cal["name"], "X-WR-CALNAME")
    zones = {str(tz.get("TZID")) for tz in parsed.walk("VTIMEZONE")}
    check({"Europe/Rome", "America/New_York"} <= zones, f"a VTIMEZONE per zone used: {zones}")
    vevents = list(parsed.walk("VEVENT"))
    by_uid: dict[str, list] = {}
    for v in vevents:
        by_uid.setdefault(str(v.get("UID")), []).append(v)

    for e in singles:
        found = by_uid.get(uid_of(e), [])
        equal(len(found), 1, f"one VEVENT for {e['title']}")
        v = found[0]
        for prop in ("DTSTAMP", "LAST-MODIFIED", "SEQUENCE", "CREATED"):
            check(v.get(prop) is not None, f"{prop} on {e['title']}")
        equal(str(v.get("SUMMARY")), e["title"], "SUMMARY")
        if e.get("allDay"):
            equal(v.decoded("DTSTART"), dt.date.fromisoformat(e["startDate"]), "all-day DTSTART is the date")
            equal(v.decoded("DTEND"), dt.date.fromisoformat(e["endDate"]), "all-day DTEND is the date")
        else:
            equal(as_utc(v.decoded("DTSTART")), utc(e["startTime"]), f"DTSTART of {e['title']}")
            equal(as_utc(v.decoded("DTEND")), utc(e["endTime"]), f"DTEND of {e['title']}")
        want = "CANCELLED" if e["status"] == "cancelled" else "CONFIRMED"
        equal(str(v.get("STATUS")), want, f"STATUS of {e['title']}")
    v = by_uid[uid_of(rome)][0]
    equal(str(v.get("LOCATION")), "Via Roma 1, Milano", "LOCATION")
    equal(str(v.get("DESCRIPTION")), "Portare le lastre\nand the old ones", "DESCRIPTION")
    attendee = v.get("ATTENDEE")
    equal(str(attendee), "mailto:laura@example.com", "ATTENDEE")
    equal(attendee.params.get("CN"), "Bianchi, Laura", "ATTENDEE CN")
    equal(str(v.get("DTSTART").params.get("TZID")), "Europe/Rome", "a Rome event in Rome time")
    log(f"{len(singles)} single events present with the right instants; the cancelled one CANCELLED")

    series_uid = series["iCalUID"]
    parts = by_uid.get(series_uid, [])
    equal(len(parts), 2, "the series is one master and one override")
    window_from = dt.datetime.combine(today - dt.timedelta(days=90), dt.time(0), UTC)
    window_to = dt.datetime.combine(today + dt.timedelta(days=366), dt.time(0), UTC)
    expanded = [o for o in recurring_ical_events.of(parsed).between(window_from, window_to)
                if str(o.get("UID")) == series_uid]
    feed_instants = sorted(as_utc(o.decoded("DTSTART")) for o in expanded)
    equal(feed_instants, quando_instants, "recurring-ical-events expands the series to Quando's instances")
    for o in expanded:
        local = as_utc(o.decoded("DTSTART")).astimezone(ROME)
        check(local.hour in (9, 11) and local.minute == 0, f"09:00 (or the moved 11:00) in Rome: {local}")
    log(f"the series expands to Quando's {len(quando_instants)} instances across the DST change")

    code, headers, body = call(base, "GET", path, headers={"If-None-Match": etag})
    equal(code, 304, "If-None-Match with the ETag")
    equal(body, b"", "a 304 has no body")
    ok(call(base, "PATCH", f"/v1/calendar/events/{rome['id']}", key, {"title": "Controllo (spostato)"}), 200,
       "a change")
    code, headers, body = call(base, "GET", path, headers={"If-None-Match": etag})
    equal(code, 200, "after a change the old ETag no longer matches")
    check(headers.get("etag") not in (None, etag), "a change is a new ETag")
    log("ETag: 304 while unchanged, a new one after a change")

    rotated = ok(call(base, "POST", f"/v1/calendar/calendars/{cal_id}/feed/rotate", key), 200, "rotate")
    new_path = rotated["data"]["url"][len(base):]
    for gone in (path, "/feeds/qfeed_" + "A" * 43 + ".ics", "/feeds/whatever.ics"):
        code, headers, body = call(base, "GET", gone)
        equal(code, 404, f"{gone} is 404")
        equal(json.loads(body)["error"]["code"], "not_found", f"{gone} in the envelope")
    equal(call(base, "GET", new_path)[0], 200, "the rotated URL works")
    log("a rotated or made-up token is 404 in the envelope; the new URL works")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO_ROOT, "target", "debug", "quando"))
    ap.add_argument("--postgres-admin-url",
                    help="create a scratch database quando_feed_<random> through this URL with psql, drop it after")
    args = ap.parse_args()
    scratch = None
    with tempfile.TemporaryDirectory(prefix="quando-feed-") as workdir:
        if args.postgres_admin_url:
            scratch = f"quando_feed_{uuid.uuid4().hex[:12]}"
            psql(args.postgres_admin_url, f'CREATE DATABASE "{scratch}"')
            database_url = args.postgres_admin_url.rsplit("/", 1)[0] + f"/{scratch}"
        else:
            database_url = f"sqlite://{os.path.join(workdir, 'feed.db')}?mode=rwc"
        server = Server(args.binary, database_url, os.path.join(workdir, "server.log"))
        try:
            out = subprocess.run(
                [args.binary, "org", "create", "--name", "feed-check", "--database-url", database_url],
                check=True, capture_output=True, text=True,
            )
            key = json.loads(out.stdout)["apiKey"]["key"]
            server.start()
            log(f"server {server.base} on {'PostgreSQL' if scratch else 'SQLite'}")
            try:
                drive(server.base, key)
            except Exception:
                log("server log tail:\n" + server.log_tail(30))
                raise
        finally:
            server.stop()
            if scratch:
                psql(args.postgres_admin_url, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    log("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
