"""An S3 region whose server dies: SeaweedFS SIGKILLed in the middle of a snapshot, of a transfer
and of a restore. The action ends errored with a one-line reason, nothing half-made is listed,
and once SeaweedFS is back on the same data the same work completes with the exact bytes.

A daemon of its own with `local-1`, `local-2` and `s3-1`, where `s3-1` is a private SeaweedFS
that this file starts on free ports (scripts/s3-test-server with DRYDOCK_TEST_S3_PORT_BASE), so
killing it touches no other test's server. It is stopped at the end however the tests end."""

import hashlib
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import POLL_SECS, REPO_ROOT, own_daemon, poll_action, unique

BUCKET = "drydock-faults"
# The identity scripts/s3-test-server configures.
ACCESS_KEY = "drydock-test"
SECRET_KEY = "drydock-test-secret"
# Random bytes, so nothing compresses or deduplicates: eight 32 MiB packs, each a multipart
# upload, and a backup that lasts long enough to be caught in the middle.
DISK_BYTES = 256 << 20
# From SIGKILL to the action ending: the Retry decorator's backoff (about 1.5 s at most per
# operation) plus the engine's threads winding down. Minutes would mean a hang.
FAILURE_SECS_MAX = 30


class PrivateSeaweed:
    """A SeaweedFS of this file's own: started, SIGKILLed and started again on the same data."""

    def __init__(self, root: Path):
        self.dir = root
        self.endpoint = None

    def run(self, command: str):
        # Every port of its own, chosen by the script at the first start and kept for the next.
        env = {**os.environ, "DRYDOCK_TEST_S3_PORT_BASE": "free"}
        result = subprocess.run(
            [str(REPO_ROOT / "scripts" / "s3-test-server"), command, str(self.dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"s3-test-server {command}: {result.stderr}"

    def start(self):
        self.run("start")
        ports = dict(line.split("=", 1) for line in (self.dir / "ports").read_text().split())
        self.endpoint = f"http://127.0.0.1:{ports['port']}"

    def kill(self):
        self.run("kill")

    def stop(self):
        self.run("stop")


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    server = PrivateSeaweed(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fault_daemon(tmp_path_factory, seaweed):
    root = tmp_path_factory.mktemp("s3-faults")
    secret = root / "s3.secret"
    secret.write_text(SECRET_KEY + "\n")
    region = (
        '[[regions]]\nslug = "s3-1"\nname = "Private SeaweedFS"\n[regions.s3]\n'
        f'endpoint = "{seaweed.endpoint}"\nbucket = "{BUCKET}"\nprefix = "run-{uuid.uuid4().hex[:12]}"\n'
        f'access_key_id = "{ACCESS_KEY}"\nsecret_access_key_file = "{secret}"\n'
        "[scheduler]\nenabled = false\n"
    )
    with own_daemon(root, region) as daemon:
        yield daemon
    assert "panicked" not in daemon.log.read_text(errors="replace"), daemon.log_text()
    # What the faults left behind (packs without an index, leases never released) does not make
    # the catalog and the repositories disagree.
    check = subprocess.run(
        [str(daemon.bin), "catalog", "check", "--data-dir", str(daemon.data_dir), "--config", str(daemon.config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, f"catalog check: {check.stdout}{check.stderr}"


@pytest.fixture(scope="module")
def s3_client(fault_daemon):
    return fault_daemon.client(fault_daemon.tokens["full"])


@pytest.fixture
def server_back(seaweed):
    """Whatever a test did to SeaweedFS, the next one finds it running."""
    yield
    if not (seaweed.dir / "weed.pid").exists():
        seaweed.start()


def random_disk(daemon) -> Path:
    path = daemon.disks_dir / f"{unique('disk')}.img"
    with path.open("wb") as f:
        for _ in range(DISK_BYTES >> 23):
            f.write(os.urandom(8 << 20))
    return path


def digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def register(client, daemon, region: str) -> tuple[int, Path]:
    disk = random_disk(daemon)
    response = client.droplets.create({"name": unique("web"), "region": region, "disk": {"path": str(disk)}})
    assert poll_action(client, response["links"]["actions"][0]["id"])["status"] == "completed"
    return response["droplet"]["id"], disk


def snapshot_action(client, droplet_id: int, name: str) -> int:
    return client.droplet_actions.post(droplet_id, {"type": "snapshot", "name": name})["action"]["id"]


def snapshot(client, droplet_id: int) -> int:
    name = unique("snap")
    done = poll_action(client, snapshot_action(client, droplet_id, name), timeout=120)
    assert done["status"] == "completed", done
    [image] = [s for s in client.droplets.list_snapshots(droplet_id)["snapshots"] if s["name"] == name]
    return image["id"]


def create_from_image(client, daemon, image_id: int, region: str) -> tuple[int, int, Path]:
    """Starts a droplet made from an image: (droplet id, action id, disk path)."""
    target = daemon.disks_dir / f"{unique('restored')}.img"
    response = client.droplets.create(
        {"name": unique("restored"), "region": region, "image": image_id, "disk": {"path": str(target)}}
    )
    return response["droplet"]["id"], response["links"]["actions"][0]["id"], target


def kill_in_the_middle(client, action_id: int, seaweed, done_fraction: float) -> float:
    """SIGKILLs SeaweedFS once the action's progress shows `done_fraction` of its bytes done, and
    returns when (time.monotonic()). Fails if the action ends first: then nothing was tested."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        action = client.actions.get(action_id)["action"]
        assert action["status"] == "in-progress", f"the action ended before SeaweedFS was killed: {action}"
        progress = action["drydock"]["progress"]
        total = progress["bytes_total"]
        if total and progress["bytes_done"] >= total * done_fraction:
            killed = time.monotonic()
            seaweed.kill()
            print(f"SeaweedFS killed at {progress['bytes_done']} of {total} bytes")
            return killed
        time.sleep(POLL_SECS)
    raise AssertionError(f"action {action_id} showed no progress within 60 s")


def wait_errored(client, action_id: int, killed: float) -> str:
    """Waits for the action to end, asserts it errored soon after `killed` (a time.monotonic())
    with a one-line reason, and returns the reason."""
    done = poll_action(client, action_id, timeout=FAILURE_SECS_MAX)
    assert done["status"] == "errored", done
    reason = done["drydock"]["error"]
    assert reason and "\n" not in reason, done
    print(f"action {action_id} errored {time.monotonic() - killed:.1f} s after the kill: {reason}")
    return reason


def assert_completed(action: dict):
    assert action["status"] == "completed", action


def assert_names_the_place(reason: str, seaweed, doing: str):
    # What it was doing in which region, and the object and bucket it failed on.
    assert reason.startswith(f"{doing} region s3-1: "), reason
    assert f" in s3 {seaweed.endpoint}/{BUCKET}/run-" in reason, reason


def test_a_snapshot_cut_off_by_a_killed_server_errors_and_lists_nothing(s3_client, fault_daemon, seaweed, server_back):
    droplet_id, disk = register(s3_client, fault_daemon, "s3-1")
    name = unique("cut")
    action_id = snapshot_action(s3_client, droplet_id, name)
    killed = kill_in_the_middle(s3_client, action_id, seaweed, done_fraction=0.25)
    reason = wait_errored(s3_client, action_id, killed)
    assert_names_the_place(reason, seaweed, "backing up into")

    # No partial snapshot anywhere: not the droplet's, not in the snapshot or image lists.
    assert s3_client.droplets.list_snapshots(droplet_id)["snapshots"] == []
    assert name not in [s["name"] for s in s3_client.snapshots.list(per_page=200)["snapshots"]]
    assert name not in [i["name"] for i in s3_client.images.list(private=True, per_page=200)["images"]]

    seaweed.start()
    image_id = snapshot(s3_client, droplet_id)
    assert s3_client.images.get(image_id)["image"]["regions"] == ["s3-1"]
    _, action_id, target = create_from_image(s3_client, fault_daemon, image_id, "s3-1")
    assert_completed(poll_action(s3_client, action_id, timeout=120))
    assert digest(target) == digest(disk)


def test_a_transfer_cut_off_by_a_killed_server_errors_and_adds_no_region(s3_client, fault_daemon, seaweed, server_back):
    droplet_id, disk = register(s3_client, fault_daemon, "local-1")
    image_id = snapshot(s3_client, droplet_id)
    action_id = s3_client.image_actions.post(image_id, {"type": "transfer", "region": "s3-1"})["action"]["id"]
    killed = kill_in_the_middle(s3_client, action_id, seaweed, done_fraction=0.25)
    reason = wait_errored(s3_client, action_id, killed)
    assert_names_the_place(reason, seaweed, f"copying image {image_id} to")
    assert s3_client.images.get(image_id)["image"]["regions"] == ["local-1"]

    seaweed.start()
    action_id = s3_client.image_actions.post(image_id, {"type": "transfer", "region": "s3-1"})["action"]["id"]
    assert_completed(poll_action(s3_client, action_id, timeout=120))
    assert s3_client.images.get(image_id)["image"]["regions"] == ["local-1", "s3-1"]

    # Restores read local-1 first: with its packs moved away, the S3 copy is what restores.
    packs = fault_daemon.root / "regions" / "local-1" / "packs"
    packs.rename(packs.with_name("packs-away"))
    try:
        _, action_id, target = create_from_image(s3_client, fault_daemon, image_id, "s3-1")
        assert_completed(poll_action(s3_client, action_id, timeout=120))
    finally:
        packs.with_name("packs-away").rename(packs)
    assert f"restoring image {image_id} from region local-1" in fault_daemon.log_text(), "local-1 was not skipped"
    assert digest(target) == digest(disk)


def test_a_restore_cut_off_by_a_killed_server_errors_and_leaves_no_disk(s3_client, fault_daemon, seaweed, server_back):
    droplet_id, disk = register(s3_client, fault_daemon, "s3-1")
    image_id = snapshot(s3_client, droplet_id)

    new_id, action_id, target = create_from_image(s3_client, fault_daemon, image_id, "s3-1")
    # A restore reads fast: kill it as soon as it has planned its reads and shows its size.
    killed = kill_in_the_middle(s3_client, action_id, seaweed, done_fraction=0)
    reason = wait_errored(s3_client, action_id, killed)
    assert_names_the_place(reason, seaweed, "restoring from")
    # A droplet whose disk could not be made never existed, and nothing looks like its disk.
    assert new_id not in [d["id"] for d in s3_client.droplets.list(per_page=200)["droplets"]]
    assert not target.exists()
    assert not list(target.parent.glob(target.name + "*")), "a partial disk was left behind"

    seaweed.start()
    _, action_id, target = create_from_image(s3_client, fault_daemon, image_id, "s3-1")
    assert_completed(poll_action(s3_client, action_id, timeout=120))
    assert digest(target) == digest(disk)
