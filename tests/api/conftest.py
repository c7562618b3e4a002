"""Fixtures for the API suite: one drydock daemon for the whole session, pydo clients for it,
and helpers to make disk images and wait for actions.

The daemon is the real binary (`DRYDOCK_BIN`, or target/debug/drydock), serving HTTPS with its
self-signed certificate, configured with two regions so that image transfers can be tested.
Tests talk to it only through pydo from PyPI, unchanged.

Fixtures other test files may use:
- `drydock`: the running daemon (`.endpoint`, `.port`, `.cert`, `.data_dir`, `.disks_dir`,
  `.bin`, `.tokens` = {"full", "read", "droplet_read", "other"} -> secret, `.client(token)`).
- `client` (full access, team "default"), `read_client` (scope `read`),
  `droplet_read_client` (scope `droplet:read` only), `other_client` (full access, team "other").
- `make_disk(size_bytes=16 MiB, chunks=4, chunk_bytes=256 KiB, name=None) -> Path`: a sparse raw
  image in the disk root with `chunks` runs of random bytes.
- `new_path() -> Path`: a path in the disk root where nothing exists yet (restore targets).
- `wait_action(client, action_id, timeout=60) -> dict`: polls `actions.get` while the action is
  in progress and returns it (completed or errored).
- `register(name=None, disk=None, **fields) -> dict`: registers a droplet (on a new 16 MiB disk
  unless `disk` is given), waits for its create action and returns the droplet.

and, for a module that needs a daemon configured otherwise, `own_daemon(root, extra_config)`
(a context manager) and `drydock_binary()`.
"""

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pydo
import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECS = 30
STOP_TIMEOUT_SECS = 30
ACTION_TIMEOUT_SECS = 60
POLL_SECS = 0.05
REGIONS = ("local-1", "local-2")
# High enough for the polling of a whole run, and not the default, to see the setting applied.
RATE_LIMIT_PER_HOUR = 50000


class Daemon:
    def __init__(self, root: Path, binary: Path, extra_config: str = ""):
        self.root = root
        # TOML appended to the configuration (e.g. a [scheduler] table).
        self.extra_config = extra_config
        self.bin = binary
        self.data_dir = root / "data"
        self.disks_dir = root / "disks"
        self.config = root / "drydock.toml"
        self.log = root / "daemon.log"
        self.port = free_port()
        self.endpoint = f"https://127.0.0.1:{self.port}"
        self.cert = self.data_dir / "tls" / "cert.pem"
        self.tokens = {}
        self.process = None

    def write_config(self):
        self.disks_dir.mkdir(parents=True)
        regions = "".join(
            f'\n[[regions]]\nslug = "{slug}"\nname = "Test {slug}"\npath = "{self.root / "regions" / slug}"\n'
            for slug in REGIONS
        )
        self.config.write_text(
            f'disk_roots = ["{self.disks_dir}"]\nworkers = 2\nrate_limit_per_hour = {RATE_LIMIT_PER_HOUR}\n{regions}'
            f"\n{self.extra_config}"
        )

    def run_cli(self, *args) -> str:
        result = subprocess.run(
            [str(self.bin), *args, "--data-dir", str(self.data_dir), "--config", str(self.config)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"drydock {' '.join(args)} failed: {result.stderr}"
        return result.stdout

    def create_token(self, scopes: str, team: str = "default", name: str = "pytest") -> str:
        secret = self.run_cli("token", "create", "--scopes", scopes, "--team", team, "--name", name).strip()
        assert secret.startswith("dop_v1_"), secret
        return secret

    def start(self):
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bin),
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--config",
                    str(self.config),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=log,
                preexec_fn=stop_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"drydock serve exited with {self.process.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise RuntimeError(f"drydock serve did not answer within {START_TIMEOUT_SECS} s:\n{self.log_text()}")
            if self.cert.exists():
                try:
                    response = requests.get(f"{self.endpoint}/drydock/v1/health", verify=str(self.cert), timeout=2)
                    if response.status_code == 200:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_SECS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"drydock serve did not stop within {STOP_TIMEOUT_SECS} s of SIGTERM")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-20000:]

    def client(self, token: str) -> pydo.Client:
        # retry_total=0: a failing request should fail the test at once, not be retried for
        # seconds by azure-core (no test here expects a retry).
        return pydo.Client(token, endpoint=self.endpoint, connection_verify=str(self.cert), retry_total=0)


