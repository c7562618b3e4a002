"""Helpers for test_schedule.py: the daemon's fast clock as Python sees it, a webhook receiver,
disks whose content changes, polling with the daemon's log in the message, and the tagging and
retention rules of docs/backups.md worked out again, independently of the Rust code."""

import hashlib
import hmac
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import Daemon

LOG_TAIL_CHARS = 8000
HASH_BLOCK = 1 << 20


class FastClock:
    """The scheduler's clock of a daemon configured with `clock_speed` and `clock_epoch`: equal to
    the wall clock at the epoch, `speed` times faster from there (also while the daemon is down)."""

    def __init__(self, speed: float, epoch: datetime):
        self.speed = speed
        self.epoch = epoch

    @classmethod
    def reaching(cls, speed: float, target: datetime) -> "FastClock":
        """A clock that shows `target` now (to a second or so): its epoch is in the past."""
        now = datetime.now(UTC)
        epoch = now - (target - now) / (speed - 1)
        return cls(speed, epoch.replace(microsecond=0))

    def now(self) -> datetime:
        return self.epoch + (datetime.now(UTC) - self.epoch) * self.speed

    def epoch_text(self) -> str:
        return self.epoch.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


class RestartableDaemon(Daemon):
    """A Daemon whose log survives restarts (`Daemon.start` truncates it): the earlier runs'
    output is kept in memory and shown before the current one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.earlier_logs = ""
        self.starts = 0

    def start(self):
        if self.log.exists():
            self.earlier_logs += self.log.read_text(errors="replace") + f"\n--- restart {self.starts} ---\n"
        self.starts += 1
        super().start()

    def kill(self):
        self.process.kill()
        self.process.wait()

    def full_log(self) -> str:
        current = self.log.read_text(errors="replace") if self.log.exists() else ""
        return self.earlier_logs + current

    def log_text(self) -> str:
        return self.full_log()[-20000:]


def log_tail(daemon) -> str:
    return "\n--- daemon log (tail) ---\n" + daemon.log_text()[-LOG_TAIL_CHARS:]


def wait_for(what: str, check, daemon, timeout: float, interval: float = 0.1):
    """Calls `check()` until it returns something truthy and returns that; fails after `timeout`
    real seconds naming `what`, the last value seen and the daemon's log."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}; last seen: {last!r}{log_tail(daemon)}"
            )
        time.sleep(interval)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 recording every request (method, path, headers, body). It
    answers 500 to the very first one, to see the daemon retry it, and 200 to all others."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if len(body) != length:
                    return  # the sender died mid-request (SIGKILL): nothing was delivered
                with receiver.lock:
                    first = not receiver.requests
                    receiver.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "received_at": time.time(),
                            "answered": 500 if first else 200,
                        }
                    )
                self.send_response(500 if first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/drydock"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self) -> list[dict]:
        with self.lock:
            return list(self.requests)

    def deliveries(self, received: list[dict] | None = None) -> dict[str, dict]:
        """The decoded envelopes of the deliveries answered 200 (of `received` if given), by
        delivery id."""
        received = self.received() if received is None else received
        return {r["headers"]["x-drydock-delivery"]: json.loads(r["body"]) for r in received if r["answered"] == 200}

    def events(self, event: str, resource_id=None) -> list[dict]:
        """The `data` of the delivered events named `event` (of one resource if given)."""
        return [
            e["data"]
            for e in self.deliveries().values()
            if e["event"] == event and (resource_id is None or e["data"]["resource_id"] == str(resource_id))
        ]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def expected_signature(secret: str, request: dict) -> str:
    signed = request["headers"]["x-drydock-timestamp"].encode() + b"." + request["body"]
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class VersionedDisk:
    """A raw disk image whose whole content is replaced atomically (a temporary file renamed over
    it) by a new version: zeros with `chunks` evenly spread runs of `chunk_bytes` fresh random
    bytes. Remembers the SHA-256 of every version, in order; version 0 is written at once.
    `start()` writes a new version every `period` seconds in a thread until `stop()`."""

    def __init__(self, path: Path, size_bytes: int, chunks: int, chunk_bytes: int, period: float | None = None):
        assert size_bytes // chunks >= chunk_bytes
        self.path = path
        self.size_bytes = size_bytes
        self.chunks = chunks
        self.chunk_bytes = chunk_bytes
        self.period = period
        self.versions: list[str] = []
        self.error = None
        self.stopping = threading.Event()
        self.thread = None
        self.write_version()

    def write_version(self) -> int:
        """Writes a new version; returns its index."""
        step = self.size_bytes // self.chunks
        digest = hashlib.sha256()
        zeros = bytes(HASH_BLOCK)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("wb") as f:
            # Sparse like a real image: only the random runs are written.
            f.truncate(self.size_bytes)
            for i in range(self.chunks):
                data = os.urandom(self.chunk_bytes)
                f.seek(i * step)
                f.write(data)
                digest.update(data)
                gap = step - self.chunk_bytes if i < self.chunks - 1 else self.size_bytes - i * step - self.chunk_bytes
                while gap > 0:
                    digest.update(zeros[: min(gap, HASH_BLOCK)])
                    gap -= HASH_BLOCK
        # Recorded before the rename: a backup may read the version as soon as it is in place.
        self.versions.append(digest.hexdigest())
        os.replace(temporary, self.path)
        return len(self.versions) - 1

    def run(self):
        try:
            while not self.stopping.wait(self.period):
                self.write_version()
        except Exception as e:  # reported by stop()
            self.error = e

    def start(self):
        self.thread = threading.Thread(target=self.run, name=f"writer-{self.path.name}", daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
        assert self.error is None, f"the disk writer of {self.path} failed: {self.error!r}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def tags_for(taken_at: datetime, previous: datetime | None, sub_daily: bool) -> set[str]:
    """The tags docs/backups.md gives a scheduled backup (policy time zone UTC): `previous` is
    when the resource's previous successful scheduled backup was taken."""
    tags = {"hourly"} if sub_daily else set()
    if previous is None or previous.date() != taken_at.date():
        tags.add("daily")
    if previous is None or previous.isocalendar()[:2] != taken_at.isocalendar()[:2]:
        tags.add("weekly")
    if previous is None or (previous.year, previous.month) != (taken_at.year, taken_at.month):
        tags.add("monthly")
    if previous is None or previous.year != taken_at.year:
        tags.add("yearly")
    return tags


def tagged_successes(runs: list[dict], sub_daily: bool = True) -> list[dict]:
    """The succeeded runs, oldest first, each with `taken` (datetime) and the `tags` its backup
    must carry."""
    succeeded = sorted((r for r in runs if r["status"] == "succeeded"), key=lambda r: parse_time(r["taken_at"]))
    previous = None
    out = []
    for run in succeeded:
        taken = parse_time(run["taken_at"])
        out.append({**run, "taken": taken, "tags": tags_for(taken, previous, sub_daily)})
        previous = taken
    return out


def expected_kept(successes: list[dict], keep: dict[str, int]) -> set[int]:
    """The image ids GFS retention keeps of `tagged_successes` when no retention period is set:
    a backup is kept if, for one of its tags T, it is among the newest keep[T] carrying T."""
    kept = set()
    newest_first = sorted(successes, key=lambda s: (s["taken"], s["image_id"]), reverse=True)
    for tag, count in keep.items():
        kept |= {s["image_id"] for s in [s for s in newest_first if tag in s["tags"]][:count]}
    return kept


def fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def due_at(start: datetime, end: datetime, key: str) -> datetime:
    """When a resource's backup is due in a window (docs/backups.md, the spread): the window's
    start plus FNV-1a-64 of the resource's key ("droplet:12") modulo half the window, in seconds."""
    half = int((end - start).total_seconds()) // 2
    return start + timedelta(seconds=fnv1a64(key.encode()) % half) if half > 0 else start


def hour_starts(first: datetime, last: datetime) -> list[datetime]:
    """Every whole hour from `first` to `last`, both included."""
    out = []
    while first <= last:
        out.append(first)
        first += timedelta(hours=1)
    return out
