"""Errors as pydo sees them: 401 raised as ClientAuthenticationError, 403 and 422 as
HttpResponseError with a message, 404 returned as the error body where pydo expects it."""

import pydo
import pytest
from azure.core.exceptions import ClientAuthenticationError
from pydo.exceptions import HttpResponseError

from conftest import unique


def raised(status: int, call, *args, **kwargs) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as info:
        call(*args, **kwargs)
    error = info.value
    assert error.status_code == status, error
    # pydo's own helpers print err.error.message: it must be there.
    assert error.error is not None and error.error.message, error
    body = error.response.json()
    assert set(body) == {"id", "message", "request_id"}, body
    return error


@pytest.mark.parametrize("token", ["", "dop_v1_" + "0" * 64, "not-a-token"])
def test_missing_or_bad_token_is_401(drydock, token):
    client = pydo.Client(token, endpoint=drydock.endpoint, connection_verify=str(drydock.cert), retry_total=0)
    with pytest.raises(ClientAuthenticationError) as info:
        client.droplets.list()
    assert info.value.status_code == 401
    assert info.value.response.json()["id"] == "unauthorized"
    with pytest.raises(ClientAuthenticationError):
        client.account.get()


def test_read_only_token_reads_but_cannot_act(read_client, register):
    droplet = register()
    assert read_client.droplets.get(droplet["id"])["droplet"]["id"] == droplet["id"]
    assert read_client.snapshots.list()["snapshots"] is not None
    error = raised(403, read_client.droplet_actions.post, droplet["id"], {"type": "snapshot"})
    assert error.response.json()["id"] == "forbidden"
    raised(403, read_client.droplets.create, {"name": "nope", "disk": {"path": "/nonexistent"}})
    raised(403, read_client.droplets.destroy, droplet["id"])
    raised(403, read_client.volumes.create, {"name": "nope", "disk": {"path": "/nonexistent"}})


def test_a_scope_covers_only_its_resource(droplet_read_client, register):
    droplet = register()
    assert droplet_read_client.droplets.get(droplet["id"])["droplet"]["id"] == droplet["id"]
    raised(403, droplet_read_client.snapshots.list)
    raised(403, droplet_read_client.images.list)
    raised(403, droplet_read_client.volumes.list)
    raised(403, droplet_read_client.droplet_actions.post, droplet["id"], {"type": "power_off"})


def test_unknown_ids_are_not_found(client):
    for result in (
        client.droplets.get(999999),
        client.actions.get(999999),
        client.images.get(999999),
        client.snapshots.get("999999"),
        client.droplet_actions.list(999999),
        client.droplet_actions.post(999999, {"type": "snapshot"}),
        client.volumes.get("00000000-0000-0000-0000-000000000000"),
        client.volume_snapshots.get_by_id("00000000-0000-0000-0000-000000000000"),
    ):
        assert result["id"] == "not_found", result
        assert result["message"]
        assert result["request_id"]


def test_unknown_and_unsupported_action_types_are_422(client, register):
    droplet = register()
    error = raised(422, client.droplet_actions.post, droplet["id"], {"type": "teleport"})
    assert error.response.json()["id"] == "unprocessable_entity"
    assert "teleport" in error.error.message
    raised(422, client.droplet_actions.post, droplet["id"], {"type": "resize", "size": "s-1vcpu-1gb"})
    raised(422, client.droplet_actions.post, droplet["id"], {"name": "no type"})
    raised(422, client.droplet_actions.post_by_tag, {"type": "restore", "image": 1}, tag_name="any")


def test_invalid_registrations_are_422(client, drydock, make_disk, tmp_path):
    disk = make_disk(1 << 20, chunks=1)
    outside = tmp_path / "outside.img"
    outside.write_bytes(b"\0" * 4096)
    for body in (
        {"disk": {"path": str(disk)}},  # no name
        {"name": "bad name!", "disk": {"path": str(disk)}},
        {"name": unique("nodisk")},
        {"name": unique("missing"), "disk": {"path": str(drydock.disks_dir / "missing.img")}},
        {"name": unique("outside"), "disk": {"path": str(outside)}},
        {"name": unique("escape"), "disk": {"path": f"{drydock.disks_dir}/../data/catalog.sqlite"}},
        {"name": unique("format"), "disk": {"path": str(disk), "format": "vmdk"}},
        {"name": unique("region"), "region": "mars-1", "disk": {"path": str(disk)}},
        {"name": unique("power"), "disk": {"path": str(disk)}, "power": {"driver": "magic"}},
    ):
        raised(422, client.droplets.create, body)


def test_other_teams_see_nothing(client, other_client, register, wait_action):
    droplet = register()
    action = client.droplet_actions.post(droplet["id"], {"type": "snapshot", "name": "private"})["action"]
    assert wait_action(client, action["id"])["status"] == "completed"
    [image_id] = client.droplets.get(droplet["id"])["droplet"]["snapshot_ids"]

    assert other_client.droplets.list()["droplets"] == []
    assert other_client.droplets.list()["meta"]["total"] == 0
    assert other_client.droplets.get(droplet["id"])["id"] == "not_found"
    assert other_client.actions.get(action["id"])["id"] == "not_found"
    assert other_client.snapshots.list()["snapshots"] == []
    assert other_client.images.list(private=True)["images"] == []
    assert other_client.images.get(image_id)["id"] == "not_found"
    assert other_client.snapshots.get(str(image_id))["id"] == "not_found"
    assert other_client.droplet_actions.post(droplet["id"], {"type": "snapshot"})["id"] == "not_found"
    assert other_client.snapshots.delete(str(image_id))["id"] == "not_found"
    assert other_client.droplets.destroy(droplet["id"])["id"] == "not_found"
    assert other_client.volumes.list()["volumes"] == []
    # And the first team still has everything.
    assert client.images.get(image_id)["image"]["id"] == image_id


def test_another_team_cannot_create_from_or_restore_foreign_images(
    client, other_client, register, make_disk, new_path, wait_action
):
    droplet = register()
    action = client.droplet_actions.post(droplet["id"], {"type": "snapshot", "name": "mine"})["action"]
    assert wait_action(client, action["id"])["status"] == "completed"
    [image_id] = client.droplets.get(droplet["id"])["droplet"]["snapshot_ids"]
    # droplets.create accepts only 202: the 404 is raised.
    with pytest.raises(HttpResponseError) as info:
        other_client.droplets.create({"name": unique("thief"), "image": image_id, "disk": {"path": str(new_path())}})
    assert info.value.status_code == 404
    theirs = other_client.droplets.create({"name": unique("theirs"), "disk": {"path": str(make_disk(1 << 20, 1))}})
    result = other_client.droplet_actions.post(theirs["droplet"]["id"], {"type": "restore", "image": image_id})
    assert result["id"] == "not_found"
