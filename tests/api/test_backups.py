"""Backup settings: stored by actions that complete at once (the scheduler is the next issue)."""

import pytest
from pydo.exceptions import HttpResponseError


def post_and_check(client, droplet_id: int, body: dict) -> dict:
    action = client.droplet_actions.post(droplet_id, body)["action"]
    assert action["type"] == body["type"]
    # Catalog-only changes are done by the time the request is answered.
    assert action["status"] == "completed", action
    assert client.actions.get(action["id"])["action"]["status"] == "completed"
    return action


def test_enable_change_disable_backups(client, register):
    droplet = register()
    assert client.droplets.get_backup_policy(droplet["id"])["policy"]["backup_enabled"] is False

    post_and_check(
        client,
        droplet["id"],
        {"type": "enable_backups", "backup_policy": {"plan": "daily", "hour": 4}},
    )
    policy = client.droplets.get_backup_policy(droplet["id"])["policy"]
    assert policy["droplet_id"] == droplet["id"]
    assert policy["backup_enabled"] is True
    assert policy["backup_policy"]["plan"] == "daily"
    assert policy["backup_policy"]["hour"] == 4
    assert "backups" in client.droplets.get(droplet["id"])["droplet"]["features"]

    post_and_check(
        client,
        droplet["id"],
        {"type": "change_backup_policy", "backup_policy": {"plan": "weekly", "weekday": "SUN", "hour": 20}},
    )
    policy = client.droplets.get_backup_policy(droplet["id"])["policy"]
    assert policy["backup_enabled"] is True
    assert policy["backup_policy"]["plan"] == "weekly"
    assert policy["backup_policy"]["weekday"] == "SUN"
    assert policy["backup_policy"]["hour"] == 20

    policies = client.droplets.list_backup_policies(per_page=200)["policies"]
    assert isinstance(policies, dict)
    assert policies[str(droplet["id"])]["backup_policy"]["plan"] == "weekly"

    post_and_check(client, droplet["id"], {"type": "disable_backups"})
    assert client.droplets.get_backup_policy(droplet["id"])["policy"]["backup_enabled"] is False
    assert client.droplets.list_backup_policies(per_page=200)["policies"][str(droplet["id"])]["backup_enabled"] is False
    assert "backups" not in client.droplets.get(droplet["id"])["droplet"]["features"]


def test_register_with_backups_enabled(client, register):
    droplet = register(backups=True, backup_policy={"plan": "weekly", "weekday": "MON", "hour": 8})
    policy = client.droplets.get_backup_policy(droplet["id"])["policy"]
    assert policy["backup_enabled"] is True
    assert (policy["backup_policy"]["plan"], policy["backup_policy"]["weekday"]) == ("weekly", "MON")


def test_supported_policies(client):
    supported = client.droplets.list_supported_backup_policies()["supported_policies"]
    names = {p["name"] for p in supported}
    assert {"daily", "weekly"} <= names


def test_invalid_policies_are_refused(client, register):
    droplet = register()
    for body in (
        {"type": "change_backup_policy"},
        {"type": "enable_backups", "backup_policy": {"plan": "fortnightly"}},
        {"type": "enable_backups", "backup_policy": {"plan": "daily", "replication_regions": ["mars-1"]}},
        {"type": "enable_backups", "backup_policy": {"plan": "weekly", "weekday": "SUN", "hour": 25}},
    ):
        with pytest.raises(HttpResponseError) as raised:
            client.droplet_actions.post(droplet["id"], body)
        assert raised.value.status_code == 422, body
