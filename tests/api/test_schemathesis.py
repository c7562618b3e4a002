"""schemathesis against the OpenAPI document the daemon serves (`/drydock/v1/openapi.json`).

Property-based requests, valid and invalid, for every documented operation: the daemon must
never answer 5xx, and its answers must match the document (status codes, content types,
headers, bodies). This file starts its own daemon so it depends on no other fixture.

The run is bounded: `SCHEMATHESIS_MAX_EXAMPLES` (default below) cases per operation, with a
wall-clock limit per schemathesis run. Set `DRYDOCK_BIN` to test another build of `drydock`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DRYDOCK = Path(os.environ.get("DRYDOCK_BIN", REPO / "target" / "debug" / "drydock"))

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "40"))
# Cases per operation are capped by MAX_EXAMPLES; this bounds each run even if the daemon hangs.
RUN_TIMEOUT_SECS = 150
# Every check whose verdict follows from the document and the daemon's contract. Left out:
# positive_data_acceptance (schema-valid bodies name disks that do not exist, a 422 by design),
# and the stateful checks (use_after_free, ensure_resource_availability, object_level_authorization)
# that need OpenAPI links the document does not declare.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
]
DISK_BYTES = 1 << 20


def schemathesis_command() -> list[str]:
    """The schemathesis CLI installed next to this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "schemathesis"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("schemathesis")
    if found:
        return [found]
    pytest.fail("schemathesis is not installed: pip install -r tests/api/requirements.txt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Daemon:
    base: str
    token: str
    cert: Path
    data_dir: Path
    disks: Path
    log: Path

    def request(self, method: str, path: str, body: object | None = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        context = ssl.create_default_context(cafile=str(self.cert))
        try:
            with urllib.request.urlopen(request, context=context, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None

    def wait_action(self, action_id: int, timeout_secs: float = 60) -> dict:
        deadline = time.monotonic() + timeout_secs
        while True:
            status, body = self.request("GET", f"/v2/actions/{action_id}")
            assert status == 200, body
            action = body["action"]
            if action["status"] != "in-progress":
                return action
            if time.monotonic() > deadline:
                raise AssertionError(f"action {action_id} still in progress after {timeout_secs} s")
            time.sleep(0.1)


def write_disk(path: Path) -> None:
    path.write_bytes(os.urandom(DISK_BYTES // 2) + bytes(DISK_BYTES // 2))


@pytest.fixture(scope="module")
def daemon():
    if not DRYDOCK.exists():
        pytest.fail(f"{DRYDOCK} not found: run `cargo build -p drydock-cli` first (or set DRYDOCK_BIN)")
    tmp = Path(tempfile.mkdtemp(prefix="drydock-schemathesis-"))
    data_dir, disks = tmp / "data", tmp / "disks"
    disks.mkdir()
    config = tmp / "drydock.toml"
    # A high rate limit: a run makes thousands of requests with one token. Two regions, so that
    # the document's example image transfer (to local-2) can succeed.
    regions = "".join(
        f'\n[[regions]]\nslug = "{slug}"\nname = "{slug}"\npath = {json.dumps(str(tmp / "regions" / slug))}\n'
        for slug in ("local-1", "local-2")
    )
    config.write_text(f"disk_roots = [{json.dumps(str(disks))}]\nrate_limit_per_hour = 10000000\n{regions}")
    token = subprocess.run(
        [str(DRYDOCK), "token", "create", "--data-dir", str(data_dir), "--scopes", "*", "--name", "schemathesis"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    log = tmp / "daemon.log"
    with open(log, "wb") as log_file:
        serve = ["serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}", "--config", str(config)]
        process = subprocess.Popen(
            [str(DRYDOCK), *serve],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    cert = data_dir / "tls" / "cert.pem"
    base = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            pytest.fail(f"drydock serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            context = ssl.create_default_context(cafile=str(cert))
            with urllib.request.urlopen(f"{base}/drydock/v1/health", context=context, timeout=2) as response:
                if response.status == 200:
                    break
        except (OSError, ssl.SSLError):
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"drydock serve did not answer on {base} within 30 s:\n{log.read_text()}")
        time.sleep(0.1)
    try:
        yield Daemon(base=base, token=token, cert=cert, data_dir=data_dir, disks=disks, log=log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def resources(daemon: Daemon) -> dict[str, str]:
    """Droplet 1 with snapshot (image) 1, and a volume with one snapshot: real ids to aim at.

    The daemon is new, so these are the ids 1 the document's examples name (`droplet_id`,
    `image_id`, `action_id`); the volume's UUIDs go to schemathesis in its configuration."""
    write_disk(daemon.disks / "web-1.img")
    status, body = daemon.request(
        "POST",
        "/v2/droplets",
        {"name": "web-1", "disk": {"path": str(daemon.disks / "web-1.img")}, "power": {"driver": "none"}},
    )
    assert status == 202, body
    droplet_id = body["droplet"]["id"]
    status, body = daemon.request("POST", f"/v2/droplets/{droplet_id}/actions", {"type": "snapshot", "name": "web-1-a"})
    assert status == 201, body
    assert daemon.wait_action(body["action"]["id"])["status"] == "completed"
    status, body = daemon.request("GET", f"/v2/droplets/{droplet_id}/snapshots")
    assert status == 200, body
    image_id = body["snapshots"][0]["id"]

    write_disk(daemon.disks / "vol-1.img")
    volume = {"name": "vol-1", "disk": {"path": str(daemon.disks / "vol-1.img")}}
    status, body = daemon.request("POST", "/v2/volumes", volume)
    assert status == 201, body
    volume_id = body["volume"]["id"]
    status, body = daemon.request("POST", f"/v2/volumes/{volume_id}/snapshots", {"name": "vol-1-a"})
    assert status == 201, body
    volume_snapshot_id = body["snapshot"]["id"]
    return {
        "image_id": str(image_id),
        "volume_id": volume_id,
        "volume_snapshot_id": volume_snapshot_id,
    }


def config_file(directory: Path, resources: dict[str, str]) -> Path:
    """Real ids mixed into the generated path parameters: free-form string ids are never guessed."""
    path = directory / "schemathesis.toml"
    path.write_text(
        f"""
[dictionaries.volume_ids]
values = [{json.dumps(resources["volume_id"])}]

[dictionaries.snapshot_ids]
values = [{json.dumps(resources["volume_snapshot_id"])}, {json.dumps(resources["image_id"])}]

[parameters]
"path.volume_id" = {{ dictionary = "volume_ids", probability = 0.5 }}
"path.snapshot_id" = {{ dictionary = "snapshot_ids", probability = 0.5 }}
"""
    )
    return path


def run_schemathesis(daemon: Daemon, config: Path, token: str, filters: list[str]) -> None:
    command = [
        *schemathesis_command(),
        "--config-file",
        str(config),
        "run",
        f"{daemon.base}/drydock/v1/openapi.json",
        "--url",
        daemon.base,
        "--header",
        f"Authorization: Bearer {token}",
        "--tls-verify",
        str(daemon.cert),
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        # One worker: hypothesis describes strategies with `ast`, which CPython 3.11 cannot run
        # from two threads at once ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--seed",
        os.environ.get("SCHEMATHESIS_SEED", "20250101"),
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "90",
        "--no-color",
        *filters,
    ]
    env = {**os.environ, "NO_COLOR": "1"}
    started = time.monotonic()
    try:
        # In the config's directory: schemathesis keeps state in `.schemathesis/` under its cwd.
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECS, env=env, cwd=config.parent
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"schemathesis did not finish within {RUN_TIMEOUT_SECS} s:\n{e.stdout}\n{e.stderr}")
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    print(f"schemathesis {' '.join(filters)}: exit {result.returncode} in {elapsed:.1f} s\n{output}")
    if result.returncode != 0:
        daemon_log = daemon.log.read_text(errors="replace")[-4000:]
        pytest.fail(f"schemathesis found problems (exit {result.returncode}):\n{output}\n--- daemon log:\n{daemon_log}")


def new_full_token(daemon: Daemon, name: str) -> str:
    status, body = daemon.request("POST", "/drydock/v1/tokens", {"name": name, "scopes": ["*"]})
    assert status == 201, body
    return body["token"]["secret"]


def test_schemathesis_finds_no_server_error_or_mismatch(daemon: Daemon, resources: dict[str, str], tmp_path: Path):
    config = config_file(tmp_path, resources)
    # Three runs, so that what one deletes does not starve the next: first everything that
    # keeps the fixtures, then the deletes, and last token revocation, which may revoke the
    # token that run uses (it gets one of its own).
    run_schemathesis(daemon, config, daemon.token, ["--exclude-method", "DELETE"])
    run_schemathesis(
        daemon, config, daemon.token, ["--include-method", "DELETE", "--exclude-operation-id", "drydock_tokens_revoke"]
    )
    revoker = new_full_token(daemon, "schemathesis-revoke")
    run_schemathesis(daemon, config, revoker, ["--include-operation-id", "drydock_tokens_revoke"])
    # The daemon survived all of it, and no handler panicked (a panic in a request task drops
    # the connection but leaves the process running).
    context = ssl.create_default_context(cafile=str(daemon.cert))
    with urllib.request.urlopen(f"{daemon.base}/drydock/v1/health", context=context, timeout=5) as response:
        assert response.status == 200
    log = daemon.log.read_text(errors="replace")
    assert "panicked" not in log, log[-4000:]
