"""Account, regions, sizes, and the rate-limit headers pydo deserializes."""

from conftest import RATE_LIMIT_PER_HOUR, REGIONS


def test_account_belongs_to_the_token_team(client, other_client):
    account = client.account.get()["account"]
    assert account["status"] == "active"
    assert account["team"]["name"] == "default"
    assert account["uuid"]
    other = other_client.account.get()["account"]
    assert other["team"]["name"] == "other"
    assert other["uuid"] != account["uuid"]


def test_regions_are_the_configured_ones(client):
    response = client.regions.list()
    regions = response["regions"]
    assert [r["slug"] for r in regions] == list(REGIONS)
    assert all(r["available"] for r in regions)
    assert all("image_transfer" in r["features"] for r in regions)
    assert response["meta"]["total"] == 2
    assert response["links"]["pages"] == {}


def test_regions_paginate(client):
    first = client.regions.list(per_page=1, page=1)
    assert [r["slug"] for r in first["regions"]] == [REGIONS[0]]
    assert "page=2" in first["links"]["pages"]["next"]
    second = client.regions.list(per_page=1, page=2)
    assert [r["slug"] for r in second["regions"]] == [REGIONS[1]]
    assert "next" not in second["links"]["pages"]


def test_sizes_list_the_registered_size(client):
    response = client.sizes.list()
    assert response["meta"]["total"] == 1
    size = response["sizes"][0]
    assert size["slug"] == "registered"
    assert sorted(size["regions"]) == sorted(REGIONS)


def test_rate_limit_headers_are_integers(client):
    # pydo deserializes these headers as int: a non-integer would raise inside pydo.
    headers = client.account.get(cls=lambda response, body, headers: headers)
    limit, remaining, reset = (headers[k] for k in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"))
    assert all(isinstance(v, int) for v in (limit, remaining, reset)), headers
    assert limit == RATE_LIMIT_PER_HOUR
    assert 0 <= remaining < limit
    assert reset > 1_600_000_000  # an epoch time
    again = client.account.get(cls=lambda response, body, headers: headers)
    assert again["ratelimit-remaining"] < remaining


def test_rate_limit_headers_on_list_calls(client):
    headers = client.droplets.list(cls=lambda response, body, headers: headers)
    assert isinstance(headers["ratelimit-remaining"], int)
