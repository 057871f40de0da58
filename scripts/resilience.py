#!/usr/bin/env python3
"""Resilience suite for sipas: what the service promises when things break under load.

Run through scripts/resilience.sh (it builds the binary and cleans up whatever happens).
Scenarios, each bounded in time:
  1. kill -9 ledger (SQLite and a private PostgreSQL): no acknowledged submission lost or doubled
  2. PostgreSQL stop -m fast / start, then stop -m immediate, mid-load: 503 within 2 s, back after
  3. SQLite write lock held by another process: 503 + Retry-After within ~5 s, 201 after
  4. slow microdata downloads: per-user and global slots, submissions not starved
  4b. SIGTERM while a download is stalled: exit 0 at the shutdown timeout, no panic
  5. SIGTERM: in-flight requests complete, exit 0, no new connection served
  6. slowloris heads and bodies at 1 byte/s: 408, the rest keeps working
Prints a table (scenario | figure | value | verdict) and exits 1 when a guarantee fails.
Standard library only.
"""

import argparse
import base64
import collections
import hashlib
import hmac
import http.client
import json
import math
import os
import random
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import unicodedata
import uuid

UNIT = "QNM.TK.AM"
ITEMS = ["A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "B5", "C1", "C2", "C3", "C4", "C5", "C6",
         "D1", "D2", "D3", "E1", "E2", "E3", "E4"]
PASSWORD = "Resilience-Suite-Passphrase-7"
# Rate limits are per client address and every client here is 127.0.0.1: lifted.
LIFTED_LIMITS = {
    "SIPAS_SUBMIT_PER_MINUTE": "1000000",
    "SIPAS_SIGN_INS_PER_MINUTE": "1000000",
    "SIPAS_CODE_ATTEMPTS_PER_HOUR": "1000000",
    "SIPAS_KIOSK_PER_MINUTE": "1000000",
}

def pg_bindir():
    """SIPAS_PG_BINDIR, else the newest Debian PostgreSQL install (/usr/lib/postgresql/N/bin)."""
    if os.environ.get("SIPAS_PG_BINDIR"):
        return os.environ["SIPAS_PG_BINDIR"]
    root = "/usr/lib/postgresql"
    versions = sorted((d for d in os.listdir(root) if d.isdigit()), key=int) if os.path.isdir(root) else []
    return f"{root}/{versions[-1]}/bin" if versions else f"{root}/15/bin"


PG_BINDIR = pg_bindir()

ARGS = None  # parsed command line
now = time.monotonic


def say(msg):
    print(msg, flush=True)


def submission_key(sid):
    return hashlib.sha256(uuid.UUID(sid).bytes).hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


def secs(x):
    return "n/a" if x is None else f"{x:.2f} s"


def ms(x):
    return "n/a" if x is None else f"{x * 1000:.0f} ms"


# The survey page's signed token a scenario's submissions carry (None: bare API posts, which
# are stored flagged and stay out of the tallies).
FORM_TOKEN = None


def form_token(secret, age_ms=60_000):
    """A token as `reach::limits::form_token` mints it, for a page served `age_ms` ago."""
    ms = int(time.time() * 1000) - age_ms
    mac = hmac.new(secret.encode(), ms.to_bytes(8, "big", signed=True), hashlib.sha256).digest()[:16]
    return f"{ms}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def submission(sid, rng=random):
    body = {"submission_id": sid, "unit": UNIT, "form": "sipas-2017", "respondent_type": "citizen",
            "channel": "online", "answers": {code: rng.randint(1, 5) for code in ITEMS}}
    if FORM_TOKEN:
        body["form_token"] = FORM_TOKEN
    return body


# --------------------------------------------------------------------------- the table

