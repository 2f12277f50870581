#!/usr/bin/env python3
"""Drives a real Quando server with the Python client that openapi-python-client generated from
openapi.yaml (run by scripts/generated_clients.sh, which generates the client and puts it on
PYTHONPATH; the client's own dependencies, httpx and attrs, come with the generator).

    python generated_clients.py --package quando_client [--binary target/debug/quando]

With the GENERATED client only (no hand-written HTTP): create a calendar and an event type, book
an event, list the events, read the event back, and refuse a second booking of the same time with
a typed `ErrorEnvelope` (409 `slot_unavailable`). Every value is compared with what was sent.
Exit 0 when all holds, 1 otherwise. The server runs on a free port with a fresh SQLite database
in a temp dir and is always stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import REPO_ROOT, Server  # noqa: E402

START = dt.datetime(2030, 1, 7, 10, 0, tzinfo=dt.timezone.utc)
END = START + dt.timedelta(minutes=30)


def log(msg: str) -> None:
    print(f"[generated-clients] {msg}", flush=True)


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def run(args: argparse.Namespace, workdir: str) -> None:
    pkg = args.package
    client_mod = importlib.import_module(pkg)
    models = importlib.import_module(f"{pkg}.models")
    create_calendar = importlib.import_module(f"{pkg}.api.calendars.create_calendar")
    create_event_type = importlib.import_module(f"{pkg}.api.event_types.create_event_type")
    create_event = importlib.import_module(f"{pkg}.api.events.create_event")
    list_events = importlib.import_module(f"{pkg}.api.events.list_events")
    get_event = importlib.import_module(f"{pkg}.api.events.get_event")

    database_url = f"sqlite://{os.path.join(workdir, 'clients.db')}?mode=rwc"
    out = subprocess.run(
        [args.binary, "org", "create", "--name", "generated-clients", "--database-url", database_url],
        check=True,
        capture_output=True,
        text=True,
    )
    key = json.loads(out.stdout)["apiKey"]["key"]

    server = Server(args.binary, database_url, os.path.join(workdir, "server.log"))
    server.start()
    try:
        log(f"server {server.base}")
        client = client_mod.AuthenticatedClient(base_url=server.base, token=key, raise_on_unexpected_status=True)
        with client:
            drive(client, models, create_calendar, create_event_type, create_event, list_events, get_event)
    except Exception:
        log("server log tail:\n" + server.log_tail(30))
        raise
    finally:
        server.stop()


def drive(client, models, create_calendar, create_event_type, create_event, list_events, get_event) -> None:
    # A calendar open around the clock (no working hours) in Rome.
    resp = create_calendar.sync_detailed(
        client=client,
        body=models.CalendarIn(name="Studio Bianchi", timezone="Europe/Rome", description="generated client"),
        idempotency_key=f"cal-{uuid.uuid4()}",
    )
    check(resp.status_code == 201, f"createCalendar: {resp.status_code} {resp.content!r}")
    calendar = resp.parsed
    check(isinstance(calendar, models.CalendarEnvelope), f"createCalendar parsed as {type(calendar)}")
    check(calendar.data.name == "Studio Bianchi", f"calendar name {calendar.data.name!r}")
    check(calendar.data.timezone == "Europe/Rome", f"calendar timezone {calendar.data.timezone!r}")
    check(bool(calendar.request_id), "calendar envelope without requestId")
    calendar_id = calendar.data.id
    log(f"calendar {calendar_id}")

    resp = create_event_type.sync_detailed(
        client=client,
        body=models.EventTypeIn(name="30-min demo", duration_minutes=30, calendar_id=calendar_id),
    )
    check(resp.status_code == 201, f"createEventType: {resp.status_code} {resp.content!r}")
    event_type = resp.parsed
    check(isinstance(event_type, models.EventTypeEnvelope), f"createEventType parsed as {type(event_type)}")
    check(event_type.data.duration_minutes == 30, f"durationMinutes {event_type.data.duration_minutes}")
    check(event_type.data.calendar_id == calendar_id, f"event type calendarId {event_type.data.calendar_id}")
    event_type_id = event_type.data.id
    log(f"event type {event_type_id}")

    booking = models.EventIn(
        calendar_id=calendar_id,
        event_type_id=event_type_id,
        start_time=START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end_time=END.strftime("%Y-%m-%dT%H:%M:%SZ"),
        timezone="Europe/Rome",
        customer_name="Laura Bianchi",
        customer_email="laura.bianchi@example.com",
        customer_phone="+39 (06) 123-456.78",
        title="Demo Prodotto",
    )
    resp = create_event.sync_detailed(client=client, body=booking, idempotency_key=f"book-{uuid.uuid4()}")
    check(resp.status_code == 201, f"createEvent: {resp.status_code} {resp.content!r}")
    created = resp.parsed
    check(isinstance(created, models.EventEnvelope), f"createEvent parsed as {type(created)}")
    event = created.data
    check(event.calendar_id == calendar_id and event.event_type_id == event_type_id, "event ids")
    check(event.start_time == START and event.end_time == END, f"event times {event.start_time} {event.end_time}")
    check(event.timezone == "Europe/Rome", f"event timezone {event.timezone!r}")
    check(event.customer_phone == "+390612345678", f"customerPhone {event.customer_phone!r}")
    check(event.customer_email == "laura.bianchi@example.com", f"customerEmail {event.customer_email!r}")
    check(event.title == "Demo Prodotto", f"title {event.title!r}")
    check(event.status == models.EventStatus.CONFIRMED, f"status {event.status!r}")
    check(event.notes is None and event.cancelled_at is None, "absent fields must be null")
    log(f"event {event.id}")

    resp = list_events.sync_detailed(client=client, calendar_id=calendar_id, page=1, limit=10)
    check(resp.status_code == 200, f"listEvents: {resp.status_code} {resp.content!r}")
    listed = resp.parsed
    check(isinstance(listed, models.EventList), f"listEvents parsed as {type(listed)}")
    check([e.id for e in listed.data] == [event.id], f"listed ids {[e.id for e in listed.data]}")
    check(listed.pagination.total == 1 and listed.pagination.total_pages == 1, f"pagination {listed.pagination}")
    check(listed.data[0].start_time == START, "listed startTime")

    resp = get_event.sync_detailed(event.id, client=client)
    check(resp.status_code == 200, f"getEvent: {resp.status_code} {resp.content!r}")
    read = resp.parsed
    check(isinstance(read, models.EventEnvelope), f"getEvent parsed as {type(read)}")
    for field in ("id", "calendar_id", "event_type_id", "start_time", "end_time", "timezone", "customer_name",
                  "customer_phone", "customer_email", "title", "status", "booked_via", "created_at"):
        check(getattr(read.data, field) == getattr(event, field), f"read back {field}: {getattr(read.data, field)!r}")

    # The same time again: the declared 409 comes back as the typed error envelope.
    resp = create_event.sync_detailed(client=client, body=booking, idempotency_key=f"book-{uuid.uuid4()}")
    check(resp.status_code == 409, f"second booking: {resp.status_code} {resp.content!r}")
    refused = resp.parsed
    check(isinstance(refused, models.ErrorEnvelope), f"409 parsed as {type(refused)}")
    check(refused.error.code == models.ErrorCode.SLOT_UNAVAILABLE, f"409 code {refused.error.code!r}")
    check(bool(refused.request_id), "error envelope without requestId")

    # An unknown id: the declared 404, typed.
    resp = get_event.sync_detailed(uuid.uuid4(), client=client)
    check(resp.status_code == 404, f"getEvent unknown: {resp.status_code} {resp.content!r}")
    check(isinstance(resp.parsed, models.ErrorEnvelope), f"404 parsed as {type(resp.parsed)}")
    check(resp.parsed.error.code == models.ErrorCode.NOT_FOUND, f"404 code {resp.parsed.error.code!r}")
    log("generated Python client: calendar, event type, booking, list, read, 409 and 404 all as sent")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", required=True, help="the generated client's package name")
    parser.add_argument("--binary", default=os.path.join(REPO_ROOT, "target", "debug", "quando"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="quando-clients-") as workdir:
        try:
            run(args, workdir)
        except AssertionError as e:
            log(f"FAILED: {e}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
