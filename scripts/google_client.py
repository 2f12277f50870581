#!/usr/bin/env python3
"""Drives a real Quando server with Google's own Python client (google-api-python-client, run by
scripts/google_client.sh, which installs it pinned in a virtualenv).

    python google_client.py [--binary target/debug/quando] [--postgres-admin-url URL]

The client is built the way an integrator builds it for Google Calendar, from the client's
static discovery document, with only the endpoint pointed at Quando:

    build("calendar", "v3", credentials=Credentials(token=KEY), static_discovery=True,
          client_options={"api_endpoint": f"{base}/calendar/v3/"})

(the discovery document's methods are paths relative to `api_endpoint`, so requests go to
`{base}/calendar/v3/calendars/...`). Through that client only: insert (the seed's fields), get,
list with paging (maxResults=2 over 5 events) and singleEvents, patch, update, delete, a sync
round (full list, a change through the NATIVE API with urllib, the incremental list shows exactly
that change, then a cancel shows as cancelled), freeBusy, calendarList, and the 409 `conflict`,
409 `duplicate`, 412 `conditionNotMet` and 410 `fullSyncRequired` paths as HttpError with
Google's reason. Every returned field is compared with what was sent.

With --postgres-admin-url it creates a scratch database quando_gclient_<random> with psql and
drops it after; without it, a fresh SQLite database in a temp dir. Exit 0 when all holds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import REPO_ROOT, Server, psql  # noqa: E402

import google.oauth2.credentials  # noqa: E402
from googleapiclient import discovery  # noqa: E402
from googleapiclient.errors import HttpError  # noqa: E402


def log(msg: str) -> None:
    print(f"[google-client] {msg}", flush=True)


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def equal(got, want, what: str) -> None:
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def reason_of(e: HttpError) -> str:
    return json.loads(e.content)["error"]["errors"][0]["reason"]


def expect_error(call, status: int, reason: str, what: str) -> dict:
    try:
        call()
    except HttpError as e:
        equal(e.resp.status, status, f"{what}: HTTP status")
        equal(reason_of(e), reason, f"{what}: reason")
        return json.loads(e.content)["error"]
    raise AssertionError(f"{what}: no error raised")


def native(base: str, key: str, method: str, path: str, body: dict | None = None) -> dict:
    """A call to the NATIVE API with urllib (not the Google client)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def as_uuid(google_id: str) -> str:
    return str(uuid.UUID(google_id))


SEED = {
    "summary": "Google I/O 2030",
    "location": "800 Howard St., San Francisco, CA 94103",
    "description": "A chance to hear more about Google's developer products.",
    "start": {"dateTime": "2030-05-28T09:00:00-07:00", "timeZone": "America/Los_Angeles"},
    "end": {"dateTime": "2030-05-28T17:00:00-07:00", "timeZone": "America/Los_Angeles"},
    "attendees": [
        {"email": "lpage@example.com"},
        {"email": "sbrin@example.com", "displayName": "Sergey", "optional": True,
         "responseStatus": "accepted", "comment": "on my way", "additionalGuests": 1},
    ],
    "reminders": {"useDefault": False, "overrides": [
        {"method": "email", "minutes": 24 * 60}, {"method": "popup", "minutes": 10}]},
    "visibility": "private",
    "colorId": "5",
    "extendedProperties": {"private": {"crm": "42"}, "shared": {"room": "A"}},
    "source": {"title": "Ticket 1", "url": "https://example.com/t/1"},
    "transparency": "opaque",
    "guestsCanModify": True,
}


