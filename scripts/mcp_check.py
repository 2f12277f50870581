#!/usr/bin/env python3
"""Drives Quando's MCP server (`/mcp`) with the official MCP Python SDK (`mcp` from PyPI, run by
scripts/mcp_check.sh, which installs it pinned in a virtualenv).

    python mcp_check.py [--binary target/debug/quando] [--postgres-admin-url URL]

The SDK is used as an agent's code uses it, over Streamable HTTP with the key as a bearer token:

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"})
    async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client: ...
    async with Client(streamable_http_client(...), mode="legacy") as client: ...

once in the SDK's default mode (`mode="auto"`: a `server/discover` probe at the newest protocol
revision, 2026-07-28, stateless; the initialize handshake only if the probe is refused) and once
in its legacy mode (`mode="legacy"`: `initialize` at 2025-11-25, an `Mcp-Session-Id` session, the
GET stream, DELETE at the end). In each mode, on a calendar of its own:

- the connection: the negotiated revision, the server's name and tools capability;
- tools/list: the seven tools by name, each with an object `inputSchema` and `outputSchema`, the
  camelCase arguments and `requestId` required by `book_appointment`;
- a whole call in at most five tool calls: find_available_slots -> book_appointment ->
  find_appointments (the phone in another form than booked) -> reschedule_appointment ->
  cancel_appointment; each `structuredContent` validated against the tool's `outputSchema` and
  compared with the database through the REST API (urllib), each text said for speech;
- a `book_appointment` retried with the same `requestId` and arguments books once and answers the
  same appointment; the same `requestId` with other arguments is refused, naming `requestId`;
- a taken slot: `isError` with `slot_unavailable`, reason `conflict` and next slots that are free;
- a key with `calendar:read` only: read tools answer, every write tool is `insufficient_scope`
  and nothing changes;
- no key (and an unknown key): POST, GET and DELETE /mcp are 401 with the JSON error envelope,
  and the SDK's connection fails in both modes.

Every HTTP exchange of the SDK is recorded (method, MCP headers, status, content type, bodies of
POSTs); on a failure the last ones and the server log's tail are printed.

With --postgres-admin-url it creates a scratch database quando_mcp_<random> with psql and drops it
after; without it, a fresh SQLite database in a temp dir. Exit 0 when all holds.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import REPO_ROOT, Server, psql  # noqa: E402

import anyio  # noqa: E402
import httpx2  # noqa: E402
import jsonschema  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp_types.version import LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION  # noqa: E402

TOOLS = {
    "list_services", "find_available_slots", "hold_slot", "book_appointment",
    "find_appointments", "reschedule_appointment", "cancel_appointment",
}
READ_TOOLS = {"list_services", "find_available_slots", "find_appointments"}
WRITE_TOOLS = TOOLS - READ_TOOLS
ZONE = "Europe/Rome"
ROME = ZoneInfo(ZONE)
CONNECT_TIMEOUT = 60
MODE_TIMEOUT = 300


def log(msg: str) -> None:
    print(f"[mcp-check {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def equal(got, want, what: str) -> None:
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def utc(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def spoken(t: dt.datetime) -> str:
    """As the server says a time: "Tuesday 15 December at 09:30" (Rome)."""
    return t.astimezone(ROME).strftime("%A %-d %B at %H:%M")


def rome(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm, tzinfo=ROME)


def weekdays_ahead(days: int, count: int) -> list[dt.date]:
    """The first `count` Monday-Friday dates at least `days` days after today (Rome)."""
    d = dt.datetime.now(ROME).date() + dt.timedelta(days=days)
    out = []
    while len(out) < count:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


# ---- REST (urllib), the database's view ----


def rest(base: str, key: str, method: str, path: str, body: dict | None = None, want: int = 200) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    if status != want:
        raise AssertionError(f"REST {method} {path}: status {status}, want {want}: {raw[:500]!r}")
    return json.loads(raw) if raw else {}


def raw_http(base: str, method: str, path: str, headers: dict, body: bytes | None = None):
    req = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def rest_event(base: str, key: str, event_id: str) -> dict:
    return rest(base, key, "GET", f"/v1/calendar/events/{event_id}")["data"]


def rest_events(base: str, key: str, **query) -> list[dict]:
    q = urllib.parse.urlencode({"limit": 100, **query})
    return rest(base, key, "GET", f"/v1/calendar/events?{q}")["data"]


def rest_slots(base: str, key: str, event_type: str, calendar: str, day: dt.date) -> list[dict]:
    q = urllib.parse.urlencode({
        "eventTypeId": event_type, "calendarId": calendar, "timezone": ZONE,
        "dateFrom": f"{day.isoformat()}T00:00:00", "dateTo": f"{(day + dt.timedelta(days=1)).isoformat()}T00:00:00",
    })
    return rest(base, key, "GET", f"/v1/calendar/availability?{q}")["data"]["slots"]


# ---- the SDK's HTTP exchanges, recorded ----


class Exchanges:
    """Every request the SDK's httpx2 client sends and what came back (for the checks on the
    transport and for the failure report)."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def client(self, key: str | None) -> httpx2.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(30.0, read=300.0),
            event_hooks={"request": [self._request], "response": [self._response]},
        )

    async def _request(self, req: httpx2.Request) -> None:
        body = req.content.decode(errors="replace") if req.method == "POST" else ""
        self.items.append({
            "method": req.method,
            "sessionId": req.headers.get("mcp-session-id"),
            "protocolVersion": req.headers.get("mcp-protocol-version"),
            "mcpMethod": req.headers.get("mcp-method"),
            "authorization": "Bearer ..." if req.headers.get("authorization") else None,
            "body": body,
            "status": None,
        })

    async def _response(self, resp: httpx2.Response) -> None:
        item = next((i for i in reversed(self.items)
                     if i["status"] is None and i["method"] == resp.request.method), None)
        if item is None:
            return
        item["status"] = resp.status_code
        item["contentType"] = resp.headers.get("content-type")
        item["newSessionId"] = resp.headers.get("mcp-session-id")
        # A POST's answer is one JSON body or a finite SSE stream: read it (the SDK reads it
        # again from the buffer). The GET stream stays open: never read here.
        if resp.request.method in ("POST", "DELETE"):
            await resp.aread()
            item["response"] = resp.text

    def mark(self) -> int:
        return len(self.items)

    def since(self, mark: int) -> list[dict]:
        return self.items[mark:]

    def dump(self, last: int = 25) -> str:
        lines = []
        for i in self.items[-last:]:
            head = (f"{i['method']} /mcp session={i['sessionId']} version={i['protocolVersion']} "
                    f"mcp-method={i['mcpMethod']} auth={i['authorization']}")
            lines.append(f">> {head}\n   {i['body'][:600]}")
            lines.append(f"<< {i['status']} {i.get('contentType')} new-session={i.get('newSessionId')}\n"
                         f"   {(i.get('response') or '')[:800]}")
        return "\n".join(lines)


