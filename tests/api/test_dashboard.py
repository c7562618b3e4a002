"""The web dashboard in real headless Chromium (browser.py) against the real daemon: sign in,
register a droplet, enable backups through the flow, Snapshot Now and watch its progress,
restore into a new droplet, delete a snapshot after confirming, and every screen on a desktop
and a phone with no console error; then each of the other buttons, a scheduled backup's *Convert
to snapshot* on a daemon whose scheduler runs on a fast clock. Screenshots go to
target/ui-artifacts.

The dashboard's team ("dashboard") is its own, so its lists hold only what these tests made.
"""

import hashlib
import re
import time
import uuid

import pytest
import requests
from playwright.sync_api import expect
from browser import DESKTOP, PHONE, Browser, shot, sign_in
from conftest import own_daemon, poll_action, unique, write_disk

FIRST_LOAD_BYTES_MAX = 300 * 1024
# The scheduling daemon's clock: an hour every 5 s, so an hourly backup comes within seconds.
CLOCK_SPEED = 720
BACKUP_WAIT_SECS = 60

# Every visible text on the page whose contrast with its background is below WCAG AA (4.5:1, or
# 3:1 for large text). The background is the nearest ancestor's opaque one; disabled controls are
# exempt, as WCAG has them.
LOW_CONTRAST = """() => {
    const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
    const luminance = ([r, g, b]) => {
        const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
            const c = rgb(getComputedStyle(e).backgroundColor);
            if (c.length < 4 || c[3] === 1) return c;
        }
        return [255, 255, 255];
    };
    const low = [];
    for (const el of document.querySelectorAll("body *")) {
        if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
        if (!el.checkVisibility() || el.closest(":disabled")) continue;
        const style = getComputedStyle(el);
        const [a, b] = [luminance(rgb(style.color)), luminance(background(el))].sort((x, y) => y - x);
        const ratio = (a + 0.05) / (b + 0.05);
        const size = parseFloat(style.fontSize);
        const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
        if (ratio < (large ? 3 : 4.5)) low.push(`${el.tagName} "${el.textContent.trim().slice(0, 40)}" ${ratio.toFixed(2)}:1`);
    }
    return low;
}"""


@pytest.fixture(scope="module")
def browser(drydock):
    b = Browser(drydock.endpoint)
    yield b
    b.close()


@pytest.fixture(scope="module")
def ui_token(drydock):
    return drydock.create_token("*", team="dashboard", name="dashboard")


@pytest.fixture(scope="module")
def ui_client(drydock, ui_token):
    return drydock.client(ui_token)


@pytest.fixture
def page(browser):
    with browser.checked_page() as page:
        yield page


@pytest.fixture(scope="module")
def scheduling_daemon(tmp_path_factory):
    """A daemon of its own whose scheduler runs on a fast clock: backups come only from a
    scheduler, which the suite's shared daemon has off."""
    scheduler = f"[scheduler]\nenabled = true\ntick_secs = 0.2\nclock_speed = {CLOCK_SPEED}\n"
    with own_daemon(tmp_path_factory.mktemp("dashboard-schedule"), scheduler) as daemon:
        yield daemon


