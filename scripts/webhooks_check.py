#!/usr/bin/env python3
"""Webhooks against a real Quando server, received and verified with the official Standard
Webhooks library (standardwebhooks, run by scripts/webhooks_check.sh, which installs it pinned in
a virtualenv).

    python webhooks_check.py [--binary target/debug/quando] [--postgres-admin-url URL]

The receivers are this script's own threaded http.server instances on 127.0.0.1. Every request
they get is checked with `standardwebhooks.webhooks.Webhook(secret).verify(body, headers)`; one
that does not verify is answered 400 and recorded as a failure. A receiver's mode is switched
while it runs: down (nothing listening on its port), 500, slow (answers 200 after 12 s, past the
server's 10 s limit) or healthy (200). Only requests answered 2xx in healthy mode enter its
healthy log, where each webhook-id must appear exactly once.

What is shown (issue 13), on SQLite and on PostgreSQL:

  faults    An endpoint whose receiver is down; nine changes on three events (created,
            rescheduled, updated, cancelled). Each event's first message meets the faults in
            turn, the mode switched once the delivery log shows each attempt: attempt 1 down
            (lastError: connection refused), attempt 2 at +5 s answered 500 (responseStatus 500),
            attempt 3 at +30 s slow (no answer within the limit, latency ~10 s), attempt 4 at
            +2 min healthy. Then: every message of the log is in the healthy log exactly once,
            per event in the order of the changes (arrival order and body timestamps), each
            verified, kinds right, `previous` with the old times on the reschedule, and the log
            says succeeded with the attempts the faults made. About 3 minutes; it runs on a
            server and database of its own beside the other checks.
  ssrf      A server WITHOUT --webhook-allow-private refuses loopback, private, link-local,
            IPv4-mapped and localhost receivers (and plain http) with 400 validation_error naming
            field `url`, and takes https://example.com/hook (201; deleted at once, nothing is
            ever sent there).
  ping      POST /v1/webhooks/{id}/test: a `ping` arrives, verified, and the log says succeeded.
  rotation  After rotate-secret, a delivery carries two signatures: it verifies with the new
            secret and with the old one, each signature by itself with one of them.
  kill -9   The receiver answering 500, 20 bookings (each 201) made by four threads, the server
            killed with SIGKILL right after the last 201; the receiver healthy, the server
            restarted on the same database: every booking's appointment.created arrives,
            verified, once.
  two instances (PostgreSQL only)  Two servers on one database, 60 bookings spread over both
            ports and 30 of them rescheduled through the other one: each of the 90 messages
            arrives exactly once (one attempt each), created before rescheduled, and each
            server delivered at least a quarter (their logs' `webhook delivered` lines add up
            to 90): a server's own bookings wake its worker.

With --postgres-admin-url it creates scratch databases quando_whcheck_<random> (and
..._faults) with psql and drops them after; without it, fresh SQLite files in a temp dir. Exit 0
when all holds; otherwise the failure and the servers' log tails.
"""

from __future__ import annotations

import argparse
import base64
import collections
import http.server
import ipaddress
import json
import os
import secrets as pysecrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import REPO_ROOT, Server, api, free_port, psql, with_db_name  # noqa: E402

from standardwebhooks.webhooks import Webhook, WebhookVerificationError  # noqa: E402

KINDS_ORDER = ["appointment.created", "appointment.rescheduled", "appointment.updated", "appointment.cancelled"]
SLOW_SECONDS = 12.0
BACKEND = "?"


