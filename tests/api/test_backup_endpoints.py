"""drydock's own backup endpoints on the session daemon (scheduler off): the retention simulator,
volume backup actions, extended policies through pydo, backup runs, retention plans and usage.
The expected figures are worked out by hand from docs/backups.md."""

import pytest
import requests
from conftest import unique


class Api:
    """Plain HTTP for the endpoints pydo does not know."""

    def __init__(self, drydock, token: str | None):
        self.base = drydock.endpoint
        self.verify = str(drydock.cert)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, expect: int, headers: dict | None = None, **kwargs) -> dict:
        headers = {**self.headers, **(headers or {})}
        response = requests.request(method, self.base + path, headers=headers, verify=self.verify, timeout=30, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()


@pytest.fixture(scope="module")
def api(drydock):
    return Api(drydock, drydock.tokens["full"])


def simulate(api, expect=200, **body) -> dict:
    return api.call("POST", "/drydock/v1/retention/simulate", expect, json=body)


def test_a_daily_policy_keeps_the_last_seven_days(api):
    # Windows at 04:00 UTC on 1 to 30 January; at the end (31 January 00:00) the backups of
    # 24 January and later are younger than 7 days. 26 January is a Monday: first of its ISO week.
    answer = simulate(api, policy={"plan": "daily", "hour": 4}, start="2026-01-01T00:00:00Z", days=30)
    simulation = answer["simulation"]
    assert (simulation["taken"], simulation["pruned"], simulation["kept"]) == (30, 23, 7)
    assert simulation["end"] == "2026-01-31T00:00:00Z"
    days = [b["taken_at"][:10] for b in simulation["backups"]]
    assert days == [f"2026-01-{d}" for d in range(24, 31)]
    # Spread over the first half of the 04:00-08:00 window.
    assert {b["taken_at"][11:13] for b in simulation["backups"]} <= {"04", "05"}, simulation["backups"]
    tags = {b["taken_at"][:10]: b["tags"] for b in simulation["backups"]}
    assert tags["2026-01-26"] == ["daily", "weekly"]
    assert tags["2026-01-25"] == ["daily"]
    assert {tuple(b["reasons"]) for b in simulation["backups"]} == {("younger than 7 days",)}
    estimate = answer["estimate"]
    assert estimate["stored_bytes"] > estimate["data_bytes"] > 0
    assert estimate["monthly_cost"] > 0


def test_a_weekly_policy_with_a_count_keeps_the_newest_two(api):
    # Sundays 20:00 in January 2026: the 4th, 11th, 18th and 25th, each first of its ISO week.
    policy = {"plan": "weekly", "weekday": "SUN", "hour": 20, "keep_weekly": 2}
    simulation = simulate(api, policy=policy, start="2026-01-01T00:00:00Z", days=30)["simulation"]
    assert (simulation["taken"], simulation["pruned"], simulation["kept"]) == (4, 2, 2)
    kept = [(b["taken_at"][:10], b["tags"], b["reasons"]) for b in simulation["backups"]]
    assert kept == [
        ("2026-01-18", ["daily", "weekly"], ["newest 2 of 2 weekly"]),
        ("2026-01-25", ["daily", "weekly"], ["newest 1 of 2 weekly"]),
    ]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"days": 0}, "days"),
        ({"days": 4000}, "days"),
        ({"policy": {"cron": "* * * * *"}, "days": 365}, "100000 backups"),
        ({"policy": {"plan": "fortnightly"}}, "fortnightly"),
        ({"change_per_backup": 2}, "change_per_backup"),
    ],
)
def test_impossible_simulations_are_refused(api, body, needle):
    error = simulate(api, expect=422, **body)
    assert needle in error["message"], error


def test_the_simulator_needs_a_token_and_json(drydock, api):
    Api(drydock, None).call("POST", "/drydock/v1/retention/simulate", 401, json={})
    error = api.call(
        "POST", "/drydock/v1/retention/simulate", 400, data="{", headers={"Content-Type": "application/json"}
    )
    assert error["id"] == "bad_request", error


