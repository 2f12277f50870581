#!/usr/bin/env python3
"""Idempotency across a crash: concurrent bookings, each with its own Idempotency-Key, `kill -9`
mid-load, restart, then every key that was in flight at the kill is retried at once.

Python 3.11, standard library only; shares the server and HTTP helpers of crash_test.py.

    python3 scripts/idempotency_crash_test.py
    python3 scripts/idempotency_crash_test.py --postgres-admin-url postgres://postgres@127.0.0.1:5432/test

What must hold (exit 1 otherwise, with every offending request printed):
  - each retry of an in-flight key answers within --max-seconds (default 1 s): no wait on a claim
    whose owner died;
  - it answers 201: the first outcome replayed (`Idempotent-Replayed: true`) or the booking made
    once now; never 409 `slot_unavailable` naming the event the same request created, never 409
    `idempotency_in_progress`;
  - a sample of keys answered before the kill replays the same event id;
  - afterwards the organization holds exactly one event per key sent (each key books its own
    slot), so nothing was booked twice and nothing acknowledged was lost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import REPO_ROOT, Server, api, expect, log, psql, redact, with_db_name  # noqa: E402

BASE_TIME = dt.datetime(2027, 3, 1, tzinfo=dt.timezone.utc)
SLOT = dt.timedelta(minutes=30)


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def keyed_post(base: str, key: str, idem: str, body: dict, timeout: float) -> tuple[int, dict | str, dict]:
    req = urllib.request.Request(base + "/v1/calendar/events", data=json.dumps(body).encode(), method="POST")
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    req.add_header("Idempotency-Key", idem)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, headers = r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        status, raw, headers = e.code, e.read(), dict(e.headers)
    try:
        return status, json.loads(raw), {k.lower(): v for k, v in headers.items()}
    except ValueError:
        return status, raw.decode(errors="replace"), {k.lower(): v for k, v in headers.items()}


class KeyedLoad:
    """Workers book distinct slots, one fresh Idempotency-Key per booking."""

    def __init__(self, base: str, key: str, calendar: str, event_type: str, workers: int):
        self.base, self.key, self.calendar, self.event_type = base, key, calendar, event_type
        self.workers = workers
        self.lock = threading.Lock()
        self.sent: dict[str, dict] = {}  # idem key -> body
        self.answered: dict[str, tuple[int, dict | str]] = {}
        self.stop = threading.Event()

    def body(self, slot: int) -> dict:
        start = BASE_TIME + slot * SLOT
        return {"calendarId": self.calendar, "eventTypeId": self.event_type,
                "startTime": iso(start), "endTime": iso(start + SLOT), "customerName": f"Caller {slot}"}

    def worker(self, w: int) -> None:
        i = 0
        while not self.stop.is_set():
            slot = w * 100000 + i
            i += 1
            idem = f"call-{w}-{i}-{secrets.token_hex(4)}"
            body = self.body(slot)
            with self.lock:
                self.sent[idem] = body
            try:
                status, resp, _ = keyed_post(self.base, self.key, idem, body, timeout=30)
            except Exception:  # noqa: BLE001 - the kill cuts requests off: in flight
                return
            with self.lock:
                self.answered[idem] = (status, resp)

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.worker, args=(w,), daemon=True) for w in range(self.workers)]
        for t in threads:
            t.start()
        return threads


def run(args: argparse.Namespace, database_url: str, workdir: str) -> int:
    binary = args.binary
    log(f"database {redact(database_url)}")
    out = subprocess.run([binary, "org", "create", "--name", "idem-crash", "--database-url", database_url],
                         check=True, capture_output=True, text=True)
    created = json.loads(out.stdout)
    org_id = created["organization"]["id"]
    out = subprocess.run([binary, "key", "create", "--org", org_id, "--rate-limit", "1000000",
                          "--database-url", database_url], check=True, capture_output=True, text=True)
    key = json.loads(out.stdout)["key"]

    server = Server(binary, database_url, os.path.join(workdir, "server.log"))
    try:
        server.start()
        cal = expect(*api(server.base, key, "POST", "/v1/calendar/calendars", {"name": "Line 1", "timezone": "UTC"}),
                     201, "create calendar")["data"]["id"]
        et = expect(*api(server.base, key, "POST", "/v1/calendar/event-types",
                         {"name": "Call-back", "durationMinutes": 30}), 201, "create event type")["data"]["id"]

        load = KeyedLoad(server.base, key, cal, et, args.workers)
        threads = load.run()
        time.sleep(args.seconds_before_kill)
        server.kill9()
        load.stop.set()
        for t in threads:
            t.join(timeout=35)
        with load.lock:
            sent = dict(load.sent)
            answered = dict(load.answered)
        in_flight = [k for k in sent if k not in answered]
        bad_before = {k: v for k, v in answered.items() if v[0] != 201}
        log(f"before the kill: {len(sent)} keyed bookings sent, {len(answered)} answered, {len(in_flight)} in flight")
        if bad_before:
            log(f"FAIL: non-201 answers before the kill: {list(bad_before.items())[:5]}")
            return 1
        if len(in_flight) == 0:
            log("FAIL: no request was in flight at the kill; nothing was tested")
            return 1

        server.start()
        sample = list(answered)[: args.replay_sample]
        retry_keys = in_flight + sample
        results: dict[str, tuple[int, dict | str, dict, float]] = {}

        def retry(idem: str) -> None:
            t0 = time.monotonic()
            try:
                status, resp, headers = keyed_post(server.base, key, idem, sent[idem], timeout=30)
            except Exception as e:  # noqa: BLE001
                status, resp, headers = 0, str(e), {}
            results[idem] = (status, resp, headers, time.monotonic() - t0)

        rthreads = [threading.Thread(target=retry, args=(k,)) for k in retry_keys]
        for t in rthreads:
            t.start()
        for t in rthreads:
            t.join()

        failures = []
        for idem in retry_keys:
            status, resp, headers, secs = results[idem]
            if secs > args.max_seconds:
                failures.append(f"{idem}: answered after {secs:.2f} s (> {args.max_seconds} s): {status} {resp}")
            if status != 201:
                failures.append(f"{idem}: retry answered {status}: {resp}")
                continue
            if idem in answered:
                first_id = answered[idem][1]["data"]["id"]
                if resp["data"]["id"] != first_id or headers.get("idempotent-replayed") != "true":
                    failures.append(f"{idem}: replay gave {resp['data']['id']} (first {first_id}), "
                                    f"Idempotent-Replayed={headers.get('idempotent-replayed')}")
        replayed = sum(1 for k in in_flight if results[k][2].get("idempotent-replayed") == "true")
        slowest = max((results[k][3] for k in retry_keys), default=0.0)
        log(f"retried {len(in_flight)} in-flight keys: {replayed} replayed a booking committed before the kill, "
            f"{len(in_flight) - replayed} booked now; {len(sample)} answered keys replayed; slowest {slowest * 1000:.0f} ms")

        status, body = api(server.base, key, "GET", "/v1/calendar/events?limit=1")
        total = expect(status, body, 200, "list")["pagination"]["total"]
        if total != len(sent):
            failures.append(f"the organization holds {total} events for {len(sent)} keys sent (one each expected)")
        if failures:
            log(f"FAIL: {len(failures)} problem(s)")
            for f in failures[:30]:
                print("  " + f)
            return 1
        log(f"OK: {total} events for {len(sent)} keys; every in-flight retry answered 201 within {args.max_seconds} s")
        return 0
    finally:
        server.kill9()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO_ROOT, "target", "debug", "quando"))
    ap.add_argument("--postgres-admin-url", help="create a scratch database through this URL, drop it after")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--seconds-before-kill", type=float, default=2.0)
    ap.add_argument("--replay-sample", type=int, default=16)
    ap.add_argument("--max-seconds", type=float, default=1.0)
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    if not os.access(args.binary, os.X_OK):
        ap.error(f"{args.binary} is not an executable; build it with `cargo build -p quando-api`")
    workdir = tempfile.mkdtemp(prefix="quando-idem-crash-")
    scratch = None
    try:
        if args.postgres_admin_url:
            scratch = "quando_idem_" + secrets.token_hex(6)
            psql(args.postgres_admin_url, f'CREATE DATABASE "{scratch}"')
            url = with_db_name(args.postgres_admin_url, scratch)
        else:
            url = f"sqlite://{os.path.join(workdir, 'idem.db')}?mode=rwc"
        rc = run(args, url, workdir)
    except Exception as e:  # noqa: BLE001
        log(f"ERROR: {type(e).__name__}: {e}")
        log_path = os.path.join(workdir, "server.log")
        if os.path.exists(log_path):
            with open(log_path, errors="replace") as f:
                print("--- server log tail ---\n" + "".join(f.readlines()[-20:]))
        rc = 1
    finally:
        if scratch:
            psql(args.postgres_admin_url, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
