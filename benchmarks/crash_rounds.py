"""Crash rounds: `hazardvision serve` SIGKILLed during bursts of scans and reviews, then checked after each restart.

Each round drives the server of one home (SQLite in the home by default; --database-url for PostgreSQL) from
--clients threads, each with a keep-alive connection sending bursts of 1-5 requests: POST /v1/scans of real
photos (../shared/datasets test splits) and POST /v1/findings/{id}/review (confirm or reject) of findings those
scans returned. At a random moment of the round (seeded by --seed) the server gets SIGKILL; it is started again
on the same home, and then, with no client running:

- `hazardvision audit verify --home HOME` and `hazardvision bank verify --home HOME` must exit 0;
- the audit chain and the database agree exactly: every scan row has one `scan` record naming it and every
  `scan` record a row; every review row one `review.confirm`/`review.reject` record naming its finding and
  every such record a row (no record of an action that did not commit, none missing, none twice);
- every scan and review answered 2xx before the kill is in the database (an answer means committed).

Prints per round: requests sent and answered (scans, reviews; "in flight" were cut by the kill, "kept" of
them committed before it), rows, records and mismatches; then a summary. Exits 1 on any mismatch or failed verify.

    python benchmarks/crash_rounds.py [--rounds 20] [--seconds-per-round 6] [--clients 6] [--seed 15]
                                      [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))  # service_load: a script beside this one

from service_load import DATASETS, NAMES, Server, multipart

from hazardvision.access import ApiKeys, Role
from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit_records import AuditRecords
from hazardvision.data.database import Database
from hazardvision.data.service_records import ReviewRecord, ScanRecord

READY_SECONDS = 300
DATABASE_VARIABLE = "HAZARDVISION_DATABASE_URL"
SCAN_ACTION = "scan"
REVIEW_ACTIONS = ("review.confirm", "review.reject")


def real_photos(count: int) -> list[bytes]:
    """`count` real test-split photos as uploaded bytes, interleaved across the datasets."""
    per = [sorted((DATASETS / name / "images" / "test").iterdir()) for name in NAMES]
    return [p.read_bytes() for group in zip(*per, strict=False) for p in group][:count]


def command_line() -> list[str]:
    """How to run the `hazardvision` CLI of this interpreter."""
    script = Path(sys.executable).with_name("hazardvision")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from hazardvision.cli import main; main()"]


@dataclass
class HomeServer(Server):
    """A `hazardvision serve` of one home that can be killed and started again with the same inspector key."""

    database_url: str | None = None

    def environment(self) -> dict[str, str]:
        env = {**os.environ, **self.env}
        if self.database_url:
            env[DATABASE_VARIABLE] = self.database_url
        return env

    def start(self, log: Path) -> None:
        if not self.key:
            bank = SampleBank(self.home, url=self.database_url)
            self.key = ApiKeys(bank).create("crash-rounds", Role.INSPECTOR)[1]
            bank.engine.dispose()
        with log.open("ab") as sink:
            self.process = subprocess.Popen([*command_line(), "serve", "--home", str(self.home),
                                             "--port", str(self.port)],
                                            env=self.environment(), stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_SECONDS
        while self.get("/readyz")[0] != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the service did not get ready; its log:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@dataclass
class Traffic:
    """What the clients sent and what they were answered, by kind ("scan", "review")."""

    sent: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    scans_ok: set[str] = field(default_factory=set)
    reviews_ok: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def in_flight(self, kind: str) -> int:
        return self.sent[kind] - self.answered[kind]


def client(server: HomeServer, photos: list[bytes], traffic: Traffic, stop: threading.Event, seed: int) -> None:
    """Bursts of scans and reviews on one keep-alive connection until `stop` (or the server is gone)."""
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    auth = {"Authorization": f"Bearer {server.key}"}
    while not stop.is_set():
        for _ in range(rng.randint(1, 5)):
            with traffic.lock:
                finding = traffic.findings.pop(rng.randrange(len(traffic.findings))) \
                    if traffic.findings and rng.random() < 0.5 else None
            if finding is None:
                kind = "scan"
                body, content_type = multipart(photos[rng.randrange(len(photos))], f"site-{rng.randrange(10**6)}.jpg")
                path = "/v1/scans"
            else:
                kind = "review"
                body = json.dumps({"decision": rng.choice(["confirm", "reject"]), "reviewer": "crash-rounds"}).encode()
                content_type, path = "application/json", f"/v1/findings/{finding}/review"
            with traffic.lock:
                traffic.sent[kind] += 1
            try:
                connection.request("POST", path, body=body, headers={**auth, "Content-Type": content_type})
                response = connection.getresponse()
                status, text = response.status, response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                return  # the server was killed: this request is in flight, unanswered
            with traffic.lock:
                traffic.answered[kind] += 1
                if not 200 <= status < 300:
                    traffic.errors.append(f"{kind} {status} {text[:200]!r}")
                elif kind == "scan":
                    scan = json.loads(text)
                    traffic.scans_ok.add(scan["scan_id"])
                    traffic.findings.extend(f["id"] for f in scan["findings"])
                else:
                    traffic.reviews_ok.add(json.loads(text)["finding_id"])
            if stop.is_set():
                break
        time.sleep(rng.uniform(0, 0.3))
    connection.close()


def drive_and_kill(server: HomeServer, photos: list[bytes], clients: int, kill_after: float, seed: int) -> Traffic:
    """`clients` threads of bursts; SIGKILL of the server `kill_after` seconds in."""
    traffic, stop = Traffic(), threading.Event()
    threads = [threading.Thread(target=client, args=(server, photos, traffic, stop, seed * 1000 + i), daemon=True)
               for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(kill_after)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(30)
    return traffic


@dataclass
class Check:
    """The home after a restart: the verify commands and the audit chain against the database."""

    scan_rows: int = 0
    review_rows: int = 0
    scan_records: int = 0
    review_records: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.scan_rows + self.review_rows

    @property
    def records(self) -> int:
        return self.scan_records + self.review_records


def run_cli(args: list[str], env: dict[str, str], *, in_process: bool = False) -> tuple[int, str]:
    """Exit code and output of a `hazardvision` command: a subprocess, or the same CLI through typer's runner
    (`in_process`: the suite's short rounds save the CLI's imports, about 9 s a command on a loaded 2-core
    machine)."""
    if in_process:
        from typer.testing import CliRunner  # noqa: PLC0415

        from hazardvision.cli import app  # noqa: PLC0415

        variable = {DATABASE_VARIABLE: env[DATABASE_VARIABLE]} if DATABASE_VARIABLE in env else {}
        done = CliRunner().invoke(app, args, env=variable)
        return done.exit_code, done.output.strip()
    finished = subprocess.run([*command_line(), *args], check=False, env=env, capture_output=True, text=True,
                              timeout=600)
    return finished.returncode, (finished.stdout + finished.stderr).strip()


def compare(kind: str, rows: set[str], records: Counter[str], mismatches: list[str]) -> None:
    for subject in sorted(rows - set(records)):
        mismatches.append(f"{kind} {subject}: a row without its audit record")
    for subject in sorted(set(records) - rows):
        mismatches.append(f"{kind} {subject}: an audit record without its row (an action that did not commit)")
    for subject, count in sorted(records.items()):
        if count > 1:
            mismatches.append(f"{kind} {subject}: {count} audit records")


def check_home(server: HomeServer, traffic: Traffic | None = None, *, in_process: bool = False) -> Check:
    """Verify commands (see `run_cli`), then rows against records, and every answered write kept."""
    check = Check()
    env = server.environment()
    for command in (["audit", "verify"], ["bank", "verify"]):
        code, output = run_cli([*command, "--home", str(server.home)], env, in_process=in_process)
        if code != 0:
            check.mismatches.append(f"`hazardvision {' '.join(command)}` exited {code}: {output[-1500:]}")
    database = Database.of_home(server.home, url=server.database_url, create=False)
    try:
        with database.session() as session:
            scans = set(session.scalars(select(ScanRecord.id)))
            reviews = list(session.scalars(select(ReviewRecord.finding_id)))
        scan_records: Counter[str] = Counter()
        review_records: Counter[str] = Counter()
        for entry in AuditRecords(database).entries():
            if entry["action"] == SCAN_ACTION:
                scan_records[entry["subject"]] += 1
            elif entry["action"] in REVIEW_ACTIONS:
                review_records[entry["subject"]] += 1
    finally:
        database.dispose()
    check.scan_rows, check.review_rows = len(scans), len(reviews)
    check.scan_records, check.review_records = sum(scan_records.values()), sum(review_records.values())
    compare("scan", scans, scan_records, check.mismatches)
    compare("review of finding", set(reviews), review_records, check.mismatches)
    for finding, count in Counter(reviews).items():
        if count > 1:
            check.mismatches.append(f"finding {finding}: {count} review rows (a review is final)")
    if traffic is not None:
        for scan in sorted(traffic.scans_ok - scans):
            check.mismatches.append(f"scan {scan}: answered 2xx but not in the database")
        for finding in sorted(traffic.reviews_ok - set(reviews)):
            check.mismatches.append(f"review of finding {finding}: answered 2xx but not in the database")
    return check


@dataclass
class Round:
    index: int
    kill_after: float
    traffic: Traffic
    check: Check
    before: Check
    """The home as the previous round left it."""
    restart_seconds: float = 0.0
    """From the kill until the restarted server was ready."""
    check_seconds: float = 0.0

    @property
    def in_flight_kept(self) -> int:
        """Requests cut by the kill whose scan or review the database kept (committed, answer lost)."""
        return (self.check.scan_rows - self.before.scan_rows - len(self.traffic.scans_ok)
                + self.check.review_rows - self.before.review_rows - len(self.traffic.reviews_ok))

    def line(self) -> str:
        t, c = self.traffic, self.check
        return (f"round {self.index:2d}  kill at {self.kill_after:4.1f} s  "
                f"scans sent/answered {t.sent['scan']:3d}/{t.answered['scan']:3d}  "
                f"reviews {t.sent['review']:3d}/{t.answered['review']:3d}  "
                f"in flight {t.in_flight('scan') + t.in_flight('review')} (kept {self.in_flight_kept})  "
                f"rows {c.scan_rows}+{c.review_rows}  records {c.scan_records}+{c.review_records}  "
                f"errors {len(t.errors)}  mismatches {len(c.mismatches)}  "
                f"(ready in {self.restart_seconds:.0f} s, checked in {self.check_seconds:.0f} s)")


def crash_rounds(home: Path, *, rounds: int, seconds: float, clients: int = 6, seed: int = 15,
                 database_url: str | None = None, photos: list[bytes] | None = None,
                 in_process_cli: bool = False, report: Callable[[str], object] = print) -> list[Round]:
    """Run `rounds` kill-restart-check rounds on `home`; each round's result (`report` gets its line)."""
    photos = photos or real_photos(24)
    rng = random.Random(seed)
    log = home.parent / f"{home.name}-serve.log"
    server = HomeServer({}, home, database_url=database_url)
    server.start(log)
    results = []
    try:
        for index in range(1, rounds + 1):
            kill_after = rng.uniform(min(1.0, seconds / 2), seconds)
            traffic = drive_and_kill(server, photos, clients, kill_after, seed + index)
            started = time.perf_counter()
            server.start(log)  # the same home, the same port
            checked = time.perf_counter()
            check = check_home(server, traffic, in_process=in_process_cli)
            result = Round(index, kill_after, traffic, check, results[-1].check if results else Check(),
                           checked - started, time.perf_counter() - checked)
            results.append(result)
            report(result.line())
            for problem in [*traffic.errors[:3], *result.check.mismatches[:10]]:
                report(f"    {problem}")
    finally:
        server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds-per-round", type=float, default=6,
                        help="the kill comes at a random moment up to this many seconds into a round")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--database-url", help=f"the home's database ({DATABASE_VARIABLE} for the server and the "
                        "CLI); default the home's SQLite file. Use an empty database")
    parser.add_argument("--home", type=Path, help="home folder to use (default: a temporary one, removed after)")
    args = parser.parse_args()
    if not all((DATASETS / name / "images" / "test").is_dir() for name in NAMES):
        raise SystemExit(f"real photos not found: {DATASETS} needs {', '.join(NAMES)}")
    print(f"cpu cores available: {len(os.sched_getaffinity(0))}; {args.rounds} rounds, kill within "
          f"{args.seconds_per_round:g} s, {args.clients} clients, seed {args.seed}, database "
          f"{'PostgreSQL' if args.database_url else 'SQLite in the home'}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hv-crash-") as workdir:
        home = args.home or Path(workdir) / "home"
        results = crash_rounds(home, rounds=args.rounds, seconds=args.seconds_per_round, clients=args.clients,
                               seed=args.seed, database_url=args.database_url)
    sent = sum((r.traffic.sent for r in results), Counter())
    answered = sum((r.traffic.answered for r in results), Counter())
    last = results[-1].check if results else Check()
    mismatches = sum(len(r.check.mismatches) for r in results)
    errors = sum(len(r.traffic.errors) for r in results)
    print("summary")
    print(f"  rounds                   {len(results)} SIGKILLs in {time.perf_counter() - start:.0f} s")
    print(f"  scans sent / answered    {sent['scan']} / {answered['scan']}")
    print(f"  reviews sent / answered  {sent['review']} / {answered['review']}")
    print(f"  in flight at the kills   {sum(sent.values()) - sum(answered.values())} "
          f"({sum(r.in_flight_kept for r in results)} of them committed: kept, with their records)")
    print(f"  rows / records at end    {last.scan_rows} scans, {last.review_rows} reviews / "
          f"{last.scan_records} scan, {last.review_records} review records")
    print(f"  non-2xx answers          {errors}")
    print(f"  mismatches               {mismatches}")
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