# ---- the tool calls ----


def leaf(e: BaseException) -> BaseException:
    """The error inside anyio's task-group wrappers."""
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    return e


def tool_text(result) -> str:
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    check(len(texts) == 1 and texts[0].strip(), f"one non-empty text for speech: {result.content!r}")
    return texts[0]


class Agent:
    """One SDK connection: calls a tool, checks its result shape, counts calls."""

    def __init__(self, client: Client, schemas: dict[str, dict]):
        self.client = client
        self.schemas = schemas
        self.calls = 0

    async def call(self, name: str, args: dict):
        self.calls += 1
        with anyio.fail_after(CONNECT_TIMEOUT):
            return await self.client.call_tool(name, args)

    async def ok(self, name: str, args: dict) -> tuple[dict, str]:
        r = await self.call(name, args)
        if r.is_error:
            raise AssertionError(f"{name}({args}) failed: {r.structured_content!r} {r.content!r}")
        sc = r.structured_content
        check(isinstance(sc, dict), f"{name}: structuredContent is an object: {sc!r}")
        try:
            jsonschema.Draft202012Validator(self.schemas[name]).validate(sc)
        except jsonschema.ValidationError as e:
            raise AssertionError(f"{name}: structuredContent does not match its outputSchema: {e.message}") from e
        return sc, tool_text(r)

    async def refused(self, name: str, args: dict, error: str) -> tuple[dict, str]:
        r = await self.call(name, args)
        check(r.is_error is True, f"{name}({args}): isError, got {r!r}")
        sc = r.structured_content
        check(isinstance(sc, dict), f"{name}: an error result carries structuredContent: {r!r}")
        equal(sc.get("error"), error, f"{name}: structuredContent.error ({sc})")
        text = tool_text(r)
        equal(sc.get("message"), text, f"{name}: the error's message is its text")
        return sc, text