class Table:
    def __init__(self):
        self.rows = []

    def info(self, scenario, figure, value):
        self.rows.append((scenario, figure, str(value), ""))

    def check(self, scenario, figure, value, ok):
        self.rows.append((scenario, figure, str(value), "ok" if ok else "FAIL"))
        if not ok:
            say(f"   FAIL: {scenario}: {figure} = {value}")
        return ok

    def skip(self, scenario, why):
        self.rows.append((scenario, "skipped", why, "SKIP"))

    def failed(self):
        return [r for r in self.rows if r[3] == "FAIL"]

    def print(self):
        w = [max(len(r[i]) for r in self.rows + [("scenario", "figure", "value", "verdict")]) for i in range(4)]
        line = "+-" + "-+-".join("-" * x for x in w) + "-+"
        say(line)
        say("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(("scenario", "figure", "value", "verdict"))) + " |")
        say(line)
        last = None
        for r in self.rows:
            if last is not None and r[0] != last:
                say(line)
            last = r[0]
            say("| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |")
        say(line)


TABLE = Table()


# --------------------------------------------------------------------------- the service

def base_env():
    # Nothing of the caller's own sipas configuration leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPAS_") and k != "RUST_LOG"}
    env.update(LIFTED_LIMITS)
    env.update(SIPAS_HOST="127.0.0.1", SIPAS_FORMS_DIR=os.path.join(ARGS.repo, "survey-forms"),
               SIPAS_LOG="warn", SIPAS_COOKIE_SECURE="false", RUST_BACKTRACE="1")
    return env


def cli(db_url, *args, stdin=None):
    env = base_env()
    env["SIPAS_DATABASE_URL"] = db_url
    r = subprocess.run([ARGS.bin, *args], env=env, cwd=ARGS.work, input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"sipas {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


def prepare_db(db_url, admins=0):
    """Units from the test fixture (not the demo's, which change) and some admin accounts."""
    cli(db_url, "units", "import", os.path.join(ARGS.repo, "tests/fixtures/sipas-2017-small/units.csv"))
    for i in range(admins):
        cli(db_url, "users", "add", "--email", f"admin{i}@resilience.test", "--role", "admin", stdin=PASSWORD)


class Service:
    """One `sipas serve`, restartable on the same port; its log is kept for the panic count."""

    started = []  # every instance, so main() can stop what a failed scenario left running

    def __init__(self, name, db_url, **settings):
        self.port = free_port()
        self.env = base_env()
        self.env.update(SIPAS_DATABASE_URL=db_url, SIPAS_PORT=str(self.port),
                        SIPAS_PUBLIC_BASE_URL=f"http://127.0.0.1:{self.port}")
        self.env.update({k: str(v) for k, v in settings.items()})
        self.log_path = os.path.join(ARGS.work, f"{name}.log")
        Service.started.append(self)
        self.proc = None
        self.panics_before = None  # log offset after which a scenario counts panics itself

    def start(self, ready=True):
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([ARGS.bin, "serve"], env=self.env, cwd=ARGS.work,
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        # The shell wrapper kills whatever is left in this list (by pid) if we die first.
        with open(os.path.join(ARGS.work, "pids"), "a") as f:
            f.write(f"{self.proc.pid}\n")
        if ready:
            self.wait_ready()

    def wait_ready(self, path="/readyz", timeout=30):
        deadline = now() + timeout
        while now() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sipas serve exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   + self.log_tail())
            try:
                if http_get(self.port, path, timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"sipas serve not ready on {path} within {timeout} s:\n" + self.log_tail())

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(35)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def http_get(port, path, headers=None, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def login(port, email):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", "/api/v1/auth/login", json.dumps({"email": email, "password": PASSWORD}),
                  {"content-type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"sign-in of {email}: {r.status} {data[:200]!r}")
        return json.loads(data)["token"]
    finally:
        c.close()


# --------------------------------------------------------------------------- load

class Load:
    """Client threads submitting fresh ids. Like the survey's offline queue, a client sends the
    same submission_id (same body) again after a connection error, a timeout, a 5xx or a 429
    until it gets 201 or 200; only then does it take a new id. stop() lets every client finish
    its current id (drain)."""

    def __init__(self, port, clients, pause=0.05, timeout=10):
        self.port, self.pause, self.timeout = port, pause, timeout
        self.lock = threading.Lock()
        self.records = []          # (sent, answered, status, retry_after?) per attempt
        self.acked = {}            # submission_id -> 201 or 200
        self.refused = collections.Counter()  # final 4xx other than 429 (should never happen)
        self.abandoned = []        # ids still unacknowledged when the drain deadline passed
        self.retries = 0
        self.first_try_200 = 0
        self._stop = threading.Event()
        self._abandon = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _client(self, i):
        rng = random.Random(f"{ARGS.seed}-{i}-{self.port}")
        conn = None
        while not self._stop.is_set():
            sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            payload = json.dumps(submission(sid, rng))
            attempt = 0
            while True:
                if self._abandon.is_set():
                    with self.lock:
                        self.abandoned.append(sid)
                    return
                attempt += 1
                t0 = now()
                status, retry_after = None, False
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                    conn.request("POST", "/api/v1/responses", payload, {"content-type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    status, retry_after = r.status, r.getheader("retry-after") is not None
                    if r.getheader("connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except TimeoutError:
                    status = "timeout"
                except (OSError, http.client.HTTPException):
                    status = "conn"
                if not isinstance(status, int) or status >= 500:
                    if conn is not None:
                        conn.close()
                    conn = None
                t1 = now()
                with self.lock:
                    self.records.append((t0, t1, status, retry_after))
                if status in (200, 201):
                    with self.lock:
                        self.acked[sid] = status
                        if status == 200 and attempt == 1:
                            self.first_try_200 += 1
                    break
                if status in ("conn", "timeout", 429) or status >= 500:
                    with self.lock:
                        self.retries += 1
                    time.sleep(self.pause)
                    continue
                with self.lock:
                    self.refused[status] += 1
                break
        if conn is not None:
            conn.close()

    def stop(self, timeout=30):
        """Drain: no new ids, every client gets its current one acknowledged (bounded)."""
        self._stop.set()
        deadline = now() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - now()))
        if any(t.is_alive() for t in self.threads):
            self._abandon.set()
            for t in self.threads:
                t.join(self.timeout + 1)

    def window(self, since=None, until=None):
        """Attempts sent at or after `since` and answered at or before `until`."""
        with self.lock:
            return [r for r in self.records
                    if (since is None or r[0] >= since) and (until is None or r[1] <= until)]

    def statuses(self, records=None):
        return collections.Counter(str(r[2]) for r in (self.records if records is None else records))


def status_text(counter):
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items())) or "none"


class Prober(threading.Thread):
    """Polls /readyz every `every` s and keeps (sent, answered, status)."""

    def __init__(self, port, every=0.1):
        super().__init__(daemon=True)
        self.port, self.every, self.records = port, every, []
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            t0 = now()
            try:
                st = http_get(self.port, "/readyz", timeout=5)[0]
            except TimeoutError:
                st = "timeout"
            except OSError:
                st = "conn"
            self.records.append((t0, now(), st))
            self._halt.wait(self.every)

    def stop(self):
        self._halt.set()
        self.join(10)


# --------------------------------------------------------------------------- ledgers

def sqlite_path(db_url):
    return db_url[len("sqlite://"):].split("?")[0]


def sqlite_query(db_url, sql):
    c = sqlite3.connect(sqlite_path(db_url), timeout=30)
    try:
        return c.execute(sql).fetchall()
    finally:
        c.close()


INCOMPLETE_SQL = ("SELECT count(*) FROM responses r WHERE "
                  f"(SELECT count(*) FROM answers a WHERE a.response_id = r.id) <> {len(ITEMS)}")


def check_ledger(scen, load, keys, incomplete):
    """Every acknowledged id stored exactly once, nothing stored that no client sent."""
    counts = collections.Counter(keys)
    acked = {submission_key(s) for s in load.acked}
    abandoned = {submission_key(s) for s in load.abandoned}
    missing = len(acked - counts.keys())
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    strangers = len(counts.keys() - acked - abandoned)
    TABLE.info(scen, "acknowledged (201 / 200 on a retry)",
               f"{len(load.acked)} ({sum(1 for v in load.acked.values() if v == 201)} / "
               f"{sum(1 for v in load.acked.values() if v == 200)})")
    TABLE.info(scen, "retries (same id resent)", load.retries)
    TABLE.check(scen, "acknowledged ids missing", missing, missing == 0)
    TABLE.check(scen, "duplicate rows (by submission_key)", duplicates, duplicates == 0)
    TABLE.check(scen, "rows = distinct keys", f"{len(keys)} = {len(counts)}", len(keys) == len(counts))
    TABLE.check(scen, "rows no client sent", strangers, strangers == 0)
    TABLE.check(scen, "rows without all 22 answers", incomplete, incomplete == 0)
    TABLE.check(scen, "ids left unacknowledged after the drain", len(load.abandoned), not load.abandoned)
    refused = sum(load.refused.values())
    TABLE.check(scen, "ids refused (4xx)", status_text(load.refused) if refused else 0, refused == 0)
    TABLE.check(scen, "200 on a first attempt (id clash)", load.first_try_200, load.first_try_200 == 0)


# --------------------------------------------------------------------------- PostgreSQL

class Postgres:
    """A private cluster, initdb'd as the postgres OS user in a temporary directory it owns."""

    def __init__(self):
        self.as_pg = self._as_pg()
        self.base = None
        self.port = free_port()

    @staticmethod
    def _as_pg():
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"]
        if subprocess.run(["sudo", "-n", "-u", "postgres", "true"], capture_output=True).returncode == 0:
            return ["sudo", "-n", "-u", "postgres"]
        return None

    def run(self, *cmd, check=True):
        r = subprocess.run([*self.as_pg, *cmd], capture_output=True, text=True, cwd="/")
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r

    def setup(self):
        say(f"== private PostgreSQL cluster on 127.0.0.1:{self.port} (initdb as postgres, fsync on)")
        self.base = self.run("mktemp", "-d", "/tmp/sipas-resilience-pg.XXXXXX").stdout.strip()
        # The shell wrapper stops and deletes it from this note if we die first.
        with open(os.path.join(ARGS.work, "pgbase"), "w") as f:
            f.write(self.base + "\n")
        self.data = os.path.join(self.base, "data")
        self.run(f"{PG_BINDIR}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--locale=C")
        self.start()

    def start(self):
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.base} "
                "-c fsync=on -c synchronous_commit=on -c max_connections=200")
        self.run(f"{PG_BINDIR}/pg_ctl", "-D", self.data, "-l", os.path.join(self.base, "server.log"),
                 "-w", "-t", "60", "-o", opts, "start")

    def stop(self, mode):
        self.run(f"{PG_BINDIR}/pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def teardown(self):
        if not self.base:
            return
        say("== private PostgreSQL cluster: stopped and deleted")
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self.run(f"{PG_BINDIR}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
        self.run("rm", "-rf", self.base, check=False)
        self.base = None
        try:
            os.unlink(os.path.join(ARGS.work, "pgbase"))
        except FileNotFoundError:
            pass

    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, sql, db="postgres"):
        r = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
                            "-Atqc", sql], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {sql}: {r.stderr}")
        return r.stdout.splitlines()

    def create_db(self, name):
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)


