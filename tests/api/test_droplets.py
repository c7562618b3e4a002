"""Registering, reading, listing (with pagination and filters) and deleting droplets."""

from urllib.parse import parse_qs, urlparse

import pytest
from pydo.exceptions import HttpResponseError

from conftest import unique


def test_register_a_disk(client, make_disk, wait_action):
    disk = make_disk(24 << 20)
    name = unique("web")
    response = client.droplets.create(
        {"name": name, "disk": {"path": str(disk), "format": "raw"}, "tags": ["env:test"], "region": "local-1"}
    )
    droplet = response["droplet"]
    assert droplet["name"] == name
    assert droplet["status"] == "active"
    assert droplet["tags"] == ["env:test"]
    assert droplet["region"]["slug"] == "local-1"
    assert droplet["disk"] == 1  # GiB, rounded up
    assert droplet["drydock"]["disk"] == {"path": str(disk), "format": "raw", "size_bytes": 24 << 20}
    assert droplet["drydock"]["power"]["driver"] == "none"
    link = response["links"]["actions"][0]
    assert link["rel"] == "create"
    action = wait_action(client, link["id"])
    assert action["status"] == "completed"
    assert action["type"] == "create"
    assert action["resource_type"] == "droplet"
    assert action["resource_id"] == droplet["id"]

    got = client.droplets.get(droplet["id"])["droplet"]
    assert got["id"] == droplet["id"]
    assert got["name"] == name
    assert got["locked"] is False
    assert got["snapshot_ids"] == []


def test_register_defaults_to_the_first_region(register):
    assert register()["region"]["slug"] == "local-1"


def page_of(url: str) -> int:
    """What pydo's README does with `links.pages.next`: read its `page` parameter."""
    return int(parse_qs(urlparse(url).query)["page"][0])


def all_pages(list_call, key: str, per_page: int, **filters) -> tuple[list, list]:
    """Follows `links.pages.next` from page 1; returns the items and the `meta.total` of each page."""
    items, totals, page = [], [], 1
    while True:
        response = list_call(per_page=per_page, page=page, **filters)
        items.extend(response[key])
        totals.append(response["meta"]["total"])
        pages = response.get("links", {}).get("pages", {})
        assert len(response[key]) <= per_page
        if "next" not in pages:
            return items, totals
        next_page = page_of(pages["next"])
        assert next_page == page + 1, pages
        page = next_page


def test_list_paginates_every_droplet_exactly_once(client, register, make_disk):
    tag = unique("page")
    disk = make_disk(1 << 20, chunks=1)  # droplets may share a disk: registration only reads it
    registered = {register(disk=disk, tags=[tag])["id"] for _ in range(25)}

    items, totals = all_pages(client.droplets.list, "droplets", 10, tag_name=tag)
    ids = [d["id"] for d in items]
    assert totals == [25, 25, 25]
    assert len(ids) == 25 and set(ids) == registered

    # The whole list, which also holds other tests' droplets, pages the same way.
    items, totals = all_pages(client.droplets.list, "droplets", 10)
    ids = [d["id"] for d in items]
    assert len(ids) == len(set(ids)) == totals[0]
    assert set(totals) == {totals[0]}
    assert registered <= set(ids)

    # Past the end: an empty page that links back.
    beyond = client.droplets.list(per_page=10, page=9, tag_name=tag)
    assert beyond["droplets"] == []
    assert beyond["meta"]["total"] == 25
    assert "next" not in beyond["links"]["pages"]
    assert page_of(beyond["links"]["pages"]["first"]) == 1

    last = client.droplets.list(per_page=10, page=3, tag_name=tag)
    assert len(last["droplets"]) == 5
    assert {"first", "prev"} <= set(last["links"]["pages"])
    assert page_of(last["links"]["pages"]["prev"]) == 2


def test_page_sizes_are_checked_and_capped(client, register):
    register()
    for bad in ({"per_page": 0}, {"page": 0}):
        with pytest.raises(HttpResponseError) as raised:
            client.droplets.list(**bad)
        assert raised.value.status_code == 400
        assert raised.value.response.json()["id"] == "bad_request"
    total = client.droplets.list()["meta"]["total"]
    assert len(client.droplets.list(per_page=1000)["droplets"]) == min(total, 200)


def test_list_filters_by_tag_and_name(client, register):
    tag = unique("tagged")
    tagged = register(tags=[tag, "other-tag"])
    untagged = register()
    listed = client.droplets.list(tag_name=tag)
    assert [d["id"] for d in listed["droplets"]] == [tagged["id"]]
    assert listed["meta"]["total"] == 1

    by_name = client.droplets.list(name=untagged["name"])
    assert [d["id"] for d in by_name["droplets"]] == [untagged["id"]]
    assert client.droplets.list(name=unique("nobody"))["droplets"] == []


def test_destroy_then_get_is_not_found(client, register, make_disk):
    disk = make_disk()
    droplet = register(disk=disk)
    assert client.droplets.destroy(droplet["id"]) is None
    # droplets.get lists 404 as an expected status: pydo returns the error body.
    missing = client.droplets.get(droplet["id"])
    assert missing["id"] == "not_found"
    assert missing["message"]
    assert missing["request_id"]
    assert droplet["id"] not in {d["id"] for d in client.droplets.list(per_page=200)["droplets"]}
    # Deleting a droplet forgets it; the disk itself is the user's and stays.
    assert disk.exists()
    # droplets.destroy accepts 404 too: a second delete returns the error body.
    assert client.droplets.destroy(droplet["id"])["id"] == "not_found"


def test_destroy_by_tag(client, register):
    tag = unique("doomed")
    ids = {register(tags=[tag])["id"] for _ in range(2)}
    keep = register()
    assert client.droplets.destroy_by_tag(tag_name=tag) is None
    for droplet_id in ids:
        assert client.droplets.get(droplet_id)["id"] == "not_found"
    assert client.droplets.get(keep["id"])["droplet"]["id"] == keep["id"]


def test_rename(client, register, wait_action):
    droplet = register()
    name = unique("renamed")
    action = client.droplet_actions.post(droplet["id"], {"type": "rename", "name": name})["action"]
    assert wait_action(client, action["id"])["status"] == "completed"
    assert client.droplets.get(droplet["id"])["droplet"]["name"] == name