def check_seed_event(e: dict, calendar_name: str) -> None:
    equal(e["kind"], "calendar#event", "kind")
    check(len(e["id"]) == 32 and all(c in "0123456789abcdef" for c in e["id"]), f"id {e['id']!r}")
    check(e["etag"].startswith('"') and e["etag"].endswith('"'), f"etag {e['etag']!r}")
    equal(e["status"], "confirmed", "status")
    check(e["htmlLink"].startswith("http://") and "/v1/calendar/events/" in e["htmlLink"], f"htmlLink {e['htmlLink']}")
    check(e["created"].endswith("Z") and e["updated"].endswith("Z"), "created/updated in UTC")
    for key in ("summary", "location", "description", "start", "end", "reminders", "visibility",
                "colorId", "extendedProperties", "source", "transparency", "guestsCanModify"):
        equal(e[key], SEED[key], key)
    equal(e["attendees"][0], {"email": "lpage@example.com", "responseStatus": "needsAction"}, "attendee 0")
    equal(e["attendees"][1], SEED["attendees"][1], "attendee 1")
    equal(e["creator"]["self"], True, "creator.self")
    equal(e["organizer"], {"email": e["organizer"]["email"], "displayName": calendar_name, "self": True}, "organizer")
    equal(e["iCalUID"], f"{e['id']}@quando", "iCalUID")
    equal(e["sequence"], 0, "sequence")
    equal(e["eventType"], "default", "eventType")
    equal(e["guestsCanInviteOthers"], True, "guestsCanInviteOthers")
    equal(e["guestsCanSeeOtherGuests"], True, "guestsCanSeeOtherGuests")
    equal(e["anyoneCanAddSelf"], False, "anyoneCanAddSelf")