# --------------------------------------------------------------------------- 1. kill -9

TALLY_COLUMNS = "unit_id, grain, period_start, form_id, form_version, respondent_type, channel, service"


def tallies_sql(hex_of):
    """Every counted cell, in key order, its counts as hex: compared before and after a rebuild."""
    return (f"SELECT {TALLY_COLUMNS}, {hex_of} FROM tallies WHERE responses > 0 "
            f"ORDER BY {TALLY_COLUMNS}")


def scenario_kill(label, db_url, keys_of, incomplete_of, query):
    scen = f"1 kill -9 ({label})"
    kills = ARGS.kills
    say(f"== {scen}: 16 clients, {kills} SIGKILLs at random 1-3 s intervals, restart at once")
    global FORM_TOKEN
    prepare_db(db_url)
    svc = Service(f"kill-{label}", db_url)
    svc.start()
    # As from the survey page: counted in the tallies, which are checked at the end.
    FORM_TOKEN = form_token(query("SELECT value FROM secrets WHERE name = 'form_token'")[0][0])
    load = Load(svc.port, 16).start()
    rng = random.Random(f"{ARGS.seed}-kill-{label}")
    restarts, signals = [], collections.Counter()
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(1, 3))
            signals[svc.kill9()] += 1
            t = now()
            svc.start()
            restarts.append(now() - t)
        time.sleep(1)  # the last process serves what the clients kept retrying
        load.stop(timeout=30)
        keys = keys_of()
        incomplete = incomplete_of()
    finally:
        svc.stop()
        FORM_TOKEN = None
    # Killed between a commit and its fold, an instance leaves rows in `unfolded`: the next
    # start folds them, and the tallies then equal a recount of the answers.
    svc.start()
    svc.stop()
    unfolded = int(query("SELECT count(*) FROM unfolded")[0][0])
    before = query(tallies_sql(TALLY_HEX[label]))
    cli(db_url, "tallies", "rebuild")
    after = query(tallies_sql(TALLY_HEX[label]))
    differ = sum(1 for a, b in zip(before, after) if a != b) + abs(len(before) - len(after))
    TABLE.check(scen, "kills (SIGKILL, restarted at once)", kills,
                signals.get(-signal.SIGKILL, 0) == kills)
    TABLE.info(scen, "restart to ready: median / max", f"{secs(pct(restarts, .5))} / {secs(max(restarts))}")
    check_ledger(scen, load, keys, incomplete)
    TABLE.check(scen, "responses left unfolded after a restart", unfolded, unfolded == 0)
    TABLE.check(scen, "tally cells against a recount of the answers", f"{len(before)} cells, {differ} differ",
                differ == 0 and len(before) > 0)
    other5xx = sum(1 for r in load.records if isinstance(r[2], int) and r[2] >= 500 and r[2] != 503)
    TABLE.check(scen, "answers 5xx other than 503", other5xx, other5xx == 0)


