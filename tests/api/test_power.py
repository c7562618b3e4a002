"""Power actions through the command driver, whose commands keep the machine's state in a file."""

import shlex

import pytest
from pydo.exceptions import HttpResponseError

from conftest import unique


@pytest.fixture
def switchable(drydock, register):
    """A droplet whose power state is the word in a file: `on` or `off`."""
    state = drydock.root / f"{unique('power')}.state"
    state.write_text("on\n")
    f = shlex.quote(str(state))
    power = {
        "driver": "command",
        "on": f"echo on > {f}",
        "off": f"echo off > {f}",
        "status": f"grep -q on {f}",
        "timeout_secs": 10,
    }
    return register(power=power), state


def act(client, wait_action, droplet_id: int, body: dict) -> dict:
    action = client.droplet_actions.post(droplet_id, body)["action"]
    done = wait_action(client, action["id"])
    assert done["status"] == "completed", done
    return done


def test_power_off_and_on(client, switchable, wait_action):
    droplet, state = switchable
    assert droplet["status"] == "active"
    assert droplet["drydock"]["power"]["driver"] == "command"

    act(client, wait_action, droplet["id"], {"type": "power_off"})
    assert state.read_text().strip() == "off"
    assert client.droplets.get(droplet["id"])["droplet"]["status"] == "off"

    act(client, wait_action, droplet["id"], {"type": "power_on"})
    assert state.read_text().strip() == "on"
    assert client.droplets.get(droplet["id"])["droplet"]["status"] == "active"


def test_reboot_and_power_cycle_end_powered_on(client, switchable, wait_action):
    droplet, state = switchable
    for kind in ("shutdown", "power_on", "reboot", "power_cycle"):
        act(client, wait_action, droplet["id"], {"type": kind})
    assert state.read_text().strip() == "on"
    assert client.droplets.get(droplet["id"])["droplet"]["status"] == "active"


def test_registering_a_powered_off_machine_shows_it_off(drydock, register):
    state = drydock.root / f"{unique('power')}.state"
    state.write_text("off\n")
    f = shlex.quote(str(state))
    droplet = register(
        power={"driver": "command", "on": f"echo on > {f}", "off": f"echo off > {f}", "status": f"grep -q on {f}"}
    )
    assert droplet["status"] == "off"


def test_snapshot_with_power_off_leaves_the_machine_on(client, switchable, wait_action):
    droplet, state = switchable
    act(client, wait_action, droplet["id"], {"type": "snapshot", "name": "cold", "power_off": True})
    assert state.read_text().strip() == "on"
    after = client.droplets.get(droplet["id"])["droplet"]
    assert after["status"] == "active"
    assert len(after["snapshot_ids"]) == 1


def test_power_actions_need_a_power_driver(client, register):
    droplet = register()  # power driver "none"
    for body in (
        {"type": "power_off"},
        {"type": "power_on"},
        {"type": "reboot"},
        {"type": "snapshot", "power_off": True},
    ):
        with pytest.raises(HttpResponseError) as raised:
            client.droplet_actions.post(droplet["id"], body)
        assert raised.value.status_code == 422, body
        assert raised.value.response.json()["id"] == "unprocessable_entity"
    # None of the refused requests left the droplet locked.
    assert client.droplets.get(droplet["id"])["droplet"]["locked"] is False


def test_a_failing_power_command_errors_the_action(client, drydock, register, wait_action):
    state = drydock.root / f"{unique('power')}.state"
    state.write_text("on\n")
    f = shlex.quote(str(state))
    droplet = register(
        power={
            "driver": "command",
            "on": f"echo on > {f}",
            "off": "echo broken >&2; exit 3",
            "status": f"grep -q on {f}",
            "timeout_secs": 5,
        }
    )
    action = client.droplet_actions.post(droplet["id"], {"type": "power_off"})["action"]
    done = wait_action(client, action["id"])
    assert done["status"] == "errored"
    assert done["drydock"]["error"]
    after = client.droplets.get(droplet["id"])["droplet"]
    assert after["locked"] is False
    assert after["status"] == "active"
