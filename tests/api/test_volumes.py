"""Volumes: registration, snapshots, new volumes from snapshots, deletion."""

import re
import time

import pytest
from pydo.exceptions import HttpResponseError

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def volume_name(prefix: str) -> str:
    # Volume names are lowercase letters, digits and '-'.
    return f"{prefix}-{int(time.monotonic_ns()) % 10**9}"


def wait_volume_create(client, wait_action, volume_id: str) -> dict:
    [create] = [a for a in client.volume_actions.list(volume_id)["actions"] if a["type"] == "create"]
    assert client.volume_actions.get(volume_id, create["id"])["action"]["id"] == create["id"]
    done = wait_action(client, create["id"])
    assert done["status"] == "completed", done
    assert done["resource_type"] == "volume"
    assert done["drydock"]["resource_id"] == volume_id
    return done


def test_volume_lifecycle(client, make_disk, new_path, wait_action):
    disk = make_disk(12 << 20, chunks=3)
    original = disk.read_bytes()
    name = volume_name("data")
    created = client.volumes.create(
        {
            "name": name,
            "region": "local-1",
            "size_gigabytes": 1,
            "description": "app data",
            "disk": {"path": str(disk), "format": "raw"},
        }
    )["volume"]
    assert created["name"] == name
    assert UUID.match(created["id"]), created["id"]
    assert created["region"]["slug"] == "local-1"
    assert created["description"] == "app data"
    assert created["drydock"]["disk"]["size_bytes"] == 12 << 20
    volume_id = created["id"]

    assert client.volumes.get(volume_id)["volume"]["name"] == name
    listed = client.volumes.list(name=name)
    assert [v["id"] for v in listed["volumes"]] == [volume_id]
    assert listed["meta"]["total"] == 1
    assert volume_id in {v["id"] for v in client.volumes.list(region="local-1", per_page=200)["volumes"]}
    assert client.volumes.list(name=name, region="local-2")["volumes"] == []

    # A volume snapshot is answered finished, with a UUID id.
    snapshot = client.volume_snapshots.create(volume_id, {"name": "before-upgrade"})["snapshot"]
    assert UUID.match(snapshot["id"]), snapshot["id"]
    assert snapshot["name"] == "before-upgrade"
    assert snapshot["resource_type"] == "volume"
    assert snapshot["resource_id"] == volume_id
    assert client.snapshots.get(snapshot["id"])["snapshot"]["name"] == "before-upgrade"
    assert client.volume_snapshots.get_by_id(snapshot["id"])["snapshot"]["id"] == snapshot["id"]
    listed = client.volume_snapshots.list(volume_id)
    assert [s["id"] for s in listed["snapshots"]] == [snapshot["id"]]
    assert snapshot["id"] in {s["id"] for s in client.snapshots.list(resource_type="volume", per_page=200)["snapshots"]}
    assert snapshot["id"] not in {
        s["id"] for s in client.snapshots.list(resource_type="droplet", per_page=200)["snapshots"]
    }

    # A new volume from the snapshot, on a new disk.
    target = new_path()
    restored_name = volume_name("restored")
    restored = client.volumes.create(
        {"name": restored_name, "snapshot_id": snapshot["id"], "disk": {"path": str(target), "format": "raw"}}
    )["volume"]
    assert restored["name"] == restored_name
    wait_volume_create(client, wait_action, restored["id"])
    assert target.read_bytes() == original

    assert client.volume_snapshots.delete_by_id(snapshot["id"]) is None
    assert client.volume_snapshots.get_by_id(snapshot["id"])["id"] == "not_found"
    assert client.snapshots.get(snapshot["id"])["id"] == "not_found"
    assert client.volume_snapshots.list(volume_id)["snapshots"] == []

    assert client.volumes.delete_by_name(name=name, region="local-1") is None
    assert client.volumes.get(volume_id)["id"] == "not_found"
    assert client.volumes.list(name=name)["volumes"] == []
    assert client.volumes.delete(restored["id"]) is None
    assert client.volumes.get(restored["id"])["id"] == "not_found"
    # The disks are the user's: deleting volumes leaves them.
    assert disk.exists() and target.exists()


def test_volume_snapshot_deleted_through_snapshots(client, make_disk):
    volume = client.volumes.create({"name": volume_name("tmp"), "disk": {"path": str(make_disk(4 << 20))}})["volume"]
    snapshot = client.volume_snapshots.create(volume["id"], {"name": "s1"})["snapshot"]
    assert client.snapshots.delete(snapshot["id"]) is None
    assert client.snapshots.get(snapshot["id"])["id"] == "not_found"
    assert client.volume_snapshots.list(volume["id"])["snapshots"] == []
    assert client.volumes.delete(volume["id"]) is None


def test_invalid_volumes_are_refused(client, make_disk, new_path):
    disk = make_disk(1 << 20, chunks=1)
    for body, status in (
        ({"name": "Upper-Case", "disk": {"path": str(disk)}}, 422),
        ({"name": volume_name("nodisk")}, 422),
        ({"name": volume_name("missing"), "disk": {"path": str(new_path())}}, 422),
        (
            {
                "name": volume_name("badsnap"),
                "snapshot_id": "00000000-0000-0000-0000-000000000000",
                "disk": {"path": str(new_path())},
            },
            404,
        ),
    ):
        # volumes.create lists 404 as expected (returned), the rest raise.
        if status == 404:
            assert client.volumes.create(body)["id"] == "not_found"
            continue
        with pytest.raises(HttpResponseError) as raised:
            client.volumes.create(body)
        assert raised.value.status_code == status, (body, raised.value)
        assert raised.value.response.json()["message"]