# --------------------------------------------------------------------------- 2. PostgreSQL stop/start

def scenario_pg_stop(pg):
    scen = "2 PostgreSQL stop/start"
    say(f"== {scen}: 8 clients; pg_ctl stop -m fast for {ARGS.down:g} s, start; then stop -m immediate")
    db_url = pg.create_db("resilience_stop")
    prepare_db(db_url)
    svc = Service("pg-stop", db_url)
    svc.start()
    load = Load(svc.port, 8).start()
    probe = Prober(svc.port)
    probe.start()
    try:
        time.sleep(ARGS.warm)
        t_stop = now()
        pg.stop("fast")
        t_down = now()
        time.sleep(ARGS.down)
        t_start = now()
        pg.start()
        t_up = now()
        first_201 = wait_for(lambda: first_answer(load, 201, after=t_start), 30)
        time.sleep(ARGS.warm)
        t_crash = now()
        pg.stop("immediate")
        t_crashed = now()
        time.sleep(ARGS.down)
        t_start2 = now()
        pg.start()
        t_up2 = now()
        first_201_2 = wait_for(lambda: first_answer(load, 201, after=t_start2), 30)
        time.sleep(ARGS.warm)
        load.stop(timeout=30)
        probe.stop()
        keys = pg.psql("SELECT submission_key FROM responses", db=db_url.rsplit("/", 1)[1])
        incomplete = int(pg.psql(INCOMPLETE_SQL, db=db_url.rsplit("/", 1)[1])[0])
    finally:
        probe.stop()
        svc.stop()

    TABLE.info(scen, "pg_ctl stop -m fast took", secs(t_down - t_stop))
    first_503 = first_answer(load, 503, after=t_stop)
    TABLE.check(scen, "stop -> first 503 to a client", secs(None if first_503 is None else first_503 - t_stop),
                first_503 is not None and first_503 - t_stop <= 2.0 + (t_down - t_stop))
    down = load.window(since=t_down, until=t_start)
    lat = [r[1] - r[0] for r in down]
    st = load.statuses(down)
    TABLE.check(scen, "answers while down (sent after the stop)", status_text(st),
                bool(down) and set(st) == {"503"})
    TABLE.check(scen, "latency while down: p95 / max (target 2 s)",
                f"{secs(pct(lat, .95))} / {secs(max(lat) if lat else None)}", bool(lat) and max(lat) <= 2.0)
    in_flight = [r for r in load.records if r[0] < t_down and r[1] > t_stop]
    TABLE.check(scen, "requests in flight at the stop: answers, max",
                f"{status_text(load.statuses(in_flight))}; {secs(max((r[1] - r[0] for r in in_flight), default=None))}",
                all(str(r[2]) in ("201", "200", "503") for r in in_flight))
    no_ra = sum(1 for r in load.records if r[2] == 503 and not r[3])
    TABLE.check(scen, "503 without Retry-After", no_ra, no_ra == 0)
    ready_down = [r for r in probe.records if r[0] >= t_down and r[1] <= t_start]
    TABLE.check(scen, "/readyz while down", status_text(collections.Counter(str(r[2]) for r in ready_down)),
                bool(ready_down) and all(r[2] == 503 for r in ready_down))
    TABLE.check(scen, "pg_ctl start -> first 201 (after start returned)",
                f"{secs(None if first_201 is None else first_201 - t_start)} "
                f"({secs(None if first_201 is None else first_201 - t_up)})", first_201 is not None)
    first_503_2 = first_answer(load, 503, after=t_crash)
    TABLE.info(scen, "stop -m immediate -> first 503", secs(None if first_503_2 is None else first_503_2 - t_crash))
    down2 = load.window(since=t_crashed, until=t_start2)
    lat2 = [r[1] - r[0] for r in down2]
    TABLE.check(scen, "after -m immediate: answers while down, max latency",
                f"{status_text(load.statuses(down2))}; {secs(max(lat2) if lat2 else None)}",
                bool(down2) and all(r[2] == 503 for r in down2) and max(lat2) <= 2.0)
    TABLE.check(scen, "pg_ctl start after -m immediate -> first 201",
                f"{secs(None if first_201_2 is None else first_201_2 - t_start2)} "
                f"({secs(None if first_201_2 is None else first_201_2 - t_up2)})", first_201_2 is not None)
    check_ledger(scen, load, keys, incomplete)
    other5xx = sum(1 for r in load.records if isinstance(r[2], int) and r[2] >= 500 and r[2] != 503)
    TABLE.check(scen, "answers 5xx other than 503", other5xx, other5xx == 0)


def first_answer(load, status, after):
    """When the first answer with `status` arrived after `after` (None if none yet)."""
    with load.lock:
        times = [r[1] for r in load.records if r[2] == status and r[1] >= after]
    return min(times) if times else None


def wait_for(fn, timeout):
    deadline = now() + timeout
    while now() < deadline:
        v = fn()
        if v is not None:
            return v
        time.sleep(0.05)
    return None


# --------------------------------------------------------------------------- 3. SQLite write lock

