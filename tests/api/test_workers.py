"""Three `drydock serve` workers sharing one PostgreSQL catalog (DRYDOCK_TEST_POSTGRES_URL, which
scripts/test starts) and one region: each serves the whole API, their schedulers take every
backup window exactly once between them, and when the worker running a backup is SIGKILLed, a
survivor takes the backup over once its lease runs out and finishes it."""

import os
import secrets
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from conftest import drydock_binary, poll_action
from schedule_helpers import FastClock, RestartableDaemon, VersionedDisk, parse_time, sha256_file, wait_for

WORKERS = 3
# Scheduler seconds per real second: an hourly window lasts 10 real seconds.
SPEED = 360
LEASE_SECS = 3
BIG_BYTES = 512 << 20
BIG_CHUNKS = 256
BIG_CHUNK_BYTES = 1 << 20
# Backups are kept for the whole test: every window's image is checked.
POLICY = {"plan": "hourly", "keep_hourly": 100}
WINDOWS_WANTED = 4
WINDOW_TIMEOUT_SECS = 60


class Worker(RestartableDaemon):
    """A daemon whose region, disks and passphrase are shared with the other workers."""

    def __init__(self, root: Path, binary: Path, shared: Path, top_level: str, tables: str):
        super().__init__(root, binary, extra_config=tables)
        self.shared = shared
        self.top_level = top_level

    def write_config(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self.disks_dir = self.shared / "disks"
        self.disks_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f'{self.top_level}disk_roots = ["{self.disks_dir}"]\nworkers = 2\nrate_limit_per_hour = 50000\n'
            f'[[regions]]\nslug = "local-1"\nname = "Shared"\npath = "{self.shared / "regions" / "local-1"}"\n'
            f'passphrase_file = "{self.shared / "passphrase"}"\n\n{self.extra_config}'
        )

    def pid_name(self) -> str:
        return f":{self.process.pid}"