def drive(base: str, key: str) -> None:
    creds = google.oauth2.credentials.Credentials(token=key)
    service = discovery.build(
        "calendar", "v3", credentials=creds, static_discovery=True,
        client_options={"api_endpoint": f"{base}/calendar/v3/"},
    )
    events = service.events()

    # A default calendar (primary) made through the native API.
    cal = native(base, key, "POST", "/v1/calendar/calendars",
                 {"name": "Studio Google", "timezone": "Europe/Rome", "isDefault": True})["data"]
    cal_id = cal["id"]

    # calendarList and calendars.get.
    listed = service.calendarList().list().execute()
    equal(listed["kind"], "calendar#calendarList", "calendarList kind")
    equal(len(listed["items"]), 1, "one calendar")
    entry = listed["items"][0]
    equal({k: entry[k] for k in ("kind", "id", "summary", "timeZone", "primary", "accessRole")},
          {"kind": "calendar#calendarListEntry", "id": cal_id, "summary": "Studio Google",
           "timeZone": "Europe/Rome", "primary": True, "accessRole": "owner"}, "calendarList entry")
    got_cal = service.calendars().get(calendarId="primary").execute()
    equal((got_cal["kind"], got_cal["id"], got_cal["summary"], got_cal["timeZone"]),
          ("calendar#calendar", cal_id, "Studio Google", "Europe/Rome"), "calendars.get")
    log("calendarList and calendars.get")

    # insert with the seed's fields, then get.
    e = events.insert(calendarId="primary", body=SEED, sendUpdates="all", conferenceDataVersion=0).execute()
    check_seed_event(e, "Studio Google")
    got = events.get(calendarId=cal_id, eventId=e["id"]).execute()
    check_seed_event(got, "Studio Google")
    equal(got["etag"], e["etag"], "etag on get")
    seed_id = e["id"]
    log(f"insert and get {seed_id}")

    # The same event natively: booked via gcal, in UTC.
    nat = native(base, key, "GET", f"/v1/calendar/events/{as_uuid(seed_id)}")["data"]
    equal((nat["bookedVia"], nat["startTime"], nat["title"]), ("gcal", "2030-05-28T16:00:00Z", SEED["summary"]), "native view")

    # 409 conflict with Quando's reason and next slots.
    overlap = dict(SEED, summary="Overlap")
    err = expect_error(lambda: events.insert(calendarId=cal_id, body=overlap).execute(), 409, "conflict", "overlap")
    equal(err["quandoReason"], "conflict", "quandoReason")
    equal(err["conflictingEventId"], seed_id, "conflictingEventId")
    check(len(err["nextSlots"]) > 0, "nextSlots offered")
    # 409 duplicate: a client-chosen id used twice.
    chosen = {"id": "gclient0event1", "summary": "Chosen id",
              "start": {"dateTime": "2030-06-03T09:00:00Z"}, "end": {"dateTime": "2030-06-03T09:30:00Z"}}
    c = events.insert(calendarId=cal_id, body=chosen).execute()
    equal(c["id"], "gclient0event1", "chosen id")
    dup = dict(chosen, start={"dateTime": "2030-06-04T09:00:00Z"}, end={"dateTime": "2030-06-04T09:30:00Z"})
    expect_error(lambda: events.insert(calendarId=cal_id, body=dup).execute(), 409, "duplicate", "duplicate id")
    log("409 conflict and 409 duplicate")

    # Five more events, listed two by two.
    made = []
    for i in range(5):
        body = {"summary": f"Slot {i}",
                "start": {"dateTime": f"2030-06-10T{9 + i:02d}:00:00+02:00"},
                "end": {"dateTime": f"2030-06-10T{9 + i:02d}:30:00+02:00"}}
        made.append(events.insert(calendarId=cal_id, body=body).execute()["id"])
    seen, token, pages = [], None, 0
    while True:
        page = events.list(calendarId=cal_id, maxResults=2, singleEvents=True, orderBy="startTime",
                           timeMin="2030-06-10T00:00:00Z", pageToken=token).execute()
        pages += 1
        equal(page["kind"], "calendar#events", "list kind")
        check(len(page["items"]) <= 2, "at most maxResults items")
        seen += [(i["id"], i["summary"]) for i in page["items"]]
        token = page.get("nextPageToken")
        if token is None:
            check("nextSyncToken" in page, "the last page carries nextSyncToken")
            break
    equal(pages, 3, "pages of two over five")
    # timeMin as Google's quickstart writes it: now, with microseconds.
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    upcoming = events.list(calendarId=cal_id, timeMin=now, singleEvents=True, orderBy="startTime").execute()
    equal([i["id"] for i in upcoming["items"]], [seed_id, c["id"], *made], "upcoming events from now")
    equal(seen, [(m, f"Slot {i}") for i, m in enumerate(made)], "paged items")
    log("list with paging and singleEvents")

    # patch (with a current If-Match), then a stale If-Match is 412.
    req = events.patch(calendarId=cal_id, eventId=made[0], body={"summary": "Slot 0 (patched)", "location": "Room 2"})
    first = events.get(calendarId=cal_id, eventId=made[0]).execute()
    req.headers["If-Match"] = first["etag"]
    patched = req.execute()
    equal((patched["summary"], patched["location"], patched["start"]), ("Slot 0 (patched)", "Room 2", first["start"]), "patch")
    check(patched["etag"] != first["etag"], "etag changes on patch")
    stale = events.patch(calendarId=cal_id, eventId=made[0], body={"summary": "stale"})
    stale.headers["If-Match"] = first["etag"]
    expect_error(stale.execute, 412, "conditionNotMet", "stale If-Match")
    # update (PUT) replaces the event, moving it: sequence 1.
    upd = events.update(calendarId=cal_id, eventId=made[1], body={
        "summary": "Slot 1 (updated)",
        "start": {"dateTime": "2030-06-11T10:00:00", "timeZone": "Europe/Rome"},
        "end": {"dateTime": "2030-06-11T11:00:00", "timeZone": "Europe/Rome"},
    }).execute()
    equal((upd["summary"], upd["start"], upd["end"], upd["sequence"]),
          ("Slot 1 (updated)", {"dateTime": "2030-06-11T10:00:00+02:00", "timeZone": "Europe/Rome"},
           {"dateTime": "2030-06-11T11:00:00+02:00", "timeZone": "Europe/Rome"}, 1), "update")
    check("location" not in upd, "update clears what it leaves out")
    # delete: 204, the event is cancelled.
    events.delete(calendarId=cal_id, eventId=made[2], sendUpdates="none").execute()
    equal(events.get(calendarId=cal_id, eventId=made[2]).execute()["status"], "cancelled", "deleted is cancelled")
    log("patch, 412, update, delete")

    # A sync round: full list, a change through the native API, the incremental list.
    full_items, token = [], None
    while True:
        page = events.list(calendarId=cal_id, pageToken=token, maxResults=3).execute()
        full_items += page["items"]
        token = page.get("nextPageToken")
        if token is None:
            sync_token = page["nextSyncToken"]
            break
    check(all(i["status"] != "cancelled" for i in full_items), "the full list hides cancelled events")
    equal(len(full_items), 6, "six live events")
    native(base, key, "PATCH", f"/v1/calendar/events/{as_uuid(made[3])}", {"title": "Slot 3 (native)"})
    changes = events.list(calendarId=cal_id, syncToken=sync_token).execute()
    equal([(i["id"], i["summary"]) for i in changes["items"]], [(made[3], "Slot 3 (native)")], "incremental list")
    sync_token = changes["nextSyncToken"]
    native(base, key, "POST", f"/v1/calendar/events/{as_uuid(made[4])}/cancel", {"reason": "ill"})
    changes = events.list(calendarId=cal_id, syncToken=sync_token).execute()
    equal([(i["id"], i["status"]) for i in changes["items"]], [(made[4], "cancelled")], "a cancel in sync")
    expect_error(lambda: events.list(calendarId=cal_id, syncToken="garbage").execute(), 410, "fullSyncRequired", "garbage sync token")
    log("sync round through the native API")

    # freeBusy over the primary calendar and an unknown one.
    unknown = str(uuid.uuid4())
    fb = service.freebusy().query(body={
        "timeMin": "2030-06-10T00:00:00Z", "timeMax": "2030-06-11T00:00:00Z",
        "items": [{"id": "primary"}, {"id": unknown}]}).execute()
    equal(fb["kind"], "calendar#freeBusy", "freeBusy kind")
    equal((fb["timeMin"], fb["timeMax"]), ("2030-06-10T00:00:00Z", "2030-06-11T00:00:00Z"), "freeBusy window")
    # Slot 0 (07:00Z), slot 3 (10:00Z); slot 1 moved, slot 2 deleted, slot 4 cancelled.
    equal(fb["calendars"]["primary"]["busy"], [
        {"start": "2030-06-10T07:00:00Z", "end": "2030-06-10T07:30:00Z"},
        {"start": "2030-06-10T10:00:00Z", "end": "2030-06-10T10:30:00Z"},
    ], "busy times")
    equal(fb["calendars"][unknown]["errors"], [{"domain": "global", "reason": "notFound"}], "unknown calendar")
    log("freeBusy")

    # A recurring event: weekly at 09:00 in Rome across the spring change (31 March 2030), one
    # date excluded; its instances; one instance moved (an exception); an event over another
    # instance refused; the series deleted.
    lines = ["RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE;TZID=Europe/Rome:20300401T090000"]
    weekly = events.insert(calendarId=cal_id, body={
        "summary": "Weekly review",
        "start": {"dateTime": "2030-03-18T09:00:00", "timeZone": "Europe/Rome"},
        "end": {"dateTime": "2030-03-18T09:30:00", "timeZone": "Europe/Rome"},
        "recurrence": lines,
    }).execute()
    equal((weekly["kind"], weekly["recurrence"], weekly["summary"], weekly["start"]),
          ("calendar#event", lines, "Weekly review",
           {"dateTime": "2030-03-18T09:00:00+01:00", "timeZone": "Europe/Rome"}), "recurring insert")
    check("recurringEventId" not in weekly, "the recurring event is no instance")
    inst = events.instances(calendarId=cal_id, eventId=weekly["id"]).execute()
    equal(inst["kind"], "calendar#events", "instances kind")
    equal([i["start"]["dateTime"] for i in inst["items"]],
          ["2030-03-18T09:00:00+01:00", "2030-03-25T09:00:00+01:00", "2030-04-08T09:00:00+02:00"],
          "instances at 09:00 local on both sides of the change, 1 April excluded")
    equal([i["id"] for i in inst["items"]],
          [f"{weekly['id']}_20300318T080000Z", f"{weekly['id']}_20300325T080000Z", f"{weekly['id']}_20300408T070000Z"],
          "instance ids")
    for i in inst["items"]:
        equal((i["recurringEventId"], i["summary"], i["iCalUID"]),
              (weekly["id"], "Weekly review", weekly["iCalUID"]), "instance fields")
        equal(i["originalStartTime"], {"dateTime": i["start"]["dateTime"], "timeZone": "Europe/Rome"}, "originalStartTime")
    moved = events.patch(calendarId=cal_id, eventId=inst["items"][1]["id"], body={
        "start": {"dateTime": "2030-03-25T11:00:00+01:00"}, "end": {"dateTime": "2030-03-25T11:30:00+01:00"}}).execute()
    equal((moved["id"], moved["recurringEventId"], moved["originalStartTime"]["dateTime"], moved["start"]["dateTime"]),
          (inst["items"][1]["id"], weekly["id"], "2030-03-25T09:00:00+01:00", "2030-03-25T11:00:00+01:00"), "moved instance")
    single = events.list(calendarId=cal_id, singleEvents=True, orderBy="startTime",
                         timeMin="2030-03-17T00:00:00Z", timeMax="2030-04-30T00:00:00Z").execute()
    equal([i["start"]["dateTime"] for i in single["items"]],
          ["2030-03-18T09:00:00+01:00", "2030-03-25T11:00:00+01:00", "2030-04-08T09:00:00+02:00"], "singleEvents list")
    unexpanded = events.list(calendarId=cal_id, timeMin="2030-03-17T00:00:00Z", timeMax="2030-04-30T00:00:00Z").execute()
    equal(sorted(i["id"] for i in unexpanded["items"]), sorted([weekly["id"], moved["id"]]),
          "without singleEvents: the recurring event and its exception")
    clash = {"summary": "Clash", "start": {"dateTime": "2030-04-08T09:15:00+02:00"},
             "end": {"dateTime": "2030-04-08T09:45:00+02:00"}}
    err = expect_error(lambda: events.insert(calendarId=cal_id, body=clash).execute(), 409, "conflict", "over an instance")
    equal(err["conflictingEventId"] is not None, True, "the instance is named")
    events.delete(calendarId=cal_id, eventId=weekly["id"]).execute()
    equal(events.get(calendarId=cal_id, eventId=weekly["id"]).execute()["status"], "cancelled", "series deleted")
    equal(events.instances(calendarId=cal_id, eventId=weekly["id"]).execute()["items"], [], "no live instance left")
    log("a recurring event: insert, instances across DST, an exception, singleEvents, 409, delete")

    # A 404 to a POST, then the next call on the same keep-alive connection still works.
    expect_error(lambda: events.insert(calendarId=str(uuid.uuid4()), body=SEED).execute(), 404, "notFound", "unknown calendar")
    equal(events.get(calendarId=cal_id, eventId=seed_id).execute()["id"], seed_id, "the call after a 404")
    log("a 404 to a POST leaves the connection usable")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO_ROOT, "target", "debug", "quando"))
    ap.add_argument("--postgres-admin-url",
                    help="create a scratch database quando_gclient_<random> through this URL with psql, drop it after")
    args = ap.parse_args()
    scratch = None
    with tempfile.TemporaryDirectory(prefix="quando-gclient-") as workdir:
        if args.postgres_admin_url:
            scratch = f"quando_gclient_{uuid.uuid4().hex[:12]}"
            psql(args.postgres_admin_url, f'CREATE DATABASE "{scratch}"')
            database_url = args.postgres_admin_url.rsplit("/", 1)[0] + f"/{scratch}"
        else:
            database_url = f"sqlite://{os.path.join(workdir, 'gclient.db')}?mode=rwc"
        server = Server(args.binary, database_url, os.path.join(workdir, "server.log"))
        try:
            out = subprocess.run(
                [args.binary, "org", "create", "--name", "google-client", "--database-url", database_url],
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