def log(scenario: str, msg: str) -> None:
    print(f"[webhooks {BACKEND} {scenario:<9} {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class CheckFailed(Exception):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


def equal(got, want, what: str) -> None:
    if got != want:
        raise CheckFailed(f"{what}: got {got!r}, want {want!r}")


ABORT = threading.Event()
RECEIVERS: list["Receiver"] = []  # open receivers: a delivery that does not verify fails any wait at once


def wait_for(cond, timeout: float, what: str, interval: float = 0.2):
    """Polls cond() until it answers something true; fails after timeout (or when another check
    failed meanwhile)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if ABORT.is_set():
            raise CheckFailed(f"{what}: stopped, another check failed")
        for rx in list(RECEIVERS):
            rx.assert_no_failures()
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise CheckFailed(f"{what}: not within {timeout:.0f} s")


def call(base: str, key: str, method: str, path: str, body: dict | None, want: int, what: str):
    st, got = api(base, key, method, path, body)
    if st != want:
        raise CheckFailed(f"{what}: {method} {path} {json.dumps(body) if body else ''} -> {st} {got}")
    return got


# --------------------------------------------------------------------------------------------
# The server, with --webhook-allow-private or without
# --------------------------------------------------------------------------------------------


class Quando(Server):
    def __init__(self, binary: str, database_url: str, log_path: str, allow_private: bool):
        super().__init__(binary, database_url, log_path)
        self.allow_private = allow_private

    def start(self) -> None:
        """Server.start, with the flag given or not (the same environment otherwise)."""
        self.port = free_port()
        env = dict(os.environ)
        env["QUANDO_RATE_LIMIT_PER_MINUTE"] = "1000000"
        # The worker's "webhook delivered" lines (debug) tell which server sent what.
        env["QUANDO_LOG"] = env.get("QUANDO_LOG", "info") + ",quando_api::delivery=debug"
        for name in ("QUANDO_BIND", "QUANDO_DATABASE_URL", "QUANDO_WEBHOOK_ALLOW_PRIVATE"):
            env.pop(name, None)
        cmd = [self.binary, "serve", "--bind", f"127.0.0.1:{self.port}", "--database-url", self.database_url]
        if self.allow_private:
            cmd.append("--webhook-allow-private")
        with open(self.log_path, "ab") as logf:
            logf.write(f"\n===== start on port {self.port} at {time.strftime('%H:%M:%S')} =====\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.wait_ready()


def org_key(binary: str, database_url: str, name: str) -> str:
    out = subprocess.run([binary, "org", "create", "--name", name, "--database-url", database_url],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["apiKey"]["key"]


# --------------------------------------------------------------------------------------------
# The receiver
# --------------------------------------------------------------------------------------------


class Received:
    def __init__(self, seq: int, mode: str, arrived: float, body: bytes, headers: dict[str, str]):
        self.seq = seq
        self.mode = mode
        self.arrived = arrived
        self.body = body
        self.headers = headers
        self.payload: dict | None = None

    @property
    def msg_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def signatures(self) -> list[str]:
        return self.headers.get("webhook-signature", "").split()


class Receiver:
    """A Standard Webhooks receiver on 127.0.0.1:port whose mode can be switched."""

    def __init__(self, name: str):
        self.name = name
        # While down the port stays bound but not listening: a connection is refused, and no other
        # process (a server started meanwhile on a "free" port) can take it.
        self.reserved: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.reserved.bind(("127.0.0.1", 0))
        self.port = self.reserved.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.secret: str | None = None
        self.lock = threading.Lock()
        self.mode = "down"
        self.seq = 0
        self.healthy: list[Received] = []   # answered 2xx
        self.faulted: list[Received] = []   # answered 500, or too late (slow)
        self.failures: list[str] = []       # did not verify, or malformed
        self.httpd: http.server.ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        RECEIVERS.append(self)

    def set_mode(self, mode: str) -> None:
        assert mode in ("down", "500", "slow", "healthy")
        if mode == "down":
            self._close()
        elif self.httpd is None:
            self._listen()
        with self.lock:
            self.mode = mode

    def _listen(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                receiver.handle(self)

        if self.reserved is not None:
            self.reserved.close()
            self.reserved = None
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        self.httpd = httpd
        self.thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _close(self, reserve: bool = True) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        if reserve and self.reserved is None:
            self.reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.reserved.bind(("127.0.0.1", self.port))

    def handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length)
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self.lock:
            self.seq += 1
            rec = Received(self.seq, self.mode, arrived, body, headers)
            secret = self.secret
        problem = None
        try:
            if secret is None:
                raise WebhookVerificationError("no secret known yet")
            rec.payload = Webhook(secret).verify(body, headers)
            if rec.payload.get("id") != rec.msg_id:
                problem = f"body id {rec.payload.get('id')!r} is not the webhook-id {rec.msg_id!r}"
        except (WebhookVerificationError, ValueError) as e:
            problem = f"did not verify ({type(e).__name__}: {e})"
        if problem:
            with self.lock:
                self.failures.append(f"{self.name}: {h.command} {h.path} webhook-id={rec.msg_id!r} "
                                     f"signature={headers.get('webhook-signature')!r}: {problem}; body {body[:300]!r}")
            self._answer(h, 400)
            return
        if rec.mode == "500":
            with self.lock:
                self.faulted.append(rec)
            self._answer(h, 500)
            return
        if rec.mode == "slow":
            with self.lock:
                self.faulted.append(rec)
            time.sleep(SLOW_SECONDS)
            self._answer(h, 200)  # the sender gave up at 10 s: never counted as delivered
            return
        if self._answer(h, 200):
            with self.lock:
                self.healthy.append(rec)

    @staticmethod
    def _answer(h: http.server.BaseHTTPRequestHandler, status: int) -> bool:
        try:
            payload = b"ok" if status == 200 else b"no"
            h.send_response(status)
            h.send_header("Content-Type", "text/plain")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            h.wfile.flush()
            return True
        except OSError:
            return False

    def snapshot(self) -> tuple[list[Received], list[Received], list[str]]:
        with self.lock:
            return list(self.healthy), list(self.faulted), list(self.failures)

    def healthy_ids(self) -> collections.Counter:
        with self.lock:
            return collections.Counter(r.msg_id for r in self.healthy)

    def assert_no_failures(self) -> None:
        _, _, failures = self.snapshot()
        check(not failures, f"{self.name}: {len(failures)} deliveries did not verify:\n  " + "\n  ".join(failures[:10]))

    def close(self) -> None:
        if self in RECEIVERS:
            RECEIVERS.remove(self)
        self._close(reserve=False)
        if self.reserved is not None:
            self.reserved.close()
            self.reserved = None


# --------------------------------------------------------------------------------------------
# Booking and webhook helpers
# --------------------------------------------------------------------------------------------


def iso(minutes_from_base: int) -> str:
    """A time in 2027 (always in the future): 2027-03-01T00:00Z plus minutes."""
    t = time.gmtime(1803859200 + minutes_from_base * 60)  # 2027-03-01T00:00:00Z
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", t)


class Booker:
    def __init__(self, base: str, key: str, name: str):
        self.base = base
        self.key = key
        cal = call(base, key, "POST", "/v1/calendar/calendars", {"name": name, "timezone": "UTC"}, 201, "create calendar")
        self.calendar_id = cal["data"]["id"]
        et = call(base, key, "POST", "/v1/calendar/event-types",
                  {"name": f"{name} 30", "durationMinutes": 30, "calendarId": self.calendar_id}, 201, "create event type")
        self.event_type_id = et["data"]["id"]

    def book(self, slot: int, base: str | None = None) -> dict:
        body = {"calendarId": self.calendar_id, "eventTypeId": self.event_type_id,
                "startTime": iso(slot * 30), "endTime": iso(slot * 30 + 30), "timezone": "UTC",
                "customerName": f"Webhook check {slot}", "customerEmail": f"wh.{slot}@example.com",
                "title": f"slot {slot}"}
        return call(base or self.base, self.key, "POST", "/v1/calendar/events", body, 201, f"book slot {slot}")["data"]

    def reschedule(self, event_id: str, slot: int, base: str | None = None) -> dict:
        return call(base or self.base, self.key, "PATCH", f"/v1/calendar/events/{event_id}",
                    {"startTime": iso(slot * 30), "endTime": iso(slot * 30 + 30)}, 200, "reschedule")["data"]

    def retitle(self, event_id: str, title: str) -> dict:
        return call(self.base, self.key, "PATCH", f"/v1/calendar/events/{event_id}", {"title": title}, 200, "retitle")["data"]

    def cancel(self, event_id: str) -> dict:
        return call(self.base, self.key, "POST", f"/v1/calendar/events/{event_id}/cancel",
                    {"reason": "webhook check"}, 200, "cancel")["data"]


def create_endpoint(base: str, key: str, url: str, receiver: Receiver | None = None) -> tuple[str, str]:
    got = call(base, key, "POST", "/v1/webhooks", {"url": url, "description": "webhooks_check"}, 201, "create endpoint")
    d = got["data"]
    check(isinstance(d.get("secret"), str) and d["secret"].startswith("whsec_"), f"a whsec_ secret is shown: {d}")
    equal(d["url"], url, "endpoint url")
    equal(d["events"], [], "an endpoint created without events lists none (empty: all of them)")
    equal((d["disabled"], d["disabledReason"], d["failingSince"]), (False, None, None), "a new endpoint is enabled")
    shown = call(base, key, "GET", f"/v1/webhooks/{d['id']}", None, 200, "get endpoint")["data"]
    check(shown.get("secret") is None, "the secret is shown once only")
    if receiver is not None:
        receiver.secret = d["secret"]
    return d["id"], d["secret"]


def deliveries(base: str, key: str, webhook_id: str) -> list[dict]:
    out, page = [], 1
    while True:
        got = call(base, key, "GET", f"/v1/webhooks/{webhook_id}/deliveries?limit=100&page={page}", None, 200, "delivery log")
        out += got["data"]
        if page >= got["pagination"]["totalPages"]:
            return out
        page += 1


def check_exactly_once(receiver: Receiver, log_rows: list[dict], what: str) -> None:
    counts = receiver.healthy_ids()
    dupes = {i: n for i, n in counts.items() if n > 1}
    check(not dupes, f"{what}: delivered more than once: {dupes}")
    logged = {d["messageId"] for d in log_rows}
    missing = logged - set(counts)
    extra = set(counts) - logged
    check(not missing, f"{what}: {len(missing)} messages of the delivery log never reached the receiver: {sorted(missing)[:5]}")
    check(not extra, f"{what}: the receiver got messages the log does not list: {sorted(extra)[:5]}")
    receiver.assert_no_failures()


def check_order(records: list[Received], expected: dict[str, list[str]], what: str) -> dict[str, list[Received]]:
    """Per event id: the kinds in arrival order equal `expected`, body timestamps non-decreasing."""
    per_event: dict[str, list[Received]] = collections.defaultdict(list)
    for r in sorted(records, key=lambda r: r.seq):
        per_event[r.payload["data"]["id"]].append(r)
    for event_id, kinds in expected.items():
        got = [r.payload["event"] for r in per_event.get(event_id, [])]
        equal(got, kinds, f"{what}: kinds of event {event_id} in arrival order")
        stamps = [r.payload["timestamp"] for r in per_event[event_id]]
        equal(stamps, sorted(stamps), f"{what}: body timestamps of event {event_id} in arrival order")
    return per_event


# --------------------------------------------------------------------------------------------
# Scenario: faults, then recovery (a server and database of its own, in a thread)
# --------------------------------------------------------------------------------------------


def scenario_faults(binary: str, database_url: str, server: Quando) -> None:
    S = "faults"
    key = org_key(binary, database_url, "webhooks-faults")
    server.start()
    log(S, f"server {server.base}")
    rx = Receiver("faults")
    try:
        _faults(server, key, rx)
    finally:
        rx.close()


def _faults(server: Quando, key: str, rx: Receiver) -> None:
    S = "faults"
    base = server.base
    b = Booker(base, key, "Faults")
    rx.set_mode("down")
    hook, _ = create_endpoint(base, key, rx.url, rx)

    # Nine changes on three events, made while nothing listens.
    expected: dict[str, list[str]] = {}
    a = b.book(1)
    b.reschedule(a["id"], 3)
    b.retitle(a["id"], "A retitled")
    b.cancel(a["id"])
    expected[a["id"]] = KINDS_ORDER[:]
    bb = b.book(5)
    b.reschedule(bb["id"], 6)
    b.cancel(bb["id"])
    expected[bb["id"]] = ["appointment.created", "appointment.rescheduled", "appointment.cancelled"]
    c = b.book(8)
    b.retitle(c["id"], "C retitled")
    expected[c["id"]] = ["appointment.created", "appointment.updated"]
    events = {"A": a, "B": bb, "C": c}
    log(S, "receiver down; 9 changes on 3 events (A: created, rescheduled, updated, cancelled; "
           "B: created, rescheduled, cancelled; C: created, updated)")

    def heads_at(attempts: int):
        rows = deliveries(base, key, hook)
        if len(rows) != 9:
            return None
        heads = [d for d in rows if d["event"] == "appointment.created"]
        if all(d["attempts"] >= attempts for d in heads):
            return rows
        return None

    def fault_log(rows: list[dict], attempts: int, what: str, ok) -> None:
        heads = [d for d in rows if d["event"] == "appointment.created"]
        for d in heads:
            equal(d["attempts"], attempts, f"attempt {attempts} ({what}): attempts of {d['messageId']} (a retry came early?)")
            equal(d["status"], "pending", f"attempt {attempts} ({what}): status of {d['messageId']}")
            check(d["nextAttemptAt"] is not None, f"attempt {attempts}: a next attempt is planned: {d}")
            check(ok(d), f"attempt {attempts} ({what}): the log row does not show it: {d}")
        for d in rows:
            if d["event"] != "appointment.created":
                equal((d["attempts"], d["status"]), (0, "pending"),
                      f"attempt {attempts}: {d['event']} {d['messageId']} waits behind its event's created")
        log(S, f"attempt {attempts} ({what}) logged for the 3 created messages: "
               f"responseStatus={heads[0]['responseStatus']} lastError={heads[0]['lastError']!r} "
               f"latencyMs={[d['latencyMs'] for d in heads]}; the 6 later messages wait (attempts 0)")

    # Attempt 1: nothing listening.
    rows = wait_for(lambda: heads_at(1), 4.5, "attempt 1 (receiver down) in the log")
    fault_log(rows, 1, "down", lambda d: d["responseStatus"] is None and "refused" in (d["lastError"] or "").lower())
    rx.set_mode("500")

    # Attempt 2 (+5 s): 500.
    rows = wait_for(lambda: heads_at(2), 15, "attempt 2 (500) in the log")
    fault_log(rows, 2, "500", lambda d: d["responseStatus"] == 500 and "500" in (d["lastError"] or ""))
    rx.set_mode("slow")

    # Attempt 3 (+30 s): slow, past the 10 s limit.
    rows = wait_for(lambda: heads_at(3), 60, "attempt 3 (slow) in the log", interval=0.5)
    fault_log(rows, 3, "slow",
              lambda d: d["responseStatus"] is None and "time" in (d["lastError"] or "").lower()
              and 9000 <= (d["latencyMs"] or 0) <= 11500)
    rx.set_mode("healthy")
    log(S, "receiver healthy; the 4th attempt is due about 2 min after the 3rd")

    # Attempt 4 (+2 min): healthy; then the later messages of each event follow.
    wait_for(lambda: sum(rx.healthy_ids().values()) >= 9, 175, "all 9 messages in the healthy log", interval=0.5)
    rows = wait_for(lambda: (r := deliveries(base, key, hook)) and all(d["status"] == "succeeded" for d in r) and r,
                    10, "every delivery succeeded in the log")
    time.sleep(1.5)  # anything sent twice would show now
    check_exactly_once(rx, rows, "faults")

    healthy, faulted, _ = rx.snapshot()
    # The receiver saw each created message once in 500 mode and once in slow mode.
    heads = {d["messageId"] for d in rows if d["event"] == "appointment.created"}
    by_mode = collections.Counter((r.mode, r.msg_id) for r in faulted)
    for mode in ("500", "slow"):
        equal(sorted(i for (m, i) in by_mode if m == mode), sorted(heads), f"the created messages seen in {mode} mode")
        check(all(n == 1 for (m, _), n in by_mode.items() if m == mode), f"one attempt each in {mode} mode: {by_mode}")
    # The schedule: attempt 3 30..33 s after attempt 2; attempt 4 10 s (attempt 3 runs to the
    # limit) + 120..132 s after attempt 3. Never early, and never held back by another attempt
    # hanging on the slow receiver (2.5 s of slack: due times are whole seconds, the worker
    # looks every 250 ms, and CI's machine may be busy).
    gaps = []
    for mid in sorted(heads):
        t2 = next(r.arrived for r in faulted if r.mode == "500" and r.msg_id == mid)
        t3 = next(r.arrived for r in faulted if r.mode == "slow" and r.msg_id == mid)
        t4 = next(r.arrived for r in healthy if r.msg_id == mid)
        gaps.append((t3 - t2, t4 - t3))
        check(29.5 <= t3 - t2 <= 35.5, f"{mid}: attempt 3 came {t3 - t2:.1f} s after attempt 2 (want 30..33 s)")
        check(129.5 <= t4 - t3 <= 144.5, f"{mid}: attempt 4 came {t4 - t3:.1f} s after attempt 3 (want 10 + 120..132 s)")
    log(S, "gaps between attempts 2-3 and 3-4 per created message (want 30..33 s and 130..142 s): "
           + ", ".join(f"{a:.1f}/{b:.1f} s" for a, b in gaps))
    for d in rows:
        want_attempts = 4 if d["event"] == "appointment.created" else 1
        equal((d["attempts"], d["responseStatus"], d["lastError"]), (want_attempts, 200, None),
              f"log row of {d['event']} {d['messageId']} after recovery")
        check(d["deliveredAt"] is not None and d["nextAttemptAt"] is None, f"delivered row: {d}")

    created = [d["createdAt"] for d in rows]
    equal(created, sorted(created, reverse=True), "the delivery log is newest first")
    for status, want in (("succeeded", 9), ("pending", 0), ("failed", 0)):
        got = call(base, key, "GET", f"/v1/webhooks/{hook}/deliveries?status={status}", None, 200, "delivery log by status")
        equal(got["pagination"]["total"], want, f"deliveries ?status={status}")

    per_event = check_order(healthy, expected, "faults")
    check_payloads(per_event, events, {"A": (1, 3), "B": (5, 6)}, hook_rows=rows)
    log(S, "each of the 9 messages delivered once after the faults, verified, in order per event, "
           "`previous` on the reschedules; log: created attempts 4, others 1, all succeeded")


def check_payloads(per_event: dict[str, list[Received]], events: dict[str, dict],
                   moves: dict[str, tuple[int, int]], hook_rows: list[dict]) -> None:
    by_msg = {d["messageId"]: d for d in hook_rows}
    for name, ev in events.items():
        for r in per_event[ev["id"]]:
            p = r.payload
            kind = p["event"]
            data = p["data"]
            check(p["timestamp"].endswith("Z"), f"timestamp in UTC: {p['timestamp']}")
            equal((data["id"], data["calendarId"]), (ev["id"], ev["calendarId"]), f"{name} {kind}: data ids")
            row = by_msg[r.msg_id]
            equal((row["event"], row["eventId"]), (kind, ev["id"]), f"{name} {kind}: log row's kind and event")
            if kind == "appointment.created":
                equal(data["startTime"], ev["startTime"], f"{name} created: startTime")
                check("previous" not in data, f"{name} created: no previous")
            elif kind == "appointment.rescheduled":
                old, new = moves[name]
                equal((data["startTime"], data["endTime"]), (iso(new * 30), iso(new * 30 + 30)), f"{name} rescheduled: new times")
                check("previous" in data, f"{name} rescheduled: previous is present")
                equal((data["previous"]["startTime"], data["previous"]["endTime"], data["previous"]["id"]),
                      (iso(old * 30), iso(old * 30 + 30), ev["id"]), f"{name} rescheduled: previous has the old times")
            elif kind == "appointment.updated":
                check(data["title"].endswith("retitled"), f"{name} updated: the new title: {data['title']!r}")
                check("previous" not in data, f"{name} updated: no previous")
            elif kind == "appointment.cancelled":
                equal(data["status"], "cancelled", f"{name} cancelled: status")


# --------------------------------------------------------------------------------------------
# Scenario: SSRF, on a server without --webhook-allow-private
# --------------------------------------------------------------------------------------------


REFUSED = ["http://127.0.0.1/", "https://127.0.0.1/", "https://10.0.0.1/", "https://169.254.169.254/",
           "https://[::1]/", "https://[::ffff:127.0.0.1]/", "https://localhost/", "https://192.168.1.1/",
           "https://172.16.0.1/hook", "https://0.0.0.0/", "https://[fe80::1]/", "http://example.com/hook"]


def scenario_ssrf(server: Quando, key: str) -> None:
    S = "ssrf"
    base = server.base
    for url in REFUSED:
        st, got = api(base, key, "POST", "/v1/webhooks", {"url": url})
        if st != 400:
            raise CheckFailed(f"SSRF: POST /v1/webhooks {{url: {url}}} -> {st} {got} (want 400 validation_error)")
        err = got["error"]
        equal(err["code"], "validation_error", f"SSRF {url}: error code")
        fields = err.get("details", {}).get("fields", [])
        check(any(f["field"] == "url" for f in fields), f"SSRF {url}: no field `url` named: {got}")
        check("requestId" in got, f"SSRF {url}: requestId in the envelope")
    example = next(f["message"] for f in api(base, key, "POST", "/v1/webhooks", {"url": "https://[::ffff:127.0.0.1]/"})[1]
                   ["error"]["details"]["fields"] if f["field"] == "url")
    log(S, f"{len(REFUSED)} loopback/private/link-local/localhost/http URLs each refused 400 validation_error on `url` "
           f"(e.g. https://[::ffff:127.0.0.1]/: {example!r})")
    # A public https URL is taken; deleted at once, in an organization that never books: nothing
    # is ever sent there.
    got = call(base, key, "POST", "/v1/webhooks", {"url": "https://example.com/hook"}, 201, "a public https URL")
    hook = got["data"]["id"]
    call(base, key, "DELETE", f"/v1/webhooks/{hook}", None, 204, "delete the public endpoint")
    call(base, key, "GET", f"/v1/webhooks/{hook}", None, 404, "the deleted endpoint")
    log(S, "https://example.com/hook -> 201 (then deleted, 204; nothing sent)")
    ssrf_by_name(base, key)


def loopback_name() -> str | None:
    """A host name (not an address, not `localhost`) that this machine resolves to loopback
    only, such as its own name in /etc/hosts; None when it has none."""
    candidates = [socket.gethostname(), "ip6-localhost", "ip6-loopback", "localhost.localdomain"]
    try:
        with open("/etc/hosts") as hosts:
            for line in hosts:
                parts = line.split("#", 1)[0].split()
                if parts and parts[0] in ("127.0.0.1", "::1"):
                    candidates += parts[1:]
    except OSError:
        pass
    for name in candidates:
        if not name or name == "localhost" or name.endswith(".localhost"):
            continue
        try:
            found = {info[4][0] for info in socket.getaddrinfo(name, 443)}
        except OSError:
            continue
        if found and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found):
            return name
    return None


def ssrf_by_name(base: str, key: str) -> None:
    """A name is taken when the endpoint is made (DNS can change), but every delivery resolves it
    again and goes to no address of this machine: the attempt fails, nothing reaches a receiver
    listening there."""
    S = "ssrf"
    name = loopback_name()
    if name is None:
        log(S, "no host name of this machine resolves to loopback only; the by-name case is skipped")
        return
    rx = Receiver("ssrf-by-name")
    try:
        rx.set_mode("healthy")
        url = f"https://{name}:{rx.port}/hook"
        got = call(base, key, "POST", "/v1/webhooks", {"url": url}, 201, f"an endpoint named {name}")
        hook = got["data"]["id"]
        call(base, key, "POST", f"/v1/webhooks/{hook}/test", None, 202, "a ping to it")

        def attempted():
            rows = call(base, key, "GET", f"/v1/webhooks/{hook}/deliveries", None, 200, "its log")["data"]
            return rows if rows and rows[0]["attempts"] >= 1 else None

        rows = wait_for(attempted, 20, "the ping's first attempt")
        error = rows[0]["lastError"] or ""
        check(rows[0]["status"] in ("pending", "failed") and rows[0]["responseStatus"] is None,
              f"the attempt to {url} did not fail: {rows[0]}")
        check(f"{name} resolves to" in error,
              f"the attempt to {url} failed for another reason than the resolver's refusal: {error!r}")
        healthy, faulted, _ = rx.snapshot()
        equal(len(healthy) + len(faulted), 0, f"requests that reached the receiver behind {name}")
        call(base, key, "DELETE", f"/v1/webhooks/{hook}", None, 204, "delete it")
        log(S, f"{url}: taken (a name), then its ping refused at delivery: {error!r}; nothing reached the receiver")
    finally:
        rx.close()


# --------------------------------------------------------------------------------------------
# Scenarios: ping, rotation
# --------------------------------------------------------------------------------------------


def scenario_ping_and_rotation(server: Quando, key: str) -> None:
    base = server.base
    rx = Receiver("rotation")
    try:
        rx.set_mode("healthy")
        hook, old = create_endpoint(base, key, rx.url, rx)

        # Ping.
        got = call(base, key, "POST", f"/v1/webhooks/{hook}/test", None, 202, "test ping")
        wait_for(lambda: len(rx.healthy_ids()) >= 1, 15, "the ping at the receiver")
        healthy, _, _ = rx.snapshot()
        rx.assert_no_failures()
        equal(len(healthy), 1, "one delivery after the ping")
        ping = healthy[0]
        equal(ping.payload["event"], "ping", "the ping's kind")
        equal(len(ping.signatures), 1, "one signature before any rotation")
        rows = wait_for(lambda: (r := deliveries(base, key, hook)) and r[0]["status"] == "succeeded" and r,
                        10, "the ping succeeded in the log")
        equal((len(rows), rows[0]["event"], rows[0]["messageId"], rows[0]["eventId"], rows[0]["attempts"], rows[0]["responseStatus"]),
              (1, "ping", ping.msg_id, None, 1, 200), "the ping's log row")
        if isinstance(got, dict) and isinstance(got.get("data"), dict):
            equal(got["data"].get("messageId"), ping.msg_id, "/test answers the queued delivery")
        log("ping", f"POST /test -> 202; ping {ping.msg_id} arrived, verified, logged succeeded")

        # Rotation.
        rot = call(base, key, "POST", f"/v1/webhooks/{hook}/rotate-secret", None, 200, "rotate-secret")["data"]
        new = rot["secret"]
        check(new.startswith("whsec_") and new != old, "rotate-secret answers a new whsec_ secret")
        check(rot["previousSecretExpiresAt"] is not None, f"previousSecretExpiresAt is set: {rot}")
        rx.secret = new
        b = Booker(base, key, "Rotation")
        ev = b.book(40)
        wait_for(lambda: len(rx.healthy_ids()) >= 2, 15, "the delivery after the rotation")
        rx.assert_no_failures()
        r = rx.snapshot()[0][1]
        equal((r.payload["event"], r.payload["data"]["id"]), ("appointment.created", ev["id"]), "the delivery after rotation")
        sigs = r.signatures
        equal(len(sigs), 2, f"two signatures after the rotation ({r.headers.get('webhook-signature')!r})")
        check(all(s.startswith("v1,") for s in sigs), f"v1 signatures: {sigs}")
        Webhook(new).verify(r.body, r.headers)
        Webhook(old).verify(r.body, r.headers)
        # Each signature on its own: one is the new secret's, the other the old one's.
        owners = []
        for s in sigs:
            one = dict(r.headers, **{"webhook-signature": s})
            owners.append(tuple(n for n, sec in (("new", new), ("old", old)) if verifies(sec, r.body, one)))
        equal(sorted(owners), [("new",), ("old",)], "each signature is one secret's")
        stranger = "whsec_" + base64.b64encode(pysecrets.token_bytes(24)).decode()
        check(not verifies(stranger, r.body, r.headers), "another secret does not verify")
        log("rotation", "after rotate-secret: 2 signatures; verifies with the new secret and with the old one "
                        "(each signature by itself), not with a stranger's")
    finally:
        rx.close()


def verifies(secret: str, body: bytes, headers: dict) -> bool:
    try:
        Webhook(secret).verify(body, headers)
        return True
    except WebhookVerificationError:
        return False


# --------------------------------------------------------------------------------------------
# Scenario: kill -9 right after bookings commit
# --------------------------------------------------------------------------------------------


def scenario_kill(server: Quando, key: str, n: int = 20) -> None:
    S = "kill -9"
    base = server.base
    rx = Receiver("kill")
    try:
        rx.set_mode("500")
        hook, _ = create_endpoint(base, key, rx.url, rx)
        b = Booker(base, key, "Kill")
        booked: dict[str, dict] = {}
        lock = threading.Lock()
        errors: list[str] = []

        def worker(w: int) -> None:
            try:
                for i in range(w, n, 4):
                    ev = b.book(100 + i)
                    with lock:
                        booked[ev["id"]] = ev
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pid = server.proc.pid
        server.kill9()
        check(not errors, f"bookings before the kill: {errors}")
        equal(len(booked), n, "bookings answered 201 before the kill")
        _, faulted, _ = rx.snapshot()
        check(not rx.healthy_ids(), "nothing delivered before the kill")
        log(S, f"{n} bookings 201 with the receiver answering 500 ({len(faulted)} attempts answered 500 so far); "
               f"SIGKILL to pid {pid} right after the last 201")
        rx.set_mode("healthy")
        t0 = time.monotonic()
        server.start()
        log(S, f"receiver healthy; server restarted on the same database ({server.base})")
        base = server.base

        def arrived():
            got = {r.payload["data"]["id"] for r in rx.snapshot()[0] if r.payload["event"] == "appointment.created"}
            return got >= set(booked)

        wait_for(arrived, 75, f"the {n} appointment.created messages after the restart", interval=0.5)
        took = time.monotonic() - t0
        rows = wait_for(lambda: (r := deliveries(base, key, hook)) and all(d["status"] == "succeeded" for d in r) and r,
                        10, "every delivery succeeded in the log")
        time.sleep(1.0)
        check_exactly_once(rx, rows, "kill -9")
        equal(len(rows), n, "one delivery per booking in the log")
        for r in rx.snapshot()[0]:
            ev = booked[r.payload["data"]["id"]]
            equal((r.payload["event"], r.payload["data"]["startTime"]), ("appointment.created", ev["startTime"]), "created body")
        log(S, f"all {n} appointment.created delivered once, verified, {took:.1f} s after the restart "
               f"(attempts in the log: {sorted(collections.Counter(d['attempts'] for d in rows).items())})")
    finally:
        rx.close()


# --------------------------------------------------------------------------------------------
# Scenario: two instances on one PostgreSQL database
# --------------------------------------------------------------------------------------------


def scenario_two_instances(first: Quando, second: Quando, key: str, n: int = 60) -> None:
    S = "2 servers"
    rx = Receiver("two-instances")
    try:
        rx.set_mode("healthy")
        hook, _ = create_endpoint(first.base, key, rx.url, rx)
        b = Booker(first.base, key, "Two")
        offsets = [os.path.getsize(s.log_path) for s in (first, second)]
        bases = [first.base, second.base]
        lock = threading.Lock()
        booked: dict[str, dict] = {}
        expected: dict[str, list[str]] = {}
        errors: list[str] = []

        def worker(w: int) -> None:
            try:
                for i in range(w, n, 6):
                    ev = b.book(200 + 2 * i, base=bases[i % 2])
                    kinds = ["appointment.created"]
                    if i % 2 == 0:
                        b.reschedule(ev["id"], 200 + 2 * i + 1, base=bases[(i + 1) % 2])
                        kinds.append("appointment.rescheduled")
                    with lock:
                        booked[ev["id"]] = ev
                        expected[ev["id"]] = kinds
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")

        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(not errors, f"bookings: {errors}")
        total = sum(len(k) for k in expected.values())
        log(S, f"{n} bookings over both servers ({first.base}, {second.base}), {n // 2} rescheduled through the other: {total} messages")
        wait_for(lambda: sum(rx.healthy_ids().values()) >= total, 60, f"{total} deliveries", interval=0.3)
        took = time.monotonic() - t0
        time.sleep(2.0)  # a duplicate would show now
        rows = wait_for(lambda: (r := deliveries(first.base, key, hook)) and all(d["status"] == "succeeded" for d in r) and r,
                        10, "every delivery succeeded in the log")
        equal(len(rows), total, "deliveries in the log")
        check_exactly_once(rx, rows, "two instances")
        check(all(d["attempts"] == 1 for d in rows), f"one attempt each: {[d for d in rows if d['attempts'] != 1][:3]}")
        check_order(rx.snapshot()[0], expected, "two instances")
        sent_by = []
        for srv, offset in zip((first, second), offsets):
            with open(srv.log_path, "rb") as f:
                f.seek(offset)
                sent_by.append(f.read().decode(errors="replace").count("webhook delivered"))
        equal(sum(sent_by), total, "deliveries the two servers' logs record (`webhook delivered`)")
        # Each server's worker is woken by its own bookings' commits, so each delivers about what
        # it took; a worker that only polled left nearly everything to the first one to look.
        check(all(n >= total // 4 for n in sent_by),
              f"each server delivered at least a quarter of the {total} messages (each server's count: {sent_by})")
        log(S, f"each of the {total} messages delivered exactly once (one attempt each), created before rescheduled, "
               f"all within {took:.1f} s; sent by the two servers: {sent_by[0]} + {sent_by[1]}")
    finally:
        rx.close()


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def main() -> int:
    global BACKEND
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO_ROOT, "target", "debug", "quando"))
    ap.add_argument("--postgres-admin-url",
                    help="create scratch databases quando_whcheck_<random> through this URL with psql, drop them after")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    BACKEND = "PostgreSQL" if args.postgres_admin_url else "SQLite"
    t_start = time.monotonic()
    scratch: list[str] = []
    servers: list[Quando] = []
    rc = 1
    with tempfile.TemporaryDirectory(prefix="quando-whcheck-") as workdir:
        try:
            if args.postgres_admin_url:
                name = f"quando_whcheck_{pysecrets.token_hex(6)}"
                for db in (name, name + "_faults"):
                    psql(args.postgres_admin_url, f'CREATE DATABASE "{db}"')
                    scratch.append(db)
                main_url = with_db_name(args.postgres_admin_url, name)
                faults_url = with_db_name(args.postgres_admin_url, name + "_faults")
            else:
                main_url = f"sqlite://{os.path.join(workdir, 'whcheck.db')}?mode=rwc"
                faults_url = f"sqlite://{os.path.join(workdir, 'whcheck-faults.db')}?mode=rwc"

            # The fault scenario takes about 3 minutes: it runs beside the others.
            faults_server = Quando(binary, faults_url, os.path.join(workdir, "faults-server.log"), allow_private=True)
            servers.append(faults_server)
            faults_error: list[BaseException] = []

            def run_faults() -> None:
                try:
                    scenario_faults(binary, faults_url, faults_server)
                except BaseException as e:  # noqa: BLE001
                    faults_error.append(e)
                    ABORT.set()

            faults_thread = threading.Thread(target=run_faults, name="faults", daemon=True)
            faults_thread.start()

            keys = {n: org_key(binary, main_url, f"webhooks-{n}") for n in ("ssrf", "rotation", "kill", "multi")}

            strict = Quando(binary, main_url, os.path.join(workdir, "strict-server.log"), allow_private=False)
            servers.append(strict)
            strict.start()
            with urllib.request.urlopen(strict.base + "/openapi.json", timeout=10) as r:
                check("/v1/webhooks" in json.loads(r.read()).get("paths", {}),
                      f"{binary} serves no /v1/webhooks: a build older than issue 13's webhooks "
                      "(rebuild with `cargo build -p quando-api`)")
            log("ssrf", f"server without --webhook-allow-private {strict.base}")
            scenario_ssrf(strict, keys["ssrf"])
            strict.stop()

            server = Quando(binary, main_url, os.path.join(workdir, "server.log"), allow_private=True)
            servers.append(server)
            server.start()
            log("main", f"server with --webhook-allow-private {server.base}")
            scenario_ping_and_rotation(server, keys["rotation"])
            scenario_kill(server, keys["kill"])
            if args.postgres_admin_url:
                second = Quando(binary, main_url, os.path.join(workdir, "second-server.log"), allow_private=True)
                servers.append(second)
                second.start()
                scenario_two_instances(server, second, keys["multi"])

            if faults_thread.is_alive():
                log("main", "other checks done; waiting for the fault scenario")
            while faults_thread.is_alive():
                faults_thread.join(1.0)
            if faults_error:
                raise faults_error[0]
            rc = 0
        except BaseException as e:  # noqa: BLE001 - report and fail
            ABORT.set()
            print(f"\n[webhooks {BACKEND}] FAIL: {type(e).__name__}: {e}", flush=True)
            if isinstance(e, subprocess.CalledProcessError):
                print(e.stderr or "")
            for s in servers:
                print(f"--- {os.path.basename(s.log_path)} (tail) ---\n{s.log_tail(25)}")
            rc = 1
        finally:
            for s in servers:
                s.kill9()
            for db in scratch:
                try:
                    psql(args.postgres_admin_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                except subprocess.CalledProcessError as e:
                    print(f"[webhooks {BACKEND}] could not drop {db}: {e.stderr}")
                    rc = 1
    verdict = "passed" if rc == 0 else "FAILED"
    print(f"[webhooks {BACKEND}] {verdict} in {time.monotonic() - t_start:.0f} s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