def check_appointment(a: dict, ev: dict, what: str) -> None:
    """A tool's appointment against the REST API's event."""
    equal(a["appointmentId"], ev["id"], f"{what}: appointmentId")
    for field in ("calendarId", "eventTypeId", "startTime", "endTime", "status",
                  "customerName", "customerPhone", "customerEmail"):
        equal(a[field], ev[field], f"{what}: {field} against GET /v1/calendar/events/{{id}}")
    start = dt.datetime.fromisoformat(a["startTime"].replace("Z", "+00:00"))
    equal(a["localStartTime"], start.astimezone(ROME).isoformat(), f"{what}: localStartTime")
    equal(a["spoken"], spoken(start), f"{what}: spoken")


# ---- one mode ----


async def connect_checks(client: Client, mode: str, ex: Exchanges, mark: int) -> None:
    first = ex.since(mark)[0]
    if mode == "auto":
        # The default mode probes server/discover at the newest revision first; Quando answers
        # it, so the SDK adopts that revision (stateless: no session, no initialize).
        check('"method":"server/discover"' in first["body"], f"the first request is server/discover: {first}")
        equal(first["status"], 200, "server/discover status")
        equal(client.protocol_version, LATEST_MODERN_VERSION, "negotiated revision (default mode)")
        check(client.session.discover_result is not None, "a DiscoverResult adopted")
        check(client.session.initialize_result is None, "no initialize in the default mode")
        check(LATEST_MODERN_VERSION in client.session.discover_result.supported_versions,
              "supportedVersions names the modern revision")
    else:
        check('"method":"initialize"' in first["body"], f"the first request is initialize: {first}")
        equal(first["status"], 200, "initialize status")
        check(first.get("newSessionId"), f"initialize answers an Mcp-Session-Id: {first}")
        equal(client.protocol_version, LATEST_HANDSHAKE_VERSION, "negotiated revision (legacy mode)")
        check(client.session.initialize_result is not None, "an InitializeResult")
    info = client.server_info
    check(info is not None and info.name == "quando", f"serverInfo: {info!r}")
    check(client.server_capabilities.tools is not None, "the tools capability")


async def list_tools_checks(client: Client) -> dict[str, dict]:
    with anyio.fail_after(CONNECT_TIMEOUT):
        listed = await client.list_tools()
    tools = {t.name: t for t in listed.tools}
    equal(set(tools), TOOLS, "tool names")
    check(listed.next_cursor is None, "one page of tools")
    for name, t in tools.items():
        for kind, schema in (("inputSchema", t.input_schema), ("outputSchema", t.output_schema)):
            check(isinstance(schema, dict) and schema.get("type") == "object",
                  f"{name}: {kind} is an object schema: {schema!r}")
            jsonschema.Draft202012Validator.check_schema(schema)
        check(t.description, f"{name}: a description")
        hint = t.annotations.read_only_hint if t.annotations else None
        equal(hint, name in READ_TOOLS, f"{name}: readOnlyHint")
    book = tools["book_appointment"].input_schema
    for arg in ("eventTypeId", "startTime", "customerName", "customerPhone", "customerEmail", "requestId", "holdId"):
        check(arg in book["properties"], f"book_appointment takes {arg}")
    check({"eventTypeId", "startTime", "customerName", "requestId"} <= set(book.get("required", [])),
          f"book_appointment requires eventTypeId, startTime, customerName, requestId: {book.get('required')}")
    check({"phone", "email", "name"} <= set(tools["find_appointments"].input_schema["properties"]),
          "find_appointments takes phone, email, name")
    check({"appointmentId", "startTime"} <= set(tools["reschedule_appointment"].input_schema.get("required", [])),
          "reschedule_appointment requires appointmentId and startTime")
    check("appointmentId" in tools["cancel_appointment"].input_schema.get("required", []),
          "cancel_appointment requires appointmentId")
    out = tools["book_appointment"].output_schema["properties"]
    check({"appointmentId", "startTime", "endTime", "status", "spoken"} <= set(out),
          f"book_appointment's outputSchema: {sorted(out)}")
    return {name: t.output_schema for name, t in tools.items()}


