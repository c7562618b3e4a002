"""Helpers for test_schedule.py: the daemon's fast clock as Python sees it, a webhook receiver,
a disk that keeps changing, polling with the daemon's log in the message, and the tagging and
retention rules of docs/backups.md worked out independently of the Rust code."""

import hashlib
import hmac
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOG_TAIL_CHARS = 6000


class FastClock:
    """The scheduler's clock of a daemon configured with `clock_speed` and `clock_epoch`: equal to
    the wall clock at the epoch, `speed` times faster from there (also while the daemon is down)."""

    def __init__(self, speed: float, epoch: datetime):
        self.speed = speed
        self.epoch = epoch

    @classmethod
    def reaching(cls, speed: float, target: datetime) -> "FastClock":
        """A clock that shows `target` now: its epoch is in the past, as far as needed."""
        now = datetime.now(UTC).replace(microsecond=0)
        return cls(speed, now - (target - now) / (speed - 1))

    def now(self) -> datetime:
        return self.epoch + (datetime.now(UTC) - self.epoch) * self.speed

    def real_secs(self, scheduler: timedelta) -> float:
        """Real seconds for a span of scheduler time."""
        return scheduler.total_seconds() / self.speed


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def log_tail(daemon) -> str:
    return "\n--- daemon log (tail) ---\n" + daemon.log_text()[-LOG_TAIL_CHARS:]


def wait_for(what: str, check, daemon, timeout: float, interval: float = 0.1):
    """Calls `check()` until it returns something truthy and returns that; fails after `timeout`
    real seconds naming `what`, the last value seen and the daemon's log."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last seen: {last!r}{log_tail(daemon)}")
        time.sleep(interval)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 recording every request. It answers 500 to the very first one,
    to see the daemon retry, and 200 to all others."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    first = not receiver.requests
                    receiver.requests.append(
                        {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
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

    def events(self) -> list[dict]:
        """The decoded bodies of the deliveries answered 200 (every request but the first)."""
        return [json.loads(r["body"]) for r in self.received()[1:]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def signature_ok(secret: str, request: dict) -> bool:
    headers = {k.lower(): v for k, v in request["headers"].items()}
    signed = headers["x-drydock-timestamp"].encode() + b"." + request["body"]
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("x-drydock-signature", ""))


class ChangingDisk:
    """A raw disk image replaced atomically (a temporary file renamed over it) every `period`
    seconds by a new version: zeros with `chunks` runs of fresh random bytes. Remembers the
    SHA-256 of every version, in order; the first is written before the thread starts."""

    def __init__(self, path: Path, size_bytes: int, period: float, chunks: int = 4, chunk_bytes: int = 256 << 10):
        self.path = path
        self.size_bytes = size_bytes
        self.period = period
        self.chunks = chunks
        self.chunk_bytes = chunk_bytes
        self.versions: list[str] = []
        self.error = None
        self.stopping = threading.Event()
        self.write_version()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def write_version(self):
        content = bytearray(self.size_bytes)
        step = self.size_bytes // self.chunks
        for i in range(self.chunks):
            content[i * step : i * step + self.chunk_bytes] = os.urandom(self.chunk_bytes)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("wb") as f:
            # Sparse like a real image: only the random runs are written.
            f.truncate(self.size_bytes)
            for i in range(self.chunks):
                f.seek(i * step)
                f.write(content[i * step : i * step + self.chunk_bytes])
        # Recorded before the rename: a backup may read the version as soon as it is in place.
        self.versions.append(hashlib.sha256(content).hexdigest())
        os.replace(temporary, self.path)

    def run(self):
        try:
            while not self.stopping.wait(self.period):
                self.write_version()
        except Exception as e:  # reported by stop()
            self.error = e

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=10)
        assert self.error is None, f"the disk writer failed: {self.error!r}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def tags_for(taken_at: datetime, previous: datetime | None, sub_daily: bool) -> set[str]:
    """The tags docs/backups.md gives a scheduled backup, in UTC: `previous` is when the
    resource's previous successful scheduled backup was taken."""
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


def expected_kept(backups: list[tuple[int, datetime, set[str]]], keep: dict[str, int]) -> set[int]:
    """The ids GFS retention keeps of (id, taken_at, tags) when no retention period is set: those
    among the newest keep[T] carrying T, for any of their tags T."""
    kept = set()
    newest_first = sorted(backups, key=lambda b: (b[1], b[0]), reverse=True)
    for tag, count in keep.items():
        kept |= {b[0] for b in [b for b in newest_first if tag in b[2]][:count]}
    return kept


def hours(start: datetime, end: datetime) -> list[datetime]:
    """Every whole hour from `start` up to `end`, both included."""
    out = []
    while start <= end:
        out.append(start)
        start += timedelta(hours=1)
    return out