def test_extended_policies_are_stored_and_shown(client, register, api):
    droplet = register()
    paris = {"plan": "intra_daily_4h", "time_zone": "Europe/Paris", "keep_daily": 7, "keep_weekly": 4}
    client.droplet_actions.post(droplet["id"], {"type": "enable_backups", "backup_policy": paris})
    stored = client.droplets.get_backup_policy(droplet["id"])["policy"]["backup_policy"]
    assert {k: stored[k] for k in paris} == paris
    view = client.droplets.get(droplet["id"])["droplet"]
    window = view["next_backup_window"]
    assert window["start"] < window["end"], window
    assert view["drydock"]["backups"]["status"] == "pending"

    cron = {"cron": "30 3 * * 0,4"}
    client.droplet_actions.post(droplet["id"], {"type": "change_backup_policy", "backup_policy": cron})
    stored = client.droplets.get_backup_policy(droplet["id"])["policy"]["backup_policy"]
    assert (stored["plan"], stored["cron"]) == ("cron", "30 3 * * 0,4")
    window = client.droplets.get(droplet["id"])["droplet"]["next_backup_window"]
    assert window["start"][11:16] == "03:30", window

    runs = api.call("GET", f"/drydock/v1/droplets/{droplet['id']}/backup_runs", 200)
    assert runs == {"backup_runs": []}
    plan = api.call("GET", f"/drydock/v1/droplets/{droplet['id']}/retention", 200)
    assert plan["backups"] == [], plan


@pytest.mark.parametrize("limit", ["0", "-1", "abc"])
def test_backup_runs_refuse_a_bad_limit(api, register, limit):
    droplet = register()
    error = api.call("GET", f"/drydock/v1/droplets/{droplet['id']}/backup_runs?limit={limit}", 400)
    assert "limit" in error["message"], error
    api.call("GET", "/drydock/v1/droplets/999999/backup_runs", 404)


def test_volume_backups_are_turned_on_changed_and_off(client, make_disk, api):
    volume = client.volumes.create({"name": unique("vol"), "disk": {"path": str(make_disk(4 << 20))}})["volume"]
    path = f"/v2/volumes/{volume['id']}/actions"
    weekly = {"plan": "weekly", "weekday": "TUE", "hour": 8}
    for body in (
        {"type": "enable_backups", "backup_policy": weekly},
        {"type": "change_backup_policy", "backup_policy": {"plan": "daily", "hour": 12}},
    ):
        action = api.call("POST", path, 202, json=body)["action"]
        assert (action["type"], action["status"]) == (body["type"], "completed")
    shown = client.volumes.get(volume["id"])["volume"]["drydock"]
    assert shown["backups_enabled"] is True
    assert (shown["backup_policy"]["plan"], shown["backup_policy"]["hour"]) == ("daily", 12)
    assert shown["backups"]["status"] == "pending"

    error = api.call("POST", path, 422, json={"type": "change_backup_policy", "backup_policy": {"hour": 3}})
    assert "hour" in error["message"], error
    api.call("POST", path, 202, json={"type": "disable_backups"})
    shown = client.volumes.get(volume["id"])["volume"]["drydock"]
    assert (shown["backups_enabled"], shown["backups"]["status"]) == (False, "disabled")


def test_usage_counts_a_snapshot(client, register, wait_action, api):
    droplet = register()
    action = client.droplet_actions.post(droplet["id"], {"type": "snapshot", "name": unique("snap")})["action"]
    assert wait_action(client, action["id"])["status"] == "completed"
    usage = api.call("GET", "/drydock/v1/usage", 200)["usage"]
    mine = [r for r in usage["resources"] if r["resource_id"] == str(droplet["id"])]
    assert len(mine) == 1, usage["resources"]
    assert mine[0]["snapshots"] == 1 and mine[0]["backups"] == 0
    # The 16 MiB disk holds 1 MiB of random data: that is what is stored, however sparse.
    assert mine[0]["logical_bytes"] == 16 << 20
    assert 0 < mine[0]["stored_bytes"] < 4 << 20
    totals = usage["totals"]
    assert totals["stored_bytes"] >= mine[0]["stored_bytes"] and totals["monthly_cost"] > 0


def test_invalid_volume_actions_are_refused(client, make_disk, api):
    volume = client.volumes.create({"name": unique("vol"), "disk": {"path": str(make_disk(4 << 20))}})["volume"]
    path = f"/v2/volumes/{volume['id']}/actions"
    for body, needle in (
        ({"type": "attach"}, "attach"),
        ({"type": "change_backup_policy"}, "backup_policy"),
        ({"type": "snapshot_everything"}, "snapshot_everything"),
    ):
        assert needle in api.call("POST", path, 422, json=body)["message"]
    api.call("POST", "/v2/volumes/no-such-volume/actions", 404, json={"type": "disable_backups"})