async def whole_call(agent: Agent, base: str, key: str, cal: str, et: str, day: dt.date,
                     book_phone: str, find_phone: str, e164: str) -> None:
    """find slots -> book -> find by phone -> reschedule -> cancel: five tool calls."""
    start_calls = agent.calls
    # 1. find_available_slots
    slots, say = await agent.ok("find_available_slots",
                                {"eventTypeId": et, "date": day.isoformat(), "timezone": ZONE, "maxSlots": 6})
    equal(slots["timezone"], ZONE, "slots: timezone")
    equal(slots["reason"], None, "slots: no reason when there are slots")
    equal(slots["nextAvailableDays"], [], "slots: no next days when there are slots")
    equal(len(slots["slots"]), 6, "slots: maxSlots")
    want = rest_slots(base, key, et, cal, day)[:6]
    equal([(s["startTime"], s["endTime"]) for s in slots["slots"]],
          [(s["startTime"], s["endTime"]) for s in want], "slots against GET /v1/calendar/availability")
    equal(slots["slots"][0]["startTime"], utc(rome(day, 9)), "the first slot is 09:00 in Rome")
    for s in slots["slots"]:
        equal(s["calendarIds"], [cal], "slot calendarIds")
        start = dt.datetime.fromisoformat(s["startTime"].replace("Z", "+00:00"))
        equal(s["localStartTime"], start.astimezone(ROME).isoformat(), "slot localStartTime")
        equal(s["spoken"], spoken(start), "slot spoken")
        # One day's answer names the day once, then each slot's local clock time.
        day_said, clock = s["spoken"].rsplit(" at ", 1)
        check(day_said in say and clock in say, f"the text says {day_said!r} and {clock!r}: {say!r}")
    pick = slots["slots"][1]  # 09:30

    # 2. book_appointment (phone in one form)
    args = {"eventTypeId": et, "startTime": pick["startTime"], "customerName": "Mario Rossi",
            "customerPhone": book_phone, "customerEmail": "mario.rossi@example.com",
            "notes": "first visit", "requestId": f"call-{uuid.uuid4()}"}
    booked, say = await agent.ok("book_appointment", args)
    ev = rest_event(base, key, booked["appointmentId"])
    check_appointment(booked, ev, "book_appointment")
    equal((ev["status"], ev["startTime"], ev["endTime"], ev["calendarId"], ev["customerPhone"],
           ev["bookedVia"], ev["notes"]),
          ("confirmed", pick["startTime"], pick["endTime"], cal, e164, "mcp", "first visit"), "the booked event (REST)")
    equal(say, f"Booked for {pick['spoken']}.", "book_appointment text")

    # 3. find_appointments by phone, in another form
    found, say = await agent.ok("find_appointments", {"phone": find_phone})
    equal([a["appointmentId"] for a in found["appointments"]], [booked["appointmentId"]],
          f"find_appointments({find_phone!r})")
    check_appointment(found["appointments"][0], ev, "find_appointments")
    by_rest = [e["id"] for e in rest_events(base, key, customerPhone=e164) if e["status"] != "cancelled"]
    equal(by_rest, [booked["appointmentId"]], "GET /v1/calendar/events?customerPhone= agrees")
    check(pick["spoken"] in say, f"find_appointments says the time: {say!r}")

    # 4. reschedule_appointment to 11:00, a local time read in the appointment's zone
    new_start = rome(day, 11)
    moved, say = await agent.ok("reschedule_appointment", {
        "appointmentId": booked["appointmentId"], "startTime": f"{day.isoformat()}T11:00:00"})
    ev = rest_event(base, key, booked["appointmentId"])
    check_appointment(moved, ev, "reschedule_appointment")
    equal((ev["startTime"], ev["endTime"], ev["status"]),
          (utc(new_start), utc(new_start + dt.timedelta(minutes=30)), "confirmed"), "the moved event (REST)")
    equal(say, f"Moved to {spoken(new_start)}.", "reschedule_appointment text")

    # 5. cancel_appointment
    cancelled, say = await agent.ok("cancel_appointment",
                                    {"appointmentId": booked["appointmentId"], "reason": "the caller is ill"})
    ev = rest_event(base, key, booked["appointmentId"])
    check_appointment(cancelled, ev, "cancel_appointment")
    equal((ev["status"], ev["cancellationReason"]), ("cancelled", "the caller is ill"), "the cancelled event (REST)")
    check(ev["cancelledAt"] is not None, "cancelledAt set")
    equal(say, f"The appointment of {spoken(new_start)} is cancelled.", "cancel_appointment text")
    # Its time is free again.
    check(utc(new_start) in [s["startTime"] for s in rest_slots(base, key, et, cal, day)], "11:00 free again")

    calls = agent.calls - start_calls
    check(calls <= 5, f"the whole call took {calls} tool calls")
    log(f"  a whole call in {calls} tool calls: slots, booked {pick['spoken']} as {book_phone!r}, "
        f"found by {find_phone!r}, moved to 11:00, cancelled; each checked through REST")


