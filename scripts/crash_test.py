#!/usr/bin/env python3
"""Crash test for Quando: a write load of concurrent bookings, `kill -9` mid-load, restart,
then every event id that got a 201 is read back.

Python 3.11, standard library only.

    python3 scripts/crash_test.py                                  # fresh SQLite file
    python3 scripts/crash_test.py --postgres-admin-url postgres://postgres@127.0.0.1:5432/test
    python3 scripts/crash_test.py --database-url postgres://postgres@127.0.0.1:5432/fresh_db

Steps:
  1. `quando org create` on the database (gives an API key).
  2. `quando serve` on a free port (rate limit raised so it never interferes), wait for /readyz.
  3. Create a calendar (no working hours: open around the clock) and a 30-minute event type.
  4. N workers book DISTINCT free half-hour slots from 2027-01-01T00:00:00Z on (worker w books
     slot w*10000 + i), recording the id of every 201 as soon as its response is read.
  5. After --seconds-before-kill seconds, SIGKILL the server while the load runs. Workers then
     see connection errors (expected; counted).
  6. Restart the server on the same database, wait for /readyz, GET every recorded id: each must
     be 200 with the time that was booked. The list total must be >= the acked count (and at most
     acked + workers: only a request in flight at the kill may have committed without an answer).

Exit 1 if any acked booking is missing, if fewer than --min-acked bookings were acked before the
kill, or if the server answered anything but 201 before the kill (each such request and response
is printed). Exit 0 otherwise. The server is always killed and a scratch PostgreSQL database is
always dropped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_TIME = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
SLOT = dt.timedelta(minutes=30)
SLOTS_PER_WORKER = 10000
HTTP_TIMEOUT = 30.0


def log(msg: str) -> None:
    print(f"[crash-test {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redact(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    if p.password:
        netloc = p.netloc.replace(":" + p.password + "@", ":***@")
        return urllib.parse.urlunsplit(p._replace(netloc=netloc))
    return url


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log_tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, "rb") as f:
            data = ANSI.sub("", f.read().decode(errors="replace")).splitlines()
        return "\n".join(data[-lines:])
    except OSError:
        return "(no server log)"


# --------------------------------------------------------------------------------------------
# PostgreSQL scratch database
# --------------------------------------------------------------------------------------------


def with_db_name(url: str, name: str) -> str:
    p = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(p._replace(path="/" + name))


def psql(admin_url: str, sql: str) -> None:
    subprocess.run(
        ["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )


# --------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------


class Server:
    def __init__(self, binary: str, database_url: str, log_path: str):
        self.binary = binary
        self.database_url = database_url
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env["QUANDO_RATE_LIMIT_PER_MINUTE"] = "1000000"
        env.setdefault("QUANDO_LOG", "info")
        env.pop("QUANDO_BIND", None)
        env.pop("QUANDO_DATABASE_URL", None)
        logf = open(self.log_path, "ab")
        logf.write(f"\n===== start on port {self.port} at {time.strftime('%H:%M:%S')} =====\n".encode())
        logf.flush()
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--bind", f"127.0.0.1:{self.port}", "--database-url", self.database_url],
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        logf.close()
        self.wait_ready()

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with status {self.proc.returncode} before it was ready")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
                    last = f"status {r.status}"
            except urllib.error.HTTPError as e:
                last = f"status {e.code}: {e.read()[:300]!r}"
            except (urllib.error.URLError, ConnectionError, OSError) as e:
                last = str(e)
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout:.0f} s (last: {last})")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=35)
        except subprocess.TimeoutExpired:
            self.kill9()

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)


# --------------------------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------------------------


def api(base: str, key: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict | str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def expect(status: int, body, want: int, what: str) -> dict:
    if status != want:
        raise RuntimeError(f"{what}: expected {want}, got {status}: {body}")
    return body


# --------------------------------------------------------------------------------------------
# The load
# --------------------------------------------------------------------------------------------


class Load:
    def __init__(self, port: int, key: str, calendar_id: str, event_type_id: str, workers: int):
        self.port = port
        self.key = key
        self.calendar_id = calendar_id
        self.event_type_id = event_type_id
        self.workers = workers
        self.lock = threading.Lock()
        self.acked: dict[str, str] = {}  # event id -> startTime booked
        self.acked_before_kill = 0
        self.killed = threading.Event()
        self.stop = threading.Event()
        self.errors_after_kill = 0
        self.errors_before_kill: list[str] = []
        self.unexpected: list[str] = []  # non-201 answers (exact request and response)
        self.active = 0
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for w in range(self.workers):
            t = threading.Thread(target=self.worker, args=(w,), daemon=True, name=f"worker-{w}")
            self.threads.append(t)
        with self.lock:
            self.active = self.workers
        for t in self.threads:
            t.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def worker(self, w: int) -> None:
        conn: http.client.HTTPConnection | None = None
        try:
            for i in range(SLOTS_PER_WORKER):
                if self.stop.is_set():
                    return
                start = BASE_TIME + (w * SLOTS_PER_WORKER + i) * SLOT
                body = {
                    "calendarId": self.calendar_id,
                    "eventTypeId": self.event_type_id,
                    "startTime": iso(start),
                    "endTime": iso(start + SLOT),
                    "timezone": "UTC",
                    "customerName": f"Crash W{w} #{i}",
                    "customerEmail": f"crash.w{w}.n{i}@example.com",
                    "title": "crash test",
                }
                payload = json.dumps(body)
                headers = {
                    "Authorization": f"Bearer {self.key}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": f"crash-{w}-{i}",
                }
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
                    conn.request("POST", "/v1/calendar/events", body=payload, headers=headers)
                    resp = conn.getresponse()
                    raw = resp.read()
                    status = resp.status
                except (OSError, http.client.HTTPException) as e:
                    if conn is not None:
                        conn.close()
                        conn = None
                    with self.lock:
                        if self.killed.is_set():
                            self.errors_after_kill += 1
                            return  # the server is gone; this worker is done
                        self.errors_before_kill.append(
                            f"POST /v1/calendar/events {payload} -> {type(e).__name__}: {e}"
                        )
                    if len(self.errors_before_kill) > 20:
                        return
                    continue
                if status == 201:
                    try:
                        event_id = json.loads(raw)["data"]["id"]
                    except (ValueError, KeyError, TypeError):
                        with self.lock:
                            self.unexpected.append(
                                f"POST /v1/calendar/events {payload} -> 201 without data.id: {raw[:500]!r}"
                            )
                        continue
                    with self.lock:
                        self.acked[event_id] = iso(start)
                        if not self.killed.is_set():
                            self.acked_before_kill += 1
                    continue
                with self.lock:
                    self.unexpected.append(
                        f"POST /v1/calendar/events (Idempotency-Key crash-{w}-{i}) {payload}\n"
                        f"    -> {status} {resp.getheader('Content-Type')} {raw[:1000].decode(errors='replace')}"
                    )
                    too_many = len(self.unexpected) > 20
                if too_many:
                    return
        finally:
            if conn is not None:
                conn.close()
            with self.lock:
                self.active -= 1


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, database_url: str, workdir: str) -> int:
    binary = args.binary
    log(f"binary {binary}")
    log(f"database {redact(database_url)}")

    out = subprocess.run(
        [binary, "org", "create", "--name", "crash", "--database-url", database_url],
        check=True,
        capture_output=True,
        text=True,
    )
    try:
        created = json.loads(out.stdout)
        key = created["apiKey"]["key"]
        org_id = created["organization"]["id"]
    except (ValueError, KeyError) as e:
        raise RuntimeError(f"`quando org create` printed something unexpected ({e}): {out.stdout!r} {out.stderr!r}")
    # A key of its own that is never throttled, whatever the server's default budget is (the server
    # also gets QUANDO_RATE_LIMIT_PER_MINUTE=1000000); the organization's first key otherwise.
    out = subprocess.run(
        [binary, "key", "create", "--org", org_id, "--name", "crash", "--rate-limit", "1000000",
         "--database-url", database_url],
        capture_output=True,
        text=True,
    )
    if out.returncode == 0:
        key = json.loads(out.stdout)["key"]
    else:
        log(f"`quando key create --rate-limit` failed ({out.stderr.strip()[:200]}); using the organization's key")

    server = Server(binary, database_url, os.path.join(workdir, "server.log"))
    try:
        return run_with_server(args, server, key)
    finally:
        server.kill9()
        if args.keep_log:
            log(f"server log kept at {server.log_path}")


def run_with_server(args: argparse.Namespace, server: Server, key: str) -> int:
    t0 = time.monotonic()
    server.start()
    log(f"server ready on {server.base} in {time.monotonic() - t0:.1f} s (pid {server.proc.pid})")

    st, body = api(server.base, key, "POST", "/v1/calendar/calendars",
                   {"name": "Crash room", "timezone": "UTC", "description": "crash test"})
    calendar_id = expect(st, body, 201, "create calendar")["data"]["id"]
    st, body = api(server.base, key, "POST", "/v1/calendar/event-types",
                   {"name": "Crash 30", "durationMinutes": 30, "calendarId": calendar_id})
    event_type_id = expect(st, body, 201, "create event type")["data"]["id"]
    log(f"calendar {calendar_id}, event type {event_type_id}")

    load = Load(server.port, key, calendar_id, event_type_id, args.workers)
    load.start()
    log(f"{args.workers} workers booking; SIGKILL in {args.seconds_before_kill} s")
    time.sleep(args.seconds_before_kill)

    with load.lock:
        load.killed.set()
        acked_at_kill = len(load.acked)
        active_at_kill = load.active
    pid = server.proc.pid
    # The server must still be running: if it is gone, something else stopped it (its log says how).
    premature_exit = server.proc.poll()
    if premature_exit is None:
        os.kill(pid, signal.SIGKILL)
        server.proc.wait()
        log(f"SIGKILL sent to pid {pid} with {active_at_kill}/{args.workers} workers running, {acked_at_kill} bookings acked")
    else:
        log(f"the server (pid {pid}) had already exited with status {premature_exit} before the SIGKILL")
    with open(server.log_path, "rb") as f:
        first_life_log = ANSI.sub("", f.read().decode(errors="replace")).splitlines()

    load.join(HTTP_TIMEOUT + 5)
    load.stop.set()
    load.join(5)
    with load.lock:
        acked = dict(load.acked)
        acked_before_kill = load.acked_before_kill
        errors_after_kill = load.errors_after_kill
        errors_before_kill = list(load.errors_before_kill)
        unexpected = list(load.unexpected)
    late_acks = len(acked) - acked_before_kill

    t1 = time.monotonic()
    server.start()
    log(f"restarted on {server.base} in {time.monotonic() - t1:.1f} s")

    missing: list[str] = []
    wrong: list[str] = []
    verified = 0
    for event_id, start in acked.items():
        st, body = api(server.base, key, "GET", f"/v1/calendar/events/{event_id}")
        if st != 200:
            missing.append(f"GET /v1/calendar/events/{event_id} (booked {start}) -> {st} {body}")
            continue
        data = body.get("data", {}) if isinstance(body, dict) else {}
        if data.get("id") != event_id or data.get("startTime") != start or data.get("status") != "confirmed":
            wrong.append(f"GET /v1/calendar/events/{event_id} (booked {start}) -> 200 {body}")
            continue
        verified += 1

    st, body = api(server.base, key, "GET", f"/v1/calendar/events?calendarId={calendar_id}&limit=1")
    listed = expect(st, body, 200, "list events")["pagination"]["total"]

    server.stop()

    print()
    print("=== crash test summary ===")
    print(f"workers                     {args.workers}")
    print(f"acked 201s                  {len(acked)} ({acked_before_kill} before the kill, {late_acks} read after it)")
    print(f"workers running at the kill {active_at_kill}/{args.workers}")
    print(f"errors after the kill       {errors_after_kill} (expected: connection errors)")
    print(f"errors before the kill      {len(errors_before_kill)}")
    print(f"non-201 answers             {len(unexpected)}")
    print(f"verified after restart      {verified}")
    print(f"missing after restart       {len(missing)}")
    print(f"wrong after restart         {len(wrong)}")
    print(f"list total after restart    {listed} (must be >= {len(acked)} and <= {len(acked) + args.workers})")

    failures: list[str] = []
    if premature_exit is not None:
        failures.append(
            f"the server exited (status {premature_exit}) before the SIGKILL without being told to by this test "
            "(a graceful shutdown means something sent it SIGINT/SIGTERM); its log says:\n      "
            + "\n      ".join(
                [line for line in first_life_log if re.search(r"shutdown|stopped|panic|ERROR|WARN", line)][-10:]
            )
        )
    if acked_before_kill < args.min_acked:
        failures.append(f"only {acked_before_kill} bookings acked before the kill (< {args.min_acked}): the load did not run")
    if active_at_kill < args.workers:
        failures.append(f"only {active_at_kill}/{args.workers} workers were still running at the kill")
    if missing:
        failures.append(f"{len(missing)} acked bookings are missing after the restart")
    if wrong:
        failures.append(f"{len(wrong)} acked bookings read back different after the restart")
    if listed < len(acked):
        failures.append(f"the list total {listed} is below the {len(acked)} acked bookings")
    if listed > len(acked) + args.workers:
        failures.append(f"the list total {listed} exceeds acked + in-flight ({len(acked)} + {args.workers})")
    if errors_before_kill:
        failures.append(f"{len(errors_before_kill)} transport errors before the kill")
    if unexpected:
        failures.append(f"{len(unexpected)} non-201 answers to bookings of distinct free slots")

    for title, items in (("missing", missing), ("wrong", wrong), ("errors before the kill", errors_before_kill),
                         ("non-201 answers", unexpected)):
        if items:
            print(f"\n--- {title} (first 10) ---")
            for item in items[:10]:
                print("  " + item)

    if failures:
        print("\nFAIL:")
        for f in failures:
            print("  - " + f)
        print("\n--- server log tail ---")
        print(server.log_tail())
        return 1
    print("\nPASS: every acked booking survived kill -9")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO_ROOT, "target", "debug", "quando"),
                    help="the quando binary (default: target/debug/quando)")
    ap.add_argument("--database-url", help="a fresh database (default: a new SQLite file in a temp dir)")
    ap.add_argument("--postgres-admin-url",
                    help="create a scratch database quando_crash_<random> through this URL with psql, drop it after")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--seconds-before-kill", type=float, default=3.0)
    ap.add_argument("--min-acked", type=int, default=50,
                    help="fail if fewer bookings were acked before the kill (default 50)")
    ap.add_argument("--keep-log", action="store_true", help="keep the temp dir with the server log")
    args = ap.parse_args()

    if args.database_url and args.postgres_admin_url:
        ap.error("give --database-url or --postgres-admin-url, not both")
    args.binary = os.path.abspath(args.binary)
    if not os.access(args.binary, os.X_OK):
        ap.error(f"{args.binary} is not an executable; build it with `cargo build -p quando-api`")

    workdir = tempfile.mkdtemp(prefix="quando-crash-")
    scratch_db = None
    admin_url = args.postgres_admin_url
    t0 = time.monotonic()
    try:
        if args.database_url:
            database_url = args.database_url
        elif admin_url:
            name = "quando_crash_" + secrets.token_hex(6)
            psql(admin_url, f'CREATE DATABASE "{name}"')
            scratch_db = name
            database_url = with_db_name(admin_url, scratch_db)
        else:
            database_url = f"sqlite://{os.path.join(workdir, 'crash.db')}?mode=rwc"
        rc = run(args, database_url, workdir)
    except Exception as e:  # noqa: BLE001 - report and fail
        log(f"ERROR: {type(e).__name__}: {e}")
        if isinstance(e, subprocess.CalledProcessError) and e.stderr:
            print(e.stderr if isinstance(e.stderr, str) else e.stderr.decode(errors="replace"))
        log_path = os.path.join(workdir, "server.log")
        if os.path.exists(log_path):
            print("--- server log tail ---\n" + log_tail(log_path))
        rc = 1
    finally:
        if scratch_db:
            try:
                psql(admin_url, f'DROP DATABASE IF EXISTS "{scratch_db}" WITH (FORCE)')
            except subprocess.CalledProcessError as e:
                log(f"could not drop {scratch_db}: {e}")
                rc = 1
        if not args.keep_log:
            shutil.rmtree(workdir, ignore_errors=True)
    log(f"done in {time.monotonic() - t0:.1f} s, exit {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