def kept_after(drydock, token: str, policy: dict, days: int = 400) -> int:
    """How many backups the API's simulator keeps after `days` of `policy`."""
    response = requests.post(
        f"{drydock.endpoint}/drydock/v1/retention/simulate",
        json={"policy": policy, "days": days},
        headers={"Authorization": f"Bearer {token}"},
        verify=str(drydock.cert),
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["simulation"]["kept"]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dashboard_is_served_from_the_binary_with_a_strict_policy(drydock):
    index = requests.get(f"{drydock.endpoint}/", verify=str(drydock.cert), timeout=10)
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    policy = index.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    # Nothing from outside this server.
    assert "http://" not in index.text and "https://" not in index.text
    script = requests.get(f"{drydock.endpoint}/ui/js/app.js", verify=str(drydock.cert), timeout=10)
    assert script.headers["content-type"].startswith("text/javascript")
    again = requests.get(
        f"{drydock.endpoint}/ui/js/app.js",
        headers={"If-None-Match": script.headers["etag"]},
        verify=str(drydock.cert),
        timeout=10,
    )
    assert again.status_code == 304
    missing = requests.get(f"{drydock.endpoint}/ui/js/nothing.js", verify=str(drydock.cert), timeout=10)
    assert missing.status_code == 404 and "nothing.js" in missing.json()["message"]


def test_sign_in_refuses_a_wrong_token_in_words_then_shows_the_empty_state(drydock, page, ui_token):
    page.goto(f"{drydock.endpoint}/")
    page.get_by_label("API token").fill("dop_v1_" + "0" * 64)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    # The refused request is logged by Chromium as a failed resource: expected here.
    page.problems.clear()
    page.get_by_label("API token").fill(ui_token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="No droplets yet").wait_for()
    assert "drydock droplet register" in page.locator("pre").inner_text()
    shot(page, "droplets-empty")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API token").wait_for()


def test_register_enable_backups_snapshot_restore_and_delete(drydock, page, ui_token, ui_client, make_disk, new_path):
    disk = make_disk(size_bytes=256 << 20, chunks=64, chunk_bytes=1 << 20)
    name = f"web-{uuid.uuid4().hex[:6]}"
    sign_in(page, drydock.endpoint, ui_token)

    # Register a droplet.
    page.get_by_role("link", name="Register a droplet").first.click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Disk", exact=True).fill(str(disk))
    shot(page, "register-droplet")
    page.get_by_role("button", name="Register droplet").click()
    page.get_by_role("heading", name=name).wait_for()
    droplet_id = int(page.url.rsplit("/", 1)[1])

    # Enable backups: schedule → retention with the simulator → replication → Start Backups.
    page.get_by_role("link", name="Enable backups").click()
    page.get_by_label("Frequency").select_option("daily")
    page.get_by_label("Time", exact=True).select_option("4")
    page.get_by_label("Time zone").select_option("Europe/Paris")
    shot(page, "enable-backups-schedule")
    page.get_by_role("button", name="Next").click()
    assert page.get_by_label("Keep daily backups").input_value() == "7"
    assert page.get_by_label("Keep weekly backups").input_value() == "4"
    assert page.get_by_label("Keep monthly backups").input_value() == "12"
    # The simulator shows what the API's simulator answers for the plan being set up.
    plan = {"plan": "daily", "hour": 4, "time_zone": "Europe/Paris", "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12}
    page.get_by_text(f"{kept_after(drydock, ui_token, plan)} backups kept").wait_for()
    assert "a month" in page.locator(".notice", has_text="backups kept").inner_text()
    page.get_by_label("Keep daily backups").fill("3")
    page.get_by_text(f"{kept_after(drydock, ui_token, {**plan, 'keep_daily': 3})} backups kept").wait_for()
    shot(page, "enable-backups-retention")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Test local-2 (local-2)").check()
    shot(page, "enable-backups-replication")
    page.get_by_role("button", name="Start Backups").click()
    # Back on the droplet once the action completed.
    expect(page).to_have_url(re.compile(f"#/droplets/{droplet_id}$"))
    backups = page.get_by_role("region", name="Backups")
    assert "Daily at 04:00 Europe/Paris" in backups.inner_text()
    assert "local-2" in backups.inner_text()
    policy = ui_client.droplets.get(droplet_id)["droplet"]["drydock"]["backup_policy"]
    assert policy["plan"] == "daily" and policy["hour"] == 4 and policy["time_zone"] == "Europe/Paris"
    assert (policy["keep_daily"], policy["keep_weekly"], policy["keep_monthly"]) == (3, 4, 12)
    assert policy["replication_regions"] == ["local-2"]

    # It is on the Active tab now.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Droplets").click()
    page.get_by_role("tab", name="Active (1)").wait_for()
    assert page.get_by_role("link", name=name).is_visible()
    shot(page, "droplets-active")
    page.get_by_role("link", name=name).click()

    # Snapshot Now: the progress shown while it runs, until it completes.
    page.evaluate(
        """() => {
            window.seenProgress = [];
            new MutationObserver(() => {
                for (const bar of document.querySelectorAll('progress')) window.seenProgress.push(Number(bar.value));
            }).observe(document.body, {subtree: true, childList: true, attributes: true});
        }"""
    )
    page.get_by_role("button", name="Snapshot Now").click()
    notice = page.locator(".notice[role=status]", has_text="Snapshot (action")
    notice.wait_for()
    notice.get_by_text("completed").wait_for(timeout=120_000)
    seen = page.evaluate("window.seenProgress")
    assert seen and min(seen) < 100, f"no progress was shown while the snapshot ran: {seen}"
    shot(page, "droplet-detail")
    snapshots = ui_client.droplets.list_snapshots(droplet_id)["snapshots"]
    assert len(snapshots) == 1
    snapshot = snapshots[0]
    row = page.locator("tr", has_text=snapshot["name"])
    row.get_by_text("manual").wait_for()

    # Restore into a new droplet.
    target = new_path()
    row.get_by_role("button", name="New droplet").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill(f"{name}-copy")
    dialog.get_by_label("Disk path").fill(str(target))
    dialog.get_by_role("button", name="Create droplet").click()
    page.get_by_role("heading", name=f"{name}-copy").wait_for(timeout=120_000)
    assert sha256(target) == sha256(disk)
    shot(page, "restored-droplet")

    # Delete the snapshot: cancelling keeps it, confirming deletes it.
    page.goto(f"{drydock.endpoint}/#/droplets/{droplet_id}")
    row = page.locator("tr", has_text=snapshot["name"])
    row.get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("dialog")
    assert "cannot be restored" in confirm.inner_text()
    shot(page, "delete-confirmation")
    confirm.get_by_role("button", name="Cancel").click()
    assert ui_client.droplets.list_snapshots(droplet_id)["snapshots"]
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete snapshot").click()
    row.wait_for(state="detached")
    assert ui_client.droplets.list_snapshots(droplet_id)["snapshots"] == []


def test_every_screen_renders_on_desktop_and_phone_without_errors(drydock, browser, ui_token, ui_client, make_disk):
    created = ui_client.droplets.create({"name": unique("screens"), "disk": {"path": str(make_disk())}})
    assert poll_action(ui_client, created["links"]["actions"][0]["id"])["status"] == "completed"
    droplet = created["droplet"]
    volume = ui_client.volumes.create({"name": unique("data"), "region": "local-1", "disk": {"path": str(make_disk())}})
    volume = volume["volume"]
    screens = {
        "droplets": ("#/droplets", "Droplets"),
        "droplets-inactive": ("#/droplets/inactive", "Droplets"),
        "register-droplet": ("#/droplets/new", "Register a droplet"),
        "droplet": (f"#/droplets/{droplet['id']}", droplet["name"]),
        "enable-backups": (f"#/droplets/{droplet['id']}/backups", f"Enable backups of {droplet['name']}"),
        "volumes": ("#/volumes", "Volumes"),
        "register-volume": ("#/volumes/new", "Register a volume"),
        "volume": (f"#/volumes/{volume['id']}", volume["name"]),
        "volume-backups": (f"#/volumes/{volume['id']}/backups", f"Enable backups of {volume['name']}"),
        "actions": ("#/actions", "Actions"),
        "regions": ("#/regions", "Regions"),
        "usage": ("#/usage", "Usage and cost"),
        "tokens": ("#/tokens", "API tokens"),
        "not-found": ("#/nowhere", "Not found"),
    }
    for size_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        with browser.checked_page(viewport=viewport) as page:
            sign_in(page, drydock.endpoint, ui_token)
            for screen, (route, heading) in screens.items():
                page.goto(f"{drydock.endpoint}/{route}")
                # A new hash is a navigation within the page: wait for the new view, not the old.
                expect(page.locator("main h1").first).to_contain_text(heading)
                assert not page.locator(".notice.bad").count(), page.locator(".notice.bad").inner_text()
                unlabelled = page.evaluate(
                    """() => [...document.querySelectorAll('input, select, textarea, button')]
                        .filter(el => !el.closest('[hidden]') && !(el.labels?.length || el.getAttribute('aria-label')
                            || el.getAttribute('aria-labelledby') || el.textContent.trim()))
                        .map(el => el.outerHTML)"""
                )
                assert not unlabelled, f"{screen}: controls without a label: {unlabelled}"
                low = page.evaluate(LOW_CONTRAST)
                assert not low, f"{screen}: text below WCAG AA contrast: {low}"
                if size_name == "phone":
                    width = page.evaluate("document.documentElement.scrollWidth")
                    assert width <= PHONE["width"], f"{screen} is {width} px wide on a phone"
                shot(page, f"{screen}-{size_name}")


def test_errors_are_shown_in_words(drydock, page, ui_token):
    sign_in(page, drydock.endpoint, ui_token)
    page.goto(f"{drydock.endpoint}/#/droplets/999999")
    expect(page.get_by_role("alert")).to_contain_text("droplet 999999 not found")
    # Chromium logs the 404 it was answered as a failed resource: expected here.
    page.problems.clear()
    page.goto(f"{drydock.endpoint}/#/droplets/new")
    page.get_by_label("Name").fill("web-err")
    page.get_by_label("Disk", exact=True).fill("/etc/passwd")
    page.get_by_role("button", name="Register droplet").click()
    expect(page.get_by_role("alert")).to_contain_text("/etc/passwd")
    page.problems.clear()


def test_keyboard_alone_signs_in_and_moves_between_screens(drydock, page, ui_token):
    page.goto(f"{drydock.endpoint}/")
    # The token field has focus on arrival; Enter submits.
    expect(page.get_by_label("API token")).to_be_focused()
    page.keyboard.type(ui_token)
    page.keyboard.press("Enter")
    expect(page.locator("main h1").first).to_contain_text("Droplets")
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Regions":
            break
    else:
        raise AssertionError("Tab never reached the Regions link")
    page.keyboard.press("Enter")
    expect(page.locator("main h1").first).to_have_text("Regions")
    # Where the keyboard is stays visible.
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"


def test_first_load_transfers_less_than_300_kb(drydock, page):
    page.goto(f"{drydock.endpoint}/")
    page.get_by_label("API token").wait_for()
    transferred = page.evaluate(
        """() => performance.getEntriesByType('navigation')[0].transferSize
            + performance.getEntriesByType('resource').reduce((total, r) => total + r.transferSize, 0)"""
    )
    assert 0 < transferred < FIRST_LOAD_BYTES_MAX, transferred


def test_power_off_and_snapshot_switches_the_machine_off_then_on(drydock, page, ui_token, ui_client, make_disk, tmp_path):
    state, log = tmp_path / "state", tmp_path / "log"
    state.write_text("on\n")
    power = {
        "driver": "command",
        "on": f"echo on > {state}; echo on >> {log}",
        "off": f"echo off > {state}; echo off >> {log}",
        "shutdown": f"echo off > {state}; echo shutdown >> {log}",
        "status": f"grep -q on {state}",
    }
    name = f"db-{uuid.uuid4().hex[:6]}"
    created = ui_client.droplets.create({"name": name, "disk": {"path": str(make_disk())}, "power": power})
    assert poll_action(ui_client, created["links"]["actions"][0]["id"])["status"] == "completed"
    sign_in(page, drydock.endpoint, ui_token)
    page.goto(f"{drydock.endpoint}/#/droplets/{created['droplet']['id']}")
    expect(page.get_by_role("region", name="Server")).to_contain_text("command")
    page.get_by_role("button", name="Power off and snapshot").click()
    notice = page.locator(".notice[role=status]", has_text="Power off and snapshot (action")
    expect(notice).to_contain_text("completed", timeout=60_000)
    # Shut down cleanly, snapshot, on again: and the snapshot is listed.
    assert log.read_text().split() == ["shutdown", "on"]
    assert state.read_text().strip() == "on"
    assert len(ui_client.droplets.list_snapshots(created["droplet"]["id"])["snapshots"]) == 1


def test_restore_in_place_and_copy_to_region_from_the_snapshots_table(drydock, page, ui_token, ui_client, make_disk):
    disk = make_disk()
    original = sha256(disk)
    created = ui_client.droplets.create({"name": unique("app"), "disk": {"path": str(disk)}})
    assert poll_action(ui_client, created["links"]["actions"][0]["id"])["status"] == "completed"
    droplet_id = created["droplet"]["id"]
    action = ui_client.droplet_actions.post(droplet_id, {"type": "snapshot", "name": "before-change"})["action"]
    assert poll_action(ui_client, action["id"])["status"] == "completed"
    with disk.open("r+b") as f:
        f.write(b"changed after the snapshot" * 1000)
    assert sha256(disk) != original

    sign_in(page, drydock.endpoint, ui_token)
    page.goto(f"{drydock.endpoint}/#/droplets/{droplet_id}")
    row = page.locator("tr", has_text="before-change")
    row.get_by_role("button", name="Restore").click()
    page.get_by_role("dialog").get_by_role("button", name="Restore").click()
    expect(page.locator(".notice[role=status]", has_text="Restoring")).to_contain_text("completed", timeout=60_000)
    assert sha256(disk) == original

    row.get_by_role("button", name="Copy to region").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Region").select_option("local-2")
    dialog.get_by_role("button", name="Copy").click()
    expect(page.locator(".notice[role=status]", has_text="Copying")).to_contain_text("completed", timeout=60_000)
    expect(page.locator("tr", has_text="before-change")).to_contain_text("local-1, local-2")
    image = ui_client.droplets.list_snapshots(droplet_id)["snapshots"][0]
    assert sorted(image["regions"]) == ["local-1", "local-2"]


def test_tokens_are_created_with_scopes_and_revoked_after_confirming(drydock, page, ui_token):
    sign_in(page, drydock.endpoint, ui_token)
    page.goto(f"{drydock.endpoint}/#/tokens")
    name = unique("reader")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Access").select_option("read")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label(f"Secret of token {name}").input_value()
    assert secret.startswith("dop_v1_")
    client = drydock.client(secret)
    assert client.account.get()["account"]
    row = page.locator("tr", has_text=name)
    expect(row).to_contain_text("read")
    row.get_by_role("button", name=f"Revoke token {name}").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke token").click()
    expect(row).to_have_count(0)
    response = requests.get(
        f"{drydock.endpoint}/v2/account",
        headers={"Authorization": f"Bearer {secret}"},
        verify=str(drydock.cert),
        timeout=10,
    )
    assert response.status_code == 401


def test_a_volume_is_snapshotted_and_a_new_volume_made_from_it(drydock, page, ui_token, ui_client, make_disk, new_path):
    disk = make_disk()
    volume = ui_client.volumes.create({"name": unique("vol"), "region": "local-1", "disk": {"path": str(disk)}})["volume"]
    sign_in(page, drydock.endpoint, ui_token)
    page.goto(f"{drydock.endpoint}/#/volumes/{volume['id']}")
    page.get_by_role("button", name="Snapshot Now").click()
    row = page.locator("main tbody tr", has_text=volume["name"])
    expect(row).to_contain_text("completed", timeout=60_000)
    target = new_path()
    row.get_by_role("button", name="New volume").click()
    dialog = page.get_by_role("dialog")
    copy_name = unique("copy")
    dialog.get_by_label("Name").fill(copy_name)
    dialog.get_by_label("Disk path").fill(str(target))
    dialog.get_by_role("button", name="Create volume").click()
    expect(page.locator("main h1").first).to_contain_text(copy_name)
    copy = next(v for v in ui_client.volumes.list()["volumes"] if v["name"] == copy_name)
    # The new volume is written by its create action: wait for it, then compare.
    for action in ui_client.volume_actions.list(copy["id"])["actions"]:
        poll_action(ui_client, action["id"])
    assert sha256(target) == sha256(disk)


def test_a_scheduled_backup_is_converted_to_a_snapshot(scheduling_daemon, browser):
    daemon = scheduling_daemon
    client = daemon.client(daemon.tokens["full"])
    disk = write_disk(daemon.disks_dir / "web.img", 8 << 20)
    policy = {"plan": "hourly", "keep_hourly": 24}
    created = client.droplets.create(
        {"name": unique("web"), "disk": {"path": str(disk)}, "backups": True, "backup_policy": policy}
    )
    droplet_id = created["droplet"]["id"]
    deadline = time.monotonic() + BACKUP_WAIT_SECS
    while not (backups := client.droplets.list_backups(droplet_id)["backups"]):
        assert time.monotonic() < deadline, f"no backup within {BACKUP_WAIT_SECS} s:\n{daemon.log_text()}"
        time.sleep(0.5)
    # No more backups, so that the table holds still.
    client.droplet_actions.post(droplet_id, {"type": "disable_backups"})
    backup = backups[0]

    with browser.checked_page(endpoint=daemon.endpoint) as page:
        sign_in(page, daemon.endpoint, daemon.tokens["full"])
        page.goto(f"{daemon.endpoint}/#/droplets/{droplet_id}")
        row = page.locator("tr", has_text=backup["name"])
        expect(row).to_contain_text("hourly")
        row.get_by_role("button", name="Convert to snapshot").click()
        notice = page.locator(".notice[role=status]", has_text="Converting")
        expect(notice).to_contain_text("completed", timeout=60_000)
        # Now a snapshot: kept whatever the plan says, and not convertible again.
        expect(row.get_by_role("button", name="Convert to snapshot")).to_have_count(0)
        # The backup that ran is still the last one, though it is a snapshot now.
        page.reload()
        last = page.locator("dt", has_text="Last backup").locator("xpath=following-sibling::dd[1]")
        expect(last).not_to_contain_text("none yet")
        shot(page, "droplet-backup-converted")
    assert backup["id"] in [s["id"] for s in client.droplets.list_snapshots(droplet_id)["snapshots"]]
    assert backup["id"] not in [b["id"] for b in client.droplets.list_backups(droplet_id)["backups"]]
    assert client.droplets.get(droplet_id)["droplet"]["drydock"]["backups"]["successes"] >= 1