async def retry_and_refusal(agent: Agent, base: str, key: str, cal: str, et: str, day: dt.date) -> None:
    # A retry with the same requestId and arguments books once.
    at = rome(day, 12)
    args = {"eventTypeId": et, "startTime": utc(at), "customerName": "Anna Bianchi",
            "customerPhone": "+39 347 123 4567", "requestId": f"retry-{uuid.uuid4()}"}
    first, _ = await agent.ok("book_appointment", args)
    again, say = await agent.ok("book_appointment", dict(args))
    equal(again, first, "the retry answers the same appointment")
    equal(say, f"Booked for {spoken(at)} (already done).", "the retry's text")
    same_time = [e for e in rest_events(base, key, calendarId=cal) if e["startTime"] == utc(at)]
    equal([e["id"] for e in same_time], [first["appointmentId"]], "one event at 12:00 after the retry (REST)")
    # The same requestId with other arguments is refused, naming requestId.
    other = dict(args, startTime=utc(rome(day, 12, 30)))
    err, _ = await agent.refused("book_appointment", other, "invalid_arguments")
    equal([f["field"] for f in err["fields"]], ["requestId"], "the refused field")
    check(all(e["startTime"] != utc(rome(day, 12, 30)) for e in rest_events(base, key, calendarId=cal)),
          "nothing booked at 12:30")
    log("  a retried book_appointment with the same requestId booked once; other arguments refused")

    # A taken slot: its reason and the next free slots.
    err, say = await agent.refused("book_appointment", dict(args, requestId=f"taken-{uuid.uuid4()}",
                                                            customerName="Carlo Verdi"), "slot_unavailable")
    equal(err["reason"], "conflict", "the refusal's reason")
    nxt = err["nextSlots"]
    check(len(nxt) > 0, "next slots offered")
    free = {s["startTime"] for s in rest_slots(base, key, et, cal, day)}
    for s in nxt:
        check(s["startTime"] != utc(at), "the taken slot is not offered")
        start = dt.datetime.fromisoformat(s["startTime"].replace("Z", "+00:00"))
        if start.astimezone(ROME).date() == day:
            check(s["startTime"] in free, f"a next slot {s['startTime']} is free (REST availability)")
        equal(s["spoken"], spoken(start), "next slot spoken")
        check(s["spoken"] in say, f"the text offers {s['spoken']}: {say!r}")
    check("already taken" in say, f"the text says why: {say!r}")
    same_time = [e for e in rest_events(base, key, calendarId=cal) if e["startTime"] == utc(at)]
    equal(len(same_time), 1, "still one event at 12:00 (REST)")
    log(f"  a taken slot: slot_unavailable/conflict with {len(nxt)} next slots, first {nxt[0]['spoken']}")