def scenario_sqlite_lock():
    scen = "3 SQLite write lock"
    say(f"== {scen}: another process holds BEGIN EXCLUSIVE for {ARGS.lock:g} s under 8 clients")
    db_url = f"sqlite://{ARGS.work}/lock.db?mode=rwc"
    prepare_db(db_url)
    svc = Service("sqlite-lock", db_url)
    svc.start()
    load = Load(svc.port, 8).start()
    probe = Prober(svc.port, every=0.25)
    probe.start()
    try:
        time.sleep(ARGS.warm)
        holder = sqlite3.connect(sqlite_path(db_url), timeout=30, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        t_lock = now()
        time.sleep(ARGS.lock)
        holder.execute("ROLLBACK")
        t_release = now()
        holder.close()
        first_201 = wait_for(lambda: first_answer(load, 201, after=t_release), 15)
        time.sleep(1)
        load.stop(timeout=30)
        probe.stop()
        keys = [r[0] for r in sqlite_query(db_url, "SELECT submission_key FROM responses")]
        incomplete = sqlite_query(db_url, INCOMPLETE_SQL)[0][0]
    finally:
        probe.stop()
        svc.stop()
    # Answered while the lock was held (a commit that got in just before the lock may answer a
    # few ms after it: 0.2 s of grace).
    locked = [r for r in load.window(until=t_release) if r[1] >= t_lock + 0.2]
    lat = [r[1] - r[0] for r in locked]
    st = load.statuses(locked)
    TABLE.check(scen, "answers during the lock", status_text(st),
                bool(locked) and set(st) == {"503"})
    TABLE.check(scen, "their times: min / median / max (target ~5 s)",
                f"{secs(min(lat) if lat else None)} / {secs(pct(lat, .5))} / {secs(max(lat) if lat else None)}",
                bool(lat) and max(lat) <= 5.5)
    no_ra = sum(1 for r in locked if r[2] == 503 and not r[3])
    TABLE.check(scen, "503 without Retry-After", no_ra, no_ra == 0)
    ready = [r for r in probe.records if r[0] >= t_lock and r[1] <= t_release]
    TABLE.check(scen, "/readyz during the lock (max time)",
                f"{status_text(collections.Counter(str(r[2]) for r in ready))} "
                f"({secs(max((r[1] - r[0] for r in ready), default=None))})",
                bool(ready) and all(r[2] == 503 for r in ready))
    TABLE.check(scen, "release -> first 201", secs(None if first_201 is None else first_201 - t_release),
                first_201 is not None and first_201 - t_release <= 2.0)
    check_ledger(scen, load, keys, incomplete)


# --------------------------------------------------------------------------- 4. slow exports

VI_WORDS = unicodedata.normalize("NFC", (
    "thủ tục hành chính cán bộ tiếp nhận hồ sơ nhanh chóng nhiệt tình hướng dẫn rõ ràng thời gian "
    "chờ đợi lâu phí lệ phí công khai minh bạch phường xã huyện tỉnh người dân hài lòng cải thiện "
    "phục vụ trực tuyến một cửa giấy tờ chứng thực hộ tịch đất đai xây dựng quầy tiếp dân sạch sẽ "
    "thái độ lịch sự trả kết quả đúng hẹn phần mềm khó dùng bãi đỗ xe chật chội")).split()


def write_import(path, n, rng):
    """n paper responses of 2024, each with a ~1,900-character Vietnamese comment."""
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            words, length = [], 0
            while length < 1900:
                w = rng.choice(VI_WORDS)
                words.append(w)
                length += len(w) + 1
            line = submission(str(uuid.UUID(int=rng.getrandbits(128), version=4)), rng)
            line.update(channel="paper", respondent_type=rng.choice(["citizen", "organization"]),
                        date=f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                        comment=" ".join(words)[:1900])
            f.write(json.dumps(line, ensure_ascii=False) + "\n")


def open_stalled_download(port, token):
    """A microdata download whose client reads the answer's head and then nothing: with a 4 KiB
    receive buffer and ~16 MB to send, the server's stream blocks and holds its slot."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(15)
    t0 = now()
    s.connect(("127.0.0.1", port))
    s.sendall((f"GET /api/v1/exports/microdata.csv?within=QNM&period=2024&comments=true HTTP/1.1\r\n"
               f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
    head = b""
    try:
        while b"\r\n\r\n" not in head and len(head) < 4096:
            chunk = s.recv(1024)
            if not chunk:
                break
            head += chunk
    except TimeoutError:
        pass
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = "none"
    return s, status, now() - t0


def scenario_exports():
    scen = "4 slow exports"
    n = ARGS.import_rows
    say(f"== {scen}: {n} responses with long comments; 3 admins x 2 stalled downloads; 8 clients {ARGS.load:g} s")
    db_url = f"sqlite://{ARGS.work}/exports.db?mode=rwc"
    prepare_db(db_url, admins=3)
    jsonl = os.path.join(ARGS.work, "comments.jsonl")
    t = now()
    write_import(jsonl, n, random.Random(f"{ARGS.seed}-import"))
    cli(db_url, "responses", "import", jsonl)
    TABLE.info(scen, "data", f"{n} responses of 2024, ~1,900-char comments (import {secs(now() - t)})")
    svc = Service("exports", db_url, SIPAS_MAX_DB_CONNECTIONS=10)
    svc.start()
    socks = []
    try:
        tokens = [login(svc.port, f"admin{i}@resilience.test") for i in range(3)]
        run_load(svc.port, 8, 1.5)  # warm-up (first-use caches), not measured
        base = run_load(svc.port, 8, ARGS.load)
        opened = []
        for tok in tokens:
            for _ in range(2):
                s, status, dt = open_stalled_download(svc.port, tok)
                socks.append(s)
                opened.append((status, dt))
        extra = []
        for tok in tokens:
            s, status, dt = open_stalled_download(svc.port, tok)
            socks.append(s)
            extra.append((status, dt))
        loaded = run_load(svc.port, 8, ARGS.load)
        for s in socks:
            s.close()
        socks = []
        # Closing the stalled clients must give the slots back.
        freed = None
        deadline = now() + 10
        while now() < deadline:
            s, status, _ = open_stalled_download(svc.port, tokens[0])
            s.close()
            if status == 200:
                freed = status
                break
            time.sleep(0.5)
        time.sleep(1)  # that abandoned download ends before the stop below
        stalled_stop = sigterm_with_stalled_download(svc, tokens[0])
    finally:
        for s in socks:
            s.close()
        svc.stop()
    for name, ld in (("baseline, no export", base), ("with stalled exports", loaded)):
        lat = [r[1] - r[0] for r in ld.records]
        bad = sum(1 for r in ld.records if r[2] not in (200, 201))
        TABLE.info(scen, f"submissions {name}: n", len(ld.records))
        TABLE.info(scen, f"submissions {name}: p50 / p95 / p99",
                   f"{ms(pct(lat, .5))} / {ms(pct(lat, .95))} / {ms(pct(lat, .99))}")
        TABLE.check(scen, f"submissions {name}: non-2xx", bad if not bad else status_text(
            collections.Counter(str(r[2]) for r in ld.records if r[2] not in (200, 201))), bad == 0)
    # A starved pool shows as 1.5 s waits then 503s; SQLite's fsyncs make p99 noisy, hence
    # the baseline's own p99 as a second allowance.
    lat = [r[1] - r[0] for r in loaded.records]
    limit = max(1.5, 2 * (pct([r[1] - r[0] for r in base.records], .99) or 0))
    TABLE.check(scen, f"p99 with exports under {secs(limit)} (max of 1.5 s, 2 x baseline)", ms(pct(lat, .99)),
                bool(lat) and pct(lat, .99) < limit)
    held = sum(1 for st, _ in opened if st == 200)
    TABLE.check(scen, "stalled downloads opened (200; slots = pool/2 = 5)",
                f"{held} of 6 (" + " ".join(str(st) for st, _ in opened) + ")", held == 5)
    # The slot wait is 2 s; the pages the streams build on the same workers can delay the
    # answer a little on a busy machine. Queued behind the stalled downloads would be forever.
    sixth = [(st, dt) for st, dt in opened if st != 200]
    TABLE.check(scen, "the download beyond the 5 slots (503, 2 s wait, within 4 s)",
                ", ".join(f"{st} in {secs(dt)}" for st, dt in sixth),
                len(sixth) == 1 and all(st == 503 and dt <= 4.0 for st, dt in sixth))
    TABLE.check(scen, "third download of each admin (429, or 503 within 4 s)",
                ", ".join(f"{st} in {secs(dt)}" for st, dt in extra),
                all(st in (429, 503) and dt <= 4.0 for st, dt in extra))
    TABLE.check(scen, "a download after the stalled ones closed", freed if freed else "no 200 within 10 s",
                freed == 200)
    report_stalled_stop(stalled_stop)


def sigterm_with_stalled_download(svc, token):
    """SIGTERM while a download is under way and its client reads nothing: the server can only
    give up on it at its shutdown timeout (30 s), and must still stop cleanly."""
    s, status, _ = open_stalled_download(svc.port, token)
    log_from = os.path.getsize(svc.log_path)
    svc.panics_before = log_from  # what follows is counted here, not in the global count
    svc.proc.send_signal(signal.SIGTERM)
    t = now()
    time.sleep(1)
    newcomer = new_connection_outcome(svc.port) if svc.proc.poll() is None else "exited"
    try:
        rc = svc.proc.wait(40)
    except subprocess.TimeoutExpired:
        rc = "still running after 40 s"
    t_exit = now() - t
    s.close()
    with open(svc.log_path, errors="replace") as f:
        f.seek(log_from)
        lines = f.read().splitlines()
    # "thread '…' panicked at …/sqlx-core-0.9.0/src/pool/connection.rs:208:13:" + the message
    panics = [re.sub(r".*panicked at (?:.*/)?([^/]+/src/.*?:\d+):\d+:", r"\1", line) + " " + nxt
              for line, nxt in zip(lines, lines[1:] + [""]) if "panicked at" in line]
    return {"status": status, "rc": rc, "exit": t_exit, "newcomer": newcomer, "panics": panics}


def report_stalled_stop(r):
    scen = "4b SIGTERM, download stalled"
    TABLE.check(scen, "download open at SIGTERM (client reads nothing)", r["status"], r["status"] == 200)
    TABLE.check(scen, "new connection 1 s after SIGTERM", r["newcomer"], r["newcomer"] in ("refused", 503, "exited"))
    TABLE.check(scen, "exit status", r["rc"], r["rc"] == 0)
    TABLE.check(scen, "SIGTERM -> exit (the 30 s shutdown timeout)", secs(r["exit"]), r["exit"] <= 31.0)
    TABLE.check(scen, "panics after SIGTERM", len(r["panics"]) if not r["panics"] else
                f"{len(r['panics'])}: {r['panics'][0][:120]}", not r["panics"])


def run_load(port, clients, seconds):
    load = Load(port, clients).start()
    time.sleep(seconds)
    load.stop(timeout=30)
    return load


# --------------------------------------------------------------------------- 5. SIGTERM

def slow_post(port, chunks, every, out):
    """A submission whose body arrives in `chunks` pieces, one every `every` s."""
    sid = str(uuid.uuid4())
    body = json.dumps(submission(sid)).encode()
    size = math.ceil(len(body) / chunks)
    t0 = now()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=40)
        s.sendall((f"POST /api/v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode())
        for i in range(0, len(body), size):
            time.sleep(every)
            s.sendall(body[i:i + size])
        answer = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        s.close()
        status = int(answer.split(b" ", 2)[1]) if answer else "closed"
    except TimeoutError:
        status = "timeout"
    except OSError as e:
        status = f"error {e.errno}"
    out.append((sid, status, t0, now()))


def new_connection_outcome(port):
    """What a client arriving after SIGTERM gets: refused is fine, so is a 503."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return f"error {e.errno}"
    try:
        s.settimeout(3)
        body = json.dumps(submission(str(uuid.uuid4()))).encode()
        s.sendall((f"POST /api/v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
        answer = s.recv(4096)
        return int(answer.split(b" ", 2)[1]) if answer else "closed"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except TimeoutError:
        return "no answer in 3 s"
    finally:
        s.close()


def scenario_sigterm():
    scen = "5 SIGTERM drain"
    say(f"== {scen}: 10 bodies sent in 7 chunks 300 ms apart, SIGTERM while they arrive")
    db_url = f"sqlite://{ARGS.work}/sigterm.db?mode=rwc"
    prepare_db(db_url)
    svc = Service("sigterm", db_url)
    svc.start()
    out = []
    threads = [threading.Thread(target=slow_post, args=(svc.port, 7, 0.3, out), daemon=True) for _ in range(10)]
    for t in threads:
        t.start()
    time.sleep(0.8)  # every head sent, bodies half way
    svc.proc.send_signal(signal.SIGTERM)
    t_sig = now()
    newcomers = []
    while svc.proc.poll() is None and now() - t_sig < 35:
        time.sleep(0.25)
        if svc.proc.poll() is None:
            newcomers.append(new_connection_outcome(svc.port))
    try:
        rc = svc.proc.wait(max(0.1, 35 - (now() - t_sig)))
    except subprocess.TimeoutExpired:
        rc = "still running after 35 s"
        svc.proc.kill()
        svc.proc.wait()
    t_exit = now() - t_sig
    for t in threads:
        t.join(5)
    statuses = collections.Counter(str(st) for _, st, _, _ in out)
    in_flight = sum(1 for _, _, t0, t1 in out if t0 < t_sig < t1)
    TABLE.info(scen, "requests in flight at SIGTERM", f"{in_flight} of {len(out)}")
    TABLE.check(scen, "their answers", status_text(statuses), statuses.get("201", 0) == 10)
    TABLE.check(scen, "exit status", rc, rc == 0)
    TABLE.check(scen, "SIGTERM -> exit (shutdown timeout 30 s)", secs(t_exit), t_exit <= 30)
    nc = collections.Counter(str(x) for x in newcomers)
    TABLE.check(scen, "new connections after SIGTERM", status_text(nc),
                all(x in ("refused", 503) for x in newcomers))
    stored = {r[0] for r in sqlite_query(db_url, "SELECT submission_key FROM responses")}
    lost = sum(1 for sid, st, _, _ in out if st == 201 and submission_key(sid) not in stored)
    TABLE.check(scen, "201 answers not stored", lost, lost == 0)


# --------------------------------------------------------------------------- 6. slowloris

class Trickle(threading.Thread):
    """Sockets that each send `first` at once, then `rest` one byte every `every` s, and note when
    the server answers (its status) and when it closes."""

    def __init__(self, port, conns, every):
        super().__init__(daemon=True)
        self.every = every
        self.conns = []
        for first, rest in conns:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if first:
                s.sendall(first)
            s.setblocking(False)
            self.conns.append({"sock": s, "rest": rest, "t0": now(), "next": now() + every,
                               "answer": b"", "answered": None, "closed": None})
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            live = [c for c in self.conns if c["closed"] is None]
            if not live:
                return
            t = now()
            for c in live:
                if c["rest"] and t >= c["next"]:
                    try:
                        c["sock"].send(c["rest"][:1])
                        c["rest"] = c["rest"][1:]
                    except BlockingIOError:
                        pass
                    except OSError:
                        c["closed"] = now()
                    c["next"] += self.every
            readable, _, _ = select.select([c["sock"] for c in live if c["closed"] is None], [], [], 0.05)
            for c in live:
                if c["sock"] in readable:
                    try:
                        data = c["sock"].recv(4096)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if data:
                        if c["answered"] is None:
                            c["answered"] = now()
                        c["answer"] += data
                    else:
                        c["closed"] = now()

    def stop(self):
        self._halt.set()
        self.join(5)
        for c in self.conns:
            c["sock"].close()

    @staticmethod
    def status(c):
        try:
            return int(c["answer"].split(b" ", 2)[1])
        except (IndexError, ValueError):
            return None


def scenario_slowloris():
    scen = "6 slowloris"
    say(f"== {scen}: 200 heads a byte at a time, 20 bodies at 1 byte/s, request_timeout 5 s, 4 clients")
    db_url = f"sqlite://{ARGS.work}/slowloris.db?mode=rwc"
    prepare_db(db_url)
    svc = Service("slowloris", db_url, SIPAS_REQUEST_TIMEOUT_SECONDS=5)
    svc.start()
    head = (b"POST /api/v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"User-Agent: slowloris\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n")
    body = json.dumps(submission(str(uuid.uuid4()))).encode()
    body_head = (f"POST /api/v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n").encode()
    load = Load(svc.port, 4).start()
    heads = bodies = None
    try:
        time.sleep(1)
        heads = Trickle(svc.port, [(b"", head)] * 200, every=0.5)
        bodies = Trickle(svc.port, [(body_head, body)] * 20, every=1.0)
        t_attack = now()
        heads.start()
        bodies.start()
        time.sleep(16)
        load.stop(timeout=30)
    finally:
        for t in (heads, bodies):
            if t is not None:
                t.stop()
        svc.stop()
    during = load.window(since=t_attack, until=t_attack + 16)
    lat = [r[1] - r[0] for r in during]
    bad = [r for r in during if r[2] not in (200, 201)]
    TABLE.check(scen, "normal submissions meanwhile: n, p95 (under 1 s)", f"{len(during)}, {ms(pct(lat, .95))}",
                bool(lat) and pct(lat, .95) < 1.0)
    TABLE.check(scen, "normal submissions meanwhile: errors",
                status_text(collections.Counter(str(r[2]) for r in bad)) if bad else 0, not bad)
    got = [(Trickle.status(c), c["answered"] - c["t0"]) for c in bodies.conns if c["answered"] is not None]
    times = [dt for st, dt in got if st == 408]
    TABLE.check(scen, "slow bodies answered 408", f"{len(times)} of 20", len(times) == 20)
    TABLE.check(scen, "their times: min / median / max (target 5-7 s)",
                f"{secs(min(times) if times else None)} / {secs(pct(times, .5))} / {secs(max(times) if times else None)}",
                bool(times) and min(times) >= 4.5 and max(times) <= 7.0)
    closed = [c["closed"] - c["t0"] for c in heads.conns if c["closed"] is not None]
    within = sum(1 for dt in closed if dt <= 15)
    TABLE.check(scen, "slow heads closed by the server within 15 s", f"{within} of 200", within == 200)
    TABLE.info(scen, "slow heads: close time median / max", f"{secs(pct(closed, .5))} / "
               f"{secs(max(closed) if closed else None)}; answers: "
               + status_text(collections.Counter(str(Trickle.status(c)) for c in heads.conns)))


# --------------------------------------------------------------------------- main

def panics():
    """Panics in every service log, except the parts a scenario counted itself."""
    n = 0
    for svc in Service.started:
        try:
            with open(svc.log_path, errors="replace") as f:
                text = f.read() if svc.panics_before is None else f.read(svc.panics_before)
        except OSError:
            continue
        n += text.count("panicked at")
    return n


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="the sipas binary")
    p.add_argument("--work", required=True, help="a temporary directory (deleted by the caller)")
    p.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p.add_argument("--short", action="store_true", help="the CI size: 4 kills, shorter phases")
    p.add_argument("--seed", default=str(random.randrange(1 << 30)))
    p.add_argument("--only", default="1,2,3,4,5,6", help="comma-separated scenario numbers")
    ARGS = p.parse_args()
    short = ARGS.short
    ARGS.kills = 4 if short else 20
    ARGS.warm = 1.5 if short else 3.0      # load before a fault
    ARGS.down = 4.0 if short else 8.0      # PostgreSQL down
    ARGS.lock = 8.0                        # SQLite write lock held
    ARGS.load = 5.0 if short else 10.0     # each load phase of scenario 4
    ARGS.import_rows = 6000
    only = {int(x) for x in ARGS.only.split(",") if x}
    # SIGTERM from the wrapper (its trap) unwinds through the finally blocks below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    say(f"sipas resilience suite ({'short' if short else 'full'}), binary {ARGS.bin}, seed {ARGS.seed}")
    say("rate limits lifted by configuration: " + " ".join(f"{k}={v}" for k, v in LIFTED_LIMITS.items()))
    t_all = now()
    pg = Postgres()
    pg_ok = pg.as_pg is not None and shutil.which("psql") is not None
    if not pg_ok and only & {1, 2}:
        say("PostgreSQL part skipped: not root and no `sudo -u postgres`, or no psql")
    try:
        scenarios = []
        if 1 in only:
            scenarios.append(("1 kill -9 (SQLite)", kill_sqlite))
        if pg_ok and only & {1, 2}:
            scenarios.append(("PostgreSQL cluster", pg.setup))
        elif only & {1, 2}:
            TABLE.skip("1/2 PostgreSQL", "not root and no sudo -u postgres, or no psql")
        if pg_ok and 1 in only:
            scenarios.append(("1 kill -9 (PostgreSQL)", lambda: kill_pg(pg)))
        if pg_ok and 2 in only:
            scenarios.append(("2 PostgreSQL stop/start", lambda: scenario_pg_stop(pg)))
        if pg_ok and only & {1, 2}:
            scenarios.append(("PostgreSQL cluster", pg.teardown))
        if 3 in only:
            scenarios.append(("3 SQLite write lock", scenario_sqlite_lock))
        if 4 in only:
            scenarios.append(("4 slow exports", scenario_exports))
        if 5 in only:
            scenarios.append(("5 SIGTERM drain", scenario_sigterm))
        if 6 in only:
            scenarios.append(("6 slowloris", scenario_slowloris))
        for name, run in scenarios:
            t = now()
            before = len(Service.started)
            try:
                run()
            except Exception as e:  # one broken scenario still lets the others run and report
                traceback.print_exc(file=sys.stdout)
                for svc in Service.started[before:]:  # the logs go with the temporary directory
                    say(f"--- last lines of {os.path.basename(svc.log_path)}:\n{svc.log_tail()}")
                TABLE.check(name, "scenario ran to the end", f"{type(e).__name__}: {str(e)[:300]}", False)
            for svc in Service.started:
                svc.stop()
            say(f"   ({secs(now() - t)})")
    finally:
        for svc in Service.started:
            svc.stop()
        pg.teardown()
    n = panics()
    TABLE.check("all", "panics in the service logs", n, n == 0)
    TABLE.info("all", "wall time", secs(now() - t_all))
    say("")
    TABLE.print()
    failed = TABLE.failed()
    say(f"{len(failed)} guarantee(s) failed" if failed else "every guarantee held")
    return 1 if failed else 0


TALLY_HEX = {"SQLite": "lower(hex(data))", "PostgreSQL": "encode(data, 'hex')"}


def kill_sqlite():
    db_url = f"sqlite://{ARGS.work}/kill.db?mode=rwc"
    scenario_kill("SQLite", db_url,
                  lambda: [r[0] for r in sqlite_query(db_url, "SELECT submission_key FROM responses")],
                  lambda: sqlite_query(db_url, INCOMPLETE_SQL)[0][0],
                  lambda sql: [tuple(str(v) for v in r) for r in sqlite_query(db_url, sql)])


def kill_pg(pg):
    db_url = pg.create_db("resilience_kill")
    scenario_kill("PostgreSQL", db_url,
                  lambda: pg.psql("SELECT submission_key FROM responses", db="resilience_kill"),
                  lambda: int(pg.psql(INCOMPLETE_SQL, db="resilience_kill")[0]),
                  lambda sql: [tuple(r.split("|")) for r in pg.psql(sql, db="resilience_kill")])


if __name__ == "__main__":
    sys.exit(main())