def stop_with_parent():
    """In the daemon's child process: get SIGTERM if pytest dies without stopping it."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drydock_binary() -> Path:
    """The binary under test: DRYDOCK_BIN, or target/debug/drydock. Fails the test if it is missing."""
    binary = Path(os.environ.get("DRYDOCK_BIN", REPO_ROOT / "target" / "debug" / "drydock"))
    if not binary.is_file():
        pytest.fail(f"no drydock binary at {binary}: build it (cargo build -p drydock-cli) or set DRYDOCK_BIN")
    return binary


@contextmanager
def own_daemon(root: Path, extra_config: str, tokens: dict[str, tuple[str, str]] | None = None):
    """A daemon of its own, with `tokens` (name -> (scopes, team); by default a full-access "full"
    of team "default") in `.tokens`. Stopped at the end, which fails unless it exits cleanly on
    SIGTERM."""
    daemon = Daemon(root, drydock_binary(), extra_config=extra_config)
    daemon.write_config()
    tokens = tokens or {"full": ("*", "default")}
    daemon.tokens = {name: daemon.create_token(scopes, team, name) for name, (scopes, team) in tokens.items()}
    daemon.start()
    try:
        yield daemon
    finally:
        code = daemon.stop()
    assert code == 0, f"drydock serve exited with {code} after SIGTERM:\n{daemon.log_text()}"


@pytest.fixture(scope="session")
def drydock(request, tmp_path_factory):
    tokens = {
        "full": ("*", "default"),
        "read": ("read", "default"),
        "droplet_read": ("droplet:read", "default"),
        "other": ("*", "other"),
    }
    # The scheduler is test_schedule.py's, on its own daemon: here it would take backups at random.
    scheduler_off = "[scheduler]\nenabled = false\n"
    with own_daemon(tmp_path_factory.mktemp("drydock"), scheduler_off, tokens) as daemon:
        yield daemon
    log = re.sub(r"\x1b\[[0-9;]*m", "", daemon.log.read_text(errors="replace"))
    errors = [line for line in log.splitlines() if "panicked" in line or re.match(r"^\S+\s+ERROR\b", line)]
    assert not errors, "the daemon logged errors:\n" + "\n".join(errors)
    # After everything the suite did, the catalog still agrees with the repositories.
    check = subprocess.run(
        [str(daemon.bin), "catalog", "check", "--data-dir", str(daemon.data_dir), "--config", str(daemon.config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, f"catalog check: {check.stdout}{check.stderr}"
    if request.session.testsfailed == 0:
        # Only kept for debugging: the repositories hold hundreds of MiB.
        shutil.rmtree(daemon.root, ignore_errors=True)


@pytest.fixture(scope="session")
def client(drydock):
    return drydock.client(drydock.tokens["full"])


@pytest.fixture(scope="session")
def read_client(drydock):
    return drydock.client(drydock.tokens["read"])


@pytest.fixture(scope="session")
def droplet_read_client(drydock):
    return drydock.client(drydock.tokens["droplet_read"])


@pytest.fixture(scope="session")
def other_client(drydock):
    return drydock.client(drydock.tokens["other"])


def write_disk(path: Path, size_bytes: int, chunks: int = 4, chunk_bytes: int = 256 * 1024) -> Path:
    """A sparse raw image of `size_bytes` with `chunks` runs of random bytes spread over it."""
    with path.open("wb") as f:
        f.truncate(size_bytes)
        step = size_bytes // max(chunks, 1)
        for i in range(chunks):
            offset = i * step + (i * 4099) % max(step - chunk_bytes, 1)
            f.seek(offset)
            f.write(os.urandom(min(chunk_bytes, size_bytes - offset)))
    return path


@pytest.fixture(scope="session")
def make_disk(drydock):
    def make(
        size_bytes: int = 16 << 20, chunks: int = 4, chunk_bytes: int = 256 * 1024, name: str | None = None
    ) -> Path:
        path = drydock.disks_dir / (name or f"disk-{uuid.uuid4().hex[:12]}.img")
        return write_disk(path, size_bytes, chunks, chunk_bytes)

    return make


def new_disk_path(drydock) -> Path:
    """A path inside the disk roots where nothing exists yet (for restores into new disks)."""
    return drydock.disks_dir / f"new-{uuid.uuid4().hex[:12]}.img"


@pytest.fixture(scope="session")
def new_path(drydock):
    return lambda: new_disk_path(drydock)


def poll_action(client, action_id: int, timeout: float = ACTION_TIMEOUT_SECS) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        action = client.actions.get(action_id)["action"]
        if action["status"] != "in-progress":
            return action
        if time.monotonic() > deadline:
            raise AssertionError(f"action {action_id} still in progress after {timeout} s: {action}")
        time.sleep(POLL_SECS)


@pytest.fixture(scope="session")
def wait_action():
    return poll_action


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def register(client, make_disk, wait_action):
    """Registers a droplet (on a new 16 MiB disk unless `disk` is given) and returns its JSON."""

    def register(name: str | None = None, disk: Path | None = None, **fields) -> dict:
        disk = disk or make_disk()
        body = {"name": name or unique("web"), "disk": {"path": str(disk), "format": "raw"}, **fields}
        response = client.droplets.create(body)
        action = wait_action(client, response["links"]["actions"][0]["id"])
        assert action["status"] == "completed", action
        return response["droplet"]

    return register