async def read_only_checks(agent: Agent, base: str, key: str, cal: str, et: str, day: dt.date) -> None:
    # A live appointment to aim the write tools at (made with the full key, through REST).
    target = rest(base, key, "POST", "/v1/calendar/events", {
        "calendarId": cal, "eventTypeId": et, "startTime": utc(rome(day, 14)), "endTime": utc(rome(day, 14, 30)),
        "customerName": "Read Only", "title": "read-only target"}, want=201)["data"]
    before = sorted((e["id"], e["status"], e["startTime"]) for e in rest_events(base, key, calendarId=cal))
    sc, _ = await agent.ok("list_services", {})
    check(et in [s["eventTypeId"] for s in sc["services"]], "the read-only key lists the service")
    sc, _ = await agent.ok("find_available_slots", {"eventTypeId": et, "date": day.isoformat()})
    check(len(sc["slots"]) > 0, "the read-only key finds slots")
    sc, _ = await agent.ok("find_appointments", {"name": "Read Only"})
    equal([a["appointmentId"] for a in sc["appointments"]], [target["id"]], "the read-only key finds by name")
    writes = {
        "hold_slot": {"eventTypeId": et, "startTime": utc(rome(day, 15))},
        "book_appointment": {"eventTypeId": et, "startTime": utc(rome(day, 15)), "customerName": "Nobody",
                             "requestId": f"ro-{uuid.uuid4()}"},
        "reschedule_appointment": {"appointmentId": target["id"], "startTime": utc(rome(day, 16))},
        "cancel_appointment": {"appointmentId": target["id"], "reason": "not allowed"},
    }
    equal(set(writes), WRITE_TOOLS, "every write tool tried")
    for name, args in writes.items():
        err, _ = await agent.refused(name, args, "insufficient_scope")
        equal(err.get("scope"), "calendar:write", f"{name}: the missing scope")
    after = sorted((e["id"], e["status"], e["startTime"]) for e in rest_events(base, key, calendarId=cal))
    equal(after, before, "nothing changed for the read-only key (REST)")
    rest(base, key, "POST", f"/v1/calendar/events/{target['id']}/cancel", {"reason": "cleanup"})
    log("  a calendar:read key: read tools answer, hold/book/reschedule/cancel are insufficient_scope")