def psql(url: str, sql: str):
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True, capture_output=True)


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    admin_url = os.environ.get("DRYDOCK_TEST_POSTGRES_URL")
    if not admin_url:
        pytest.fail(
            "DRYDOCK_TEST_POSTGRES_URL is not set: run the suite with scripts/test, which starts PostgreSQL, "
            "or start one with `eval $(scripts/pg-test-server start /tmp/pg)`"
        )
    database = f"workers_{uuid.uuid4().hex[:12]}"
    psql(admin_url, f"CREATE DATABASE {database}")
    url = admin_url.rsplit("/", 1)[0] + "/" + database
    root = tmp_path_factory.mktemp("workers")
    shared = root / "shared"
    shared.mkdir()
    (shared / "passphrase").write_text(secrets.token_hex(32) + "\n")
    clock = FastClock(SPEED, FastClock.reaching(SPEED, parse_time("2031-06-01T00:00:00Z")).epoch)
    top_level = f'database_url = "{url}"\nworker_lease_secs = {LEASE_SECS}\n'
    tables = (
        "[scheduler]\nenabled = true\ntick_secs = 0.2\nmax_concurrent_backups = 2\n"
        # No gc and no pruning to speak of during the test: every backup stays to be counted.
        "gc_interval_hours = 100000\nprune_interval_minutes = 100000\n"
        f'clock_speed = {SPEED}\nclock_epoch = "{clock.epoch_text()}"\n'
    )
    daemons = [Worker(root / f"worker-{n}", drydock_binary(), shared, top_level, tables) for n in range(WORKERS)]
    try:
        for daemon in daemons:
            daemon.write_config()
            daemon.start()
        token = daemons[0].create_token("*")
        yield daemons, token, clock
    finally:
        for daemon in daemons:
            if daemon.process and daemon.process.poll() is None:
                daemon.stop()
        psql(admin_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def alive(daemons):
    return [d for d in daemons if d.process.poll() is None]


def test_three_workers_take_each_backup_once_and_finish_a_killed_workers_backup(workers):
    daemons, token, clock = workers
    clients = [d.client(token) for d in daemons]
    disk = VersionedDisk(daemons[0].disks_dir / "big.img", BIG_BYTES, BIG_CHUNKS, BIG_CHUNK_BYTES)
    # Registered through one worker, seen through the others: the catalog is shared.
    created = clients[0].droplets.create(
        {"name": "big", "disk": {"path": str(disk.path)}, "backups": True, "backup_policy": POLICY}
    )
    assert poll_action(clients[1], created["links"]["actions"][0]["id"])["status"] == "completed"
    big = created["droplet"]["id"]
    assert clients[2].droplets.get(big)["droplet"]["name"] == "big"

    # Kill the worker running a backup while it moves data; the backup must still complete. The
    # backup watched is one that began after the disk's new version was in place.
    def latest_backup():
        actions = clients[0].droplet_actions.list(big, per_page=1)["actions"]
        return actions[0] if actions and actions[0]["type"] == "backup" else None

    before = wait_for(
        "big to have no backup running",
        lambda: {"action": a} if (a := latest_backup()) is None or a["status"] != "in-progress" else None,
        daemons[0],
        WINDOW_TIMEOUT_SECS,
    )["action"]
    version = disk.write_version()
    seen = wait_for(
        "a backup of big moving data",
        lambda: moving_backup(clients[0], daemons[0], token, big, after=before["id"] if before else 0),
        daemons[0],
        WINDOW_TIMEOUT_SECS,
        interval=0.02,
    )
    run, action = seen["moving"]
    runner = next(d for d in daemons if action["drydock"]["worker"].endswith(d.pid_name()))
    runner.kill()
    survivors = alive(daemons)
    assert len(survivors) == WORKERS - 1
    reader = survivors[0].client(token)

    def finished_elsewhere():
        current = reader.actions.get(action["id"])["action"]
        return current if current["status"] != "in-progress" else None

    finished = wait_for(
        f"action {action['id']} of the killed worker to be finished by another",
        finished_elsewhere,
        survivors[0],
        LEASE_SECS * 4 + WINDOW_TIMEOUT_SECS,
    )
    assert finished["status"] == "completed", finished
    assert finished["drydock"]["worker"] != action["drydock"]["worker"], finished
    assert any(finished["drydock"]["worker"].endswith(d.pid_name()) for d in survivors), finished
    log = "".join(d.full_log() for d in survivors)
    assert f"taking over action {action['id']}" in log, log[-4000:]

    # Its window's run took the backup once, in its first attempt, and the image is the version
    # written before it.
    killed_run = wait_for(
        "the killed backup's run to succeed",
        lambda: next((r for r in runs(survivors[0], token, big) if r["id"] == run["id"] and r["status"] != "running"), None),
        survivors[0],
        WINDOW_TIMEOUT_SECS,
    )
    assert (killed_run["status"], killed_run["attempts"], killed_run["action_id"]) == ("succeeded", 1, action["id"])
    restored = restore(reader, survivors[0], killed_run["image_id"])
    assert restored == disk.versions[version], "the taken-over backup restored other data"

    # Later windows keep being taken by the two survivors, each once.
    first_window = parse_time(run["window"]["start"])
    wait_for(
        f"{WINDOWS_WANTED} windows after the kill",
        lambda: len([r for r in runs(survivors[0], token, big) if parse_time(r["window"]["start"]) > first_window])
        >= WINDOWS_WANTED,
        survivors[0],
        WINDOW_TIMEOUT_SECS * WINDOWS_WANTED,
    )
    all_runs = sorted(runs(survivors[0], token, big), key=lambda r: r["window"]["start"])
    starts = [parse_time(r["window"]["start"]) for r in all_runs]
    assert len(set(starts)) == len(starts), f"a window was claimed twice: {all_runs}"
    assert all(b - a == timedelta(hours=1) for a, b in zip(starts, starts[1:])), f"a window was skipped: {starts}"
    finished_runs = [r for r in all_runs if r["status"] not in ("running", "retrying")]
    assert all(r["status"] == "succeeded" for r in finished_runs), finished_runs
    # One backup action per attempt, one image per successful window: nothing ran twice.
    actions = [a for a in reader.droplet_actions.list(big, per_page=200)["actions"] if a["type"] == "backup"]
    assert sorted(a["id"] for a in actions) == sorted(r["action_id"] for r in all_runs if r["action_id"]), (
        actions,
        all_runs,
    )
    backups = reader.droplets.list_backups(big, per_page=200)["backups"]
    assert sorted(b["id"] for b in backups) == sorted(r["image_id"] for r in finished_runs), (backups, finished_runs)
    # Every window was claimed by one of the workers (the dead one's claims before it died).
    pids = tuple(d.pid_name() for d in daemons)
    assert all(r["claimed_by"].endswith(pids) for r in all_runs), [r["claimed_by"] for r in all_runs]


def moving_backup(client, daemon, token, droplet_id, after: int):
    """The droplet's newest backup action, if newer than action `after`, while it moves data, with
    its run: {"moving": (run, action)}; None until then."""
    latest = client.droplet_actions.list(droplet_id, per_page=1)["actions"]
    if not latest or latest[0]["type"] != "backup" or latest[0]["id"] <= after:
        return None
    action = latest[0]
    if action["status"] != "in-progress" or action["drydock"]["progress"]["bytes_done"] == 0:
        return None
    run = next((r for r in runs(daemon, token, droplet_id) if r["action_id"] == action["id"]), None)
    return {"moving": (run, action)} if run else None


def runs(daemon, token, droplet_id):
    """The droplet's backup runs, newest first."""
    response = requests.get(
        f"{daemon.endpoint}/drydock/v1/droplets/{droplet_id}/backup_runs?limit=1000",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(daemon.cert),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["backup_runs"]


def restore(client, daemon, image_id: int) -> str:
    """Makes a droplet from the image and returns the SHA-256 of its disk."""
    target = daemon.disks_dir / f"restored-{image_id}-{uuid.uuid4().hex[:6]}.img"
    created = client.droplets.create({"name": f"restored-{image_id}", "image": image_id, "disk": {"path": str(target)}})
    action = poll_action(client, created["links"]["actions"][0]["id"], timeout=180)
    assert action["status"] == "completed", action
    return sha256_file(target)
