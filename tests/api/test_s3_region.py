"""A region in an S3 bucket: a daemon of its own with `local-1`, `local-2` and `s3-1`, a prefix of a
bucket on the SeaweedFS that scripts/test starts (DRYDOCK_TEST_S3_ENDPOINT). Snapshots taken
into it, images transferred to it, and droplets made from it get the original bytes back."""

import os
import uuid

import pytest
import requests
from conftest import own_daemon, poll_action, unique, write_disk

BUCKET = "drydock-api-tests"
# The identity scripts/s3-test-server configures.
ACCESS_KEY = "drydock-test"
SECRET_KEY = "drydock-test-secret"


@pytest.fixture(scope="module")
def s3_daemon(tmp_path_factory):
    endpoint = os.environ.get("DRYDOCK_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.fail(
            "DRYDOCK_TEST_S3_ENDPOINT is not set: run the suite with scripts/test, which starts SeaweedFS, "
            "or start one with `eval $(scripts/s3-test-server start /tmp/s3)`"
        )
    root = tmp_path_factory.mktemp("s3-daemon")
    secret = root / "s3.secret"
    secret.write_text(SECRET_KEY + "\n")
    region = (
        '[[regions]]\nslug = "s3-1"\nname = "SeaweedFS"\n[regions.s3]\n'
        f'endpoint = "{endpoint}"\nbucket = "{BUCKET}"\nprefix = "run-{uuid.uuid4().hex[:12]}"\n'
        f'access_key_id = "{ACCESS_KEY}"\nsecret_access_key_file = "{secret}"\n'
        "[scheduler]\nenabled = false\n"
    )
    with own_daemon(root, region) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def s3_client(s3_daemon):
    return s3_daemon.client(s3_daemon.tokens["full"])


def register(client, daemon, region: str) -> tuple[dict, bytes]:
    disk = write_disk(daemon.disks_dir / f"{unique('disk')}.img", 24 << 20, chunks=6)
    response = client.droplets.create({"name": unique("web"), "region": region, "disk": {"path": str(disk)}})
    assert poll_action(client, response["links"]["actions"][0]["id"])["status"] == "completed"
    return response["droplet"], disk.read_bytes()


def snapshot(client, droplet_id: int) -> int:
    name = unique("snap")
    action = client.droplet_actions.post(droplet_id, {"type": "snapshot", "name": name})["action"]
    done = poll_action(client, action["id"])
    assert done["status"] == "completed", done
    [image] = [s for s in client.droplets.list_snapshots(droplet_id)["snapshots"] if s["name"] == name]
    return image["id"]


def restore_into_new_droplet(client, daemon, image_id: int, region: str) -> bytes:
    target = daemon.disks_dir / f"{unique('restored')}.img"
    response = client.droplets.create(
        {"name": unique("restored"), "region": region, "image": image_id, "disk": {"path": str(target)}}
    )
    done = poll_action(client, response["links"]["actions"][0]["id"])
    assert done["status"] == "completed", done
    return target.read_bytes()


def test_the_s3_region_is_listed_as_available(s3_client):
    regions = {r["slug"]: r for r in s3_client.regions.list()["regions"]}
    assert regions["s3-1"]["available"] is True, regions["s3-1"]
    assert regions["s3-1"]["name"] == "SeaweedFS"


def test_a_snapshot_in_the_s3_region_restores_bit_exactly(s3_client, s3_daemon):
    droplet, original = register(s3_client, s3_daemon, "s3-1")
    image_id = snapshot(s3_client, droplet["id"])
    assert s3_client.images.get(image_id)["image"]["regions"] == ["s3-1"]
    assert restore_into_new_droplet(s3_client, s3_daemon, image_id, "s3-1") == original


def test_a_local_snapshot_transferred_to_s3_restores_from_there(s3_client, s3_daemon):
    droplet, original = register(s3_client, s3_daemon, "local-1")
    image_id = snapshot(s3_client, droplet["id"])
    action = s3_client.image_actions.post(image_id, {"type": "transfer", "region": "s3-1"})["action"]
    done = poll_action(s3_client, action["id"])
    assert done["status"] == "completed", done
    assert sorted(s3_client.images.get(image_id)["image"]["regions"]) == ["local-1", "s3-1"]
    assert restore_into_new_droplet(s3_client, s3_daemon, image_id, "s3-1") == original


def s3_stored_bytes(daemon) -> int:
    """The chunk bytes the s3-1 region holds for the team (GET /drydock/v1/usage)."""
    response = requests.get(
        f"{daemon.endpoint}/drydock/v1/usage",
        headers={"Authorization": f"Bearer {daemon.tokens['full']}"},
        verify=str(daemon.cert),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    regions = {r["region"]: r for r in response.json()["usage"]["regions"]}
    return regions["s3-1"]["stored_bytes"] if "s3-1" in regions else 0


def test_replicating_a_second_snapshot_sends_only_the_changed_chunks(s3_client, s3_daemon):
    # 8 MiB of random data in a 32 MiB disk; then 100 KiB of it changes, inside one 512 KiB chunk.
    disk = write_disk(s3_daemon.disks_dir / f"{unique('disk')}.img", 32 << 20, chunks=8, chunk_bytes=1 << 20)
    response = s3_client.droplets.create({"name": unique("web"), "region": "local-1", "disk": {"path": str(disk)}})
    assert poll_action(s3_client, response["links"]["actions"][0]["id"])["status"] == "completed"
    droplet_id = response["droplet"]["id"]

    sent = []
    for change in (None, 100 << 10):
        if change:
            with disk.open("r+b") as f:
                f.seek(4 << 20)
                f.write(os.urandom(change))
        image_id = snapshot(s3_client, droplet_id)
        before = s3_stored_bytes(s3_daemon)
        action = s3_client.image_actions.post(image_id, {"type": "transfer", "region": "s3-1"})["action"]
        assert poll_action(s3_client, action["id"])["status"] == "completed"
        sent.append(s3_stored_bytes(s3_daemon) - before)
    first, second = sent
    assert first >= 8 << 20, f"the first copy holds the 8 MiB of data: {sent}"
    # The changed 100 KiB lie in one 512 KiB chunk (random bytes: zstd cannot shrink it).
    assert 100 << 10 <= second <= 600 << 10, f"the second copy sends one chunk: {sent}"


def test_a_restore_falls_back_to_the_s3_copy_when_the_local_one_is_damaged(s3_client, s3_daemon):
    droplet, original = register(s3_client, s3_daemon, "local-1")
    image_id = snapshot(s3_client, droplet["id"])
    action = s3_client.image_actions.post(image_id, {"type": "transfer", "region": "s3-1"})["action"]
    assert poll_action(s3_client, action["id"])["status"] == "completed"
    assert s3_client.images.get(image_id)["image"]["regions"] == ["local-1", "s3-1"]

    # Damage every pack of the local region: its copy can no longer be read.
    packs = list((s3_daemon.root / "regions" / "local-1" / "packs").rglob("*"))
    damaged = 0
    for pack in (p for p in packs if p.is_file()):
        data = bytearray(pack.read_bytes())
        data[len(data) // 2] ^= 0xFF
        pack.write_bytes(bytes(data))
        damaged += 1
    assert damaged > 0

    assert restore_into_new_droplet(s3_client, s3_daemon, image_id, "local-1") == original
    log = s3_daemon.log.read_text(errors="replace")
    assert f"restoring image {image_id} from region local-1" in log, "the damaged region is reported"