async def run_mode(mode: str, base: str, key: str, ro_key: str, cal: str, et: str,
                   day: dt.date, phones: tuple[str, str, str], ex: Exchanges) -> None:
    url = f"{base}/mcp"
    kwargs = {} if mode == "auto" else {"mode": "legacy"}
    mark = ex.mark()
    async with ex.client(key) as http, Client(streamable_http_client(url, http_client=http), **kwargs) as client:
        await connect_checks(client, mode, ex, mark)
        schemas = await list_tools_checks(client)
        log(f"  connected at {client.protocol_version} ({'server/discover' if mode == 'auto' else 'initialize'}),"
            f" {len(schemas)} tools with input and output schemas")
        agent = Agent(client, schemas)
        sc, say = await agent.ok("list_services", {})
        mine = [s for s in sc["services"] if s["eventTypeId"] == et]
        equal(len(mine), 1, "list_services lists the event type")
        equal((mine[0]["durationMinutes"], mine[0]["assignment"], mine[0]["calendars"]),
              (30, "single", [{"calendarId": cal, "name": f"Studio Rossi ({mode})", "timezone": ZONE}]),
              "the service")
        await whole_call(agent, base, key, cal, et, day, *phones)
        await retry_and_refusal(agent, base, key, cal, et, day)
    mine = ex.since(mark)
    session = mine[0].get("newSessionId")
    kinds = sorted({(i["method"], i["status"], (i.get("contentType") or "").split(";")[0]) for i in mine},
                   key=lambda k: (k[0], k[1] or 0, k[2]))
    log(f"  HTTP as seen by the SDK: {kinds}")
    if mode == "auto":
        check(all(i["sessionId"] is None for i in mine), "no Mcp-Session-Id in the default mode")
        check(all(i["protocolVersion"] == LATEST_MODERN_VERSION for i in mine), "every request at the modern revision")
    else:
        check(all(i["sessionId"] == session for i in mine[1:]), "every later request carries the session")
        gets = [i for i in mine if i["method"] == "GET"]
        check(gets and gets[0]["status"] == 200 and gets[0]["contentType"].startswith("text/event-stream"),
              f"GET /mcp opens the server's SSE stream: {gets}")
        deletes = [i for i in mine if i["method"] == "DELETE"]
        check(len(deletes) == 1 and deletes[0]["status"] in (200, 202, 204),
              f"DELETE /mcp ends the session: {deletes}")
        # The session is gone: a request in it is refused.
        st, _, body = raw_http(base, "POST", "/mcp", {
            "Authorization": f"Bearer {key}", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream", "Mcp-Session-Id": session,
            "Mcp-Protocol-Version": LATEST_HANDSHAKE_VERSION,
        }, json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}).encode())
        equal(st, 404, f"a request in the deleted session ({body[:200]!r})")
        log(f"  session {session}: GET stream {gets[0]['status']}, DELETE {deletes[0]['status']} (the SDK logs "
            f"'Session termination failed' for anything but 200/204), then a request in it is 404")

    # The read-only key, in the same mode.
    async with ex.client(ro_key) as http, Client(streamable_http_client(url, http_client=http), **kwargs) as client:
        schemas = await list_tools_checks(client)
        await read_only_checks(Agent(client, schemas), base, key, cal, et, day)


async def no_key_checks(base: str, ex: Exchanges) -> None:
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": LATEST_HANDSHAKE_VERSION, "capabilities": {},
        "clientInfo": {"name": "mcp-check", "version": "1"}}}).encode()
    base_headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    for auth in (None, "Bearer qnd_live_notakey0000000000000000000000000000000"):
        headers = dict(base_headers, **({"Authorization": auth} if auth else {}))
        for method, body in (("POST", init), ("GET", None), ("DELETE", None)):
            st, hdrs, raw = raw_http(base, method, "/mcp", headers, body)
            what = f"{method} /mcp {'with an unknown key' if auth else 'without a key'}"
            equal(st, 401, what)
            check(hdrs.get("content-type", "").startswith("application/json"), f"{what}: JSON ({hdrs})")
            env = json.loads(raw)
            equal(env["error"]["code"], "unauthorized", f"{what}: error code")
            check(env["error"]["message"] and env.get("requestId"), f"{what}: envelope {env}")
    # The SDK without a key, in both modes: the connection fails (no hang, no session).
    for kwargs in ({}, {"mode": "legacy"}):
        mark = ex.mark()
        async with ex.client(None) as http:
            try:
                with anyio.fail_after(CONNECT_TIMEOUT):
                    async with Client(streamable_http_client(f"{base}/mcp", http_client=http), **kwargs):
                        pass
            except Exception as e:  # noqa: BLE001 (any error: the point is that it does not connect)
                err = e
            else:
                raise AssertionError(f"the SDK connected without a key ({kwargs or 'default mode'})")
        statuses = [i["status"] for i in ex.since(mark)]
        check(statuses and all(s == 401 for s in statuses), f"every answer 401 without a key: {statuses}")
        err = leaf(err)
        log(f"  no key, {kwargs.get('mode', 'default')} mode: HTTP {statuses}, the SDK raises "
            f"{type(err).__name__}: {err}")
    log("no key and an unknown key: POST/GET/DELETE /mcp are 401 unauthorized (JSON envelope)")


async def drive(base: str, key: str, ro_key: str, ex: Exchanges) -> None:
    # The default mode is the one connected without a `mode` argument: "auto" in this SDK.
    equal({f.name: f.default for f in dataclasses.fields(Client)}["mode"], "auto", "the SDK's default mode")
    await no_key_checks(base, ex)
    days = weekdays_ahead(14, 2)
    phones = {
        # (booked as, looked up as, E.164)
        "auto": ("+39 06 1234 5678", "0039 06 1234 5678", "+390612345678"),
        "legacy": ("0039 06 8765 4321", "plus three nine zero six eight seven six five four three two one",
                   "+390687654321"),
    }
    every_day = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    for mode, day in zip(("auto", "legacy"), days):
        cal = rest(base, key, "POST", "/v1/calendar/calendars", {
            "name": f"Studio Rossi ({mode})", "timezone": ZONE,
            "workingHours": [{"day": d, "start": "09:00", "end": "17:00"} for d in every_day]}, want=201)["data"]["id"]
        et = rest(base, key, "POST", "/v1/calendar/event-types",
                  {"calendarId": cal, "name": f"Visita ({mode})", "durationMinutes": 30}, want=201)["data"]["id"]
        title = "default mode (server/discover first)" if mode == "auto" else "legacy mode (initialize)"
        log(f"{title}: calendar {cal}, event type {et}, {day.strftime('%A')} {day}")
        t0 = time.monotonic()
        with anyio.fail_after(MODE_TIMEOUT):
            await run_mode(mode, base, key, ro_key, cal, et, day, phones[mode], ex)
        log(f"{title}: passed in {time.monotonic() - t0:.1f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO_ROOT, "target", "debug", "quando"))
    ap.add_argument("--postgres-admin-url",
                    help="create a scratch database quando_mcp_<random> through this URL with psql, drop it after")
    args = ap.parse_args()
    scratch = None
    failure = None
    ex = Exchanges()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="quando-mcp-") as workdir:
        if args.postgres_admin_url:
            scratch = f"quando_mcp_{uuid.uuid4().hex[:12]}"
            psql(args.postgres_admin_url, f'CREATE DATABASE "{scratch}"')
            database_url = args.postgres_admin_url.rsplit("/", 1)[0] + f"/{scratch}"
        else:
            database_url = f"sqlite://{os.path.join(workdir, 'mcp.db')}?mode=rwc"
        server = Server(args.binary, database_url, os.path.join(workdir, "server.log"))
        try:
            cli = [args.binary]
            out = subprocess.run(cli + ["org", "create", "--name", "mcp-check", "--database-url", database_url],
                                 check=True, capture_output=True, text=True)
            org = json.loads(out.stdout)
            key = org["apiKey"]["key"]
            out = subprocess.run(cli + ["key", "create", "--org", org["organization"]["id"],
                                        "--scopes", "calendar:read", "--name", "read-only agent",
                                        "--database-url", database_url],
                                 check=True, capture_output=True, text=True)
            ro = json.loads(out.stdout)
            equal(ro["scopes"], ["calendar:read"], "the read-only key's scopes")
            ro_key = ro["key"]
            server.start()
            log(f"server {server.base} on {'PostgreSQL' if scratch else 'SQLite'}")
            try:
                asyncio.run(drive(server.base, key, ro_key, ex))
            except Exception as e:  # noqa: BLE001 (reported below, with the exchanges and the log)
                traceback.print_exc()
                log("the SDK's last HTTP exchanges:\n" + ex.dump())
                log("server log tail:\n" + server.log_tail(40))
                failure = leaf(e)
        finally:
            server.stop()
            if scratch:
                psql(args.postgres_admin_url, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    if failure is not None:
        log(f"FAILED on {'PostgreSQL' if scratch else 'SQLite'}: {type(failure).__name__}: {failure}")
        return 1
    log(f"passed in {time.monotonic() - t0:.1f} s ({len(ex.items)} HTTP requests from the SDK)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
