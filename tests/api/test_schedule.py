"""The backup scheduler, end to end: a daemon of its own on a fast clock (an hour every 5 real
seconds, from just before a new year in UTC), with three droplets on hourly plans:

- "small" (16 MiB; keep_hourly 3, keep_daily 2), whose disk a thread replaces with a new
  version every 0.3 s, so that every backup holds different data and pruning frees space;
- "big" (512 MiB sparse, 256 MiB of random data; keep_hourly 2), given fresh data before the
  windows the tests need a long backup in (a backup of unchanged data takes a blink here);
- "broken", whose disk is deleted after registration: every window fails after 5 attempts.

and a webhook receiver. The tests run in order on the same daemon and prove issue 4's "done
when": backups on schedule, tagged, pruned and gc'd beside running backups with every kept
backup restoring bit-exactly (first and last test), a restart in the middle of a window neither
skipping nor doubling a backup (SIGKILL, then SIGTERM with windows missed while down), signed
and retried webhooks for success, failure and missed windows, and /metrics parsed by Prometheus'
own parser. Everything takes about a minute of real time (a minute and a half on a loaded machine).
"""

import json
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import drydock_binary, poll_action, unique, write_disk
from schedule_helpers import (
    FastClock,
    RestartableDaemon,
    VersionedDisk,
    WebhookReceiver,
    due_at,
    expected_kept,
    expected_signature,
    floor_hour,
    hour_starts,
    log_tail,
    parse_time,
    sha256_file,
    tagged_successes,
    wait_for,
)

# Scheduler seconds per real second: one scheduler hour, and so one hourly window, is 5 s.
SPEED = 720
HOUR = timedelta(hours=1)
# Where the scheduler's clock starts: a new year (and month and day) comes 17 real seconds in.
START_BEFORE_NEW_YEAR = timedelta(hours=3, minutes=20)
SMALL_BYTES = 16 << 20
SMALL_PERIOD_SECS = 0.3
BIG_BYTES = 512 << 20
BIG_CHUNKS = 256
BIG_CHUNK_BYTES = 1 << 20
SMALL_KEEP = {"hourly": 3, "daily": 2}
BIG_KEEP = {"hourly": 2}
SMALL_POLICY = {"plan": "hourly", **{f"keep_{tag}": count for tag, count in SMALL_KEEP.items()}}
BIG_POLICY = {"plan": "hourly", **{f"keep_{tag}": count for tag, count in BIG_KEEP.items()}}
BROKEN_POLICY = {"plan": "hourly", "keep_hourly": 1}
# Windows the schedule tests wait for; generous for a loaded 2-core machine.
SMALL_SUCCESSES_WANTED = 6
WINDOW_TIMEOUT_SECS = 60
RESTORE_TIMEOUT_SECS = 180
# How long the daemon stays stopped in the SIGTERM test: about 2.4 scheduler hours.
DOWNTIME_SECS = 12
# The SIGKILL test only kills a backup with this much of its window left, so that the restarted
# daemon has time to retry inside the window (a restart takes about a second, 12 minutes here).
KILL_WINDOW_LEFT = timedelta(minutes=40)
# Windows to try in for a backup of big seen in progress (it takes about a second).
TRIES = 4
# Attempts of a failing backup inside its window, with a backoff of 1, 2, 4, 8 minutes between.
MAX_ATTEMPTS = 5
EVENT_KINDS = ("backup.succeeded", "backup.failed", "backup.missed")
EVENT_DATA_KEYS = {
    "kind", "team_id", "resource_type", "resource_id", "resource_name", "window_start", "window_end", "at",
    "attempts", "action_id", "image_id", "size_bytes", "duration_secs", "tags", "error",
}  # fmt: skip
METRIC_FAMILIES = {
    "drydock_backup_last_success_timestamp_seconds",
    "drydock_backup_last_duration_seconds",
    "drydock_backup_last_size_bytes",
    "drydock_backup_successes_total",
    "drydock_backup_failures_total",
    "drydock_backup_missed_total",
    "drydock_backup_stale",
    "drydock_backup_enabled",
    "drydock_actions_running",
    "drydock_build_info",
}


def next_new_year_start() -> datetime:
    """A moment shortly before a new year (UTC), at least a day ahead of the wall clock."""
    year = (datetime.now(UTC) + timedelta(days=2)).year
    return datetime(year + 1, 1, 1, tzinfo=UTC) - START_BEFORE_NEW_YEAR


def scheduler_config(clock: FastClock, webhook_url: str, secret: str) -> str:
    return f"""[scheduler]
enabled = true
tick_secs = 0.2
max_concurrent_backups = 3
gc_interval_hours = 3
prune_interval_minutes = 30
clock_speed = {clock.speed}
clock_epoch = "{clock.epoch_text()}"

[[webhooks]]
url = "{webhook_url}"
secret = "{secret}"
"""


def all_attempts_used(attempts: int, failed_at: str, window_end: str) -> bool:
    """A failed run tried 5 times, unless its window closed before the next attempt was due
    (the backoff doubles from a minute)."""
    next_attempt = parse_time(failed_at) + timedelta(minutes=2 ** (attempts - 1))
    return attempts == MAX_ATTEMPTS or (0 < attempts < MAX_ATTEMPTS and next_attempt >= parse_time(window_end))


class Schedule:
    """The daemon under test, its clock, receiver and droplets, shared by the tests in order."""

    def __init__(self, daemon: RestartableDaemon, token: str, clock: FastClock, receiver: WebhookReceiver, secret):
        self.daemon = daemon
        self.token = token
        self.clock = clock
        self.receiver = receiver
        self.secret = secret
        self.client = daemon.client(token)
        self.session = requests.Session()
        # Freed by gc in earlier lives of the daemon (its status starts again at every start).
        self.bytes_freed_before = 0
        self.small = self.big = self.broken = None
        self.small_disk = self.big_disk = None

    # --- talking to the daemon -------------------------------------------------------------

    def request(self, method: str, path: str, body=None, expect=(200,)):
        response = self.session.request(
            method,
            self.daemon.endpoint + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            # Given per request: REQUESTS_CA_BUNDLE in the environment would override the session's.
            verify=str(self.daemon.cert),
            timeout=30,
        )
        assert response.status_code in expect, (
            f"{method} {path} answered {response.status_code}: {response.text[:2000]}{log_tail(self.daemon)}"
        )
        return response

    def get(self, path: str) -> dict:
        return self.request("GET", path).json()

    def runs(self, droplet_id: int) -> list[dict]:
        """The droplet's backup runs, newest first."""
        return self.get(f"/drydock/v1/droplets/{droplet_id}/backup_runs?limit=1000")["backup_runs"]

    def backups(self, droplet_id: int) -> list[dict]:
        return self.client.droplets.list_backups(droplet_id, per_page=200)["backups"]

    def run_by_id(self, droplet_id: int, run_id: int) -> dict:
        return next(r for r in self.runs(droplet_id) if r["id"] == run_id)

    def droplet(self, droplet_id: int) -> dict:
        return self.client.droplets.get(droplet_id)["droplet"]

    def action(self, action_id: int) -> dict:
        return self.client.actions.get(action_id)["action"]

    def gc_status(self) -> dict:
        return self.get("/drydock/v1/gc")["gc"]

    def wait(self, what: str, check, timeout: float = WINDOW_TIMEOUT_SECS, interval: float = 0.1):
        return wait_for(what, check, self.daemon, timeout, interval)

    def fail(self, message: str):
        raise AssertionError(message + log_tail(self.daemon))

    # --- setting up ------------------------------------------------------------------------

    def register(self, name: str, disk: Path, **fields) -> dict:
        body = {"name": name, "disk": {"path": str(disk), "format": "raw"}, **fields}
        response = self.client.droplets.create(body)
        action = poll_action(self.client, response["links"]["actions"][0]["id"])
        assert action["status"] == "completed", action
        return response["droplet"]

    def register_droplets(self):
        disks = self.daemon.disks_dir
        self.big_disk = VersionedDisk(disks / "big.img", BIG_BYTES, BIG_CHUNKS, BIG_CHUNK_BYTES)
        self.big = self.register("big", self.big_disk.path, backups=True, backup_policy=BIG_POLICY)
        self.small_disk = VersionedDisk(disks / "small.img", SMALL_BYTES, 4, 256 << 10, period=SMALL_PERIOD_SECS)
        self.small = self.register("small", self.small_disk.path, backups=True, backup_policy=SMALL_POLICY)
        self.small_disk.start()
        # Backups are turned on only once the disk is gone, so that no backup can start before.
        broken_disk = write_disk(disks / "broken.img", 4 << 20)
        self.broken = self.register("broken", broken_disk)
        broken_disk.unlink()
        action = self.client.droplet_actions.post(
            self.broken["id"], {"type": "enable_backups", "backup_policy": BROKEN_POLICY}
        )["action"]
        assert action["status"] == "completed", action
        self.broken_enabled_at = self.clock.now()

    # --- actions on the daemon -------------------------------------------------------------

    def restart(self, kill: bool):
        """SIGKILL (or SIGTERM and wait) and start again on the same configuration: the fast
        clock continues where real time has taken it."""
        if not kill:
            code = self.daemon.stop()
            assert code == 0, f"drydock serve exited with {code} after SIGTERM{log_tail(self.daemon)}"
        else:
            self.daemon.kill()
        self.start_again()

    def start_again(self):
        self.daemon.start()
        self.client = self.daemon.client(self.token)
        self.session = requests.Session()

    def remember_gc(self):
        """Adds what gc freed in this life of the daemon, before it ends."""
        self.bytes_freed_before += self.gc_status()["bytes_freed_total"]

    def run_gc(self) -> dict:
        """Runs a gc and returns the status once it has ended."""
        return self.finish_gc(self.start_gc())

    def start_gc(self) -> dict:
        """Starts a gc once none is running (the scheduler's may be); returns the status from
        just before."""

        def start():
            before = self.gc_status()
            if before["running"]:
                return None
            started = self.request("POST", "/drydock/v1/gc", expect=(202,)).json()
            assert started["gc"]["running"] is True, started
            return before if started["started"] else None

        return self.wait("a gc to start", start)

    def finish_gc(self, before: dict) -> dict:
        """Waits for the gc started after `before` to end; checks it had no errors."""
        after = self.wait(
            "the gc to finish",
            lambda: s if not (s := self.gc_status())["running"] and s["runs"] >= before["runs"] + 1 else None,
        )
        assert after["last_errors"] == [], after
        return after

    def restore(self, image_id: int) -> str:
        """Restores a backup into a new droplet on a new disk; returns the disk's SHA-256."""
        path = self.daemon.disks_dir / f"restored-{uuid.uuid4().hex[:12]}.img"
        response = self.client.droplets.create(
            {"name": unique("restored"), "image": image_id, "disk": {"path": str(path), "format": "raw"}}
        )
        action = poll_action(self.client, response["links"]["actions"][0]["id"], timeout=RESTORE_TIMEOUT_SECS)
        assert action["status"] == "completed", f"restoring backup {image_id}: {action}{log_tail(self.daemon)}"
        digest = sha256_file(path)
        # The restored droplet is not needed any more: its disk is big and the listing short.
        self.client.droplets.destroy(response["droplet"]["id"])
        path.unlink(missing_ok=True)
        return digest

    def assert_no_image(self, image_id: int | None):
        """A failed run made no image. (The daemon reports the id of the last attempt's image,
        discarded when the attempt failed, rather than none: it must at least not exist.)"""
        if image_id is not None:
            self.request("GET", f"/v2/images/{image_id}", expect=(404,))

    def wait_idle(self, droplet_id: int) -> dict | None:
        """Waits until no backup of the droplet is running; returns its newest run."""

        def idle():
            runs = self.runs(droplet_id)
            return {"run": runs[0] if runs else None} if not runs or runs[0]["status"] != "running" else None

        return self.wait(f"droplet {droplet_id} to have no backup running", idle)["run"]

    def long_backup_of_big(self) -> tuple[dict, dict, int] | None:
        """Gives big new data and waits for its next backup to be moving it; returns (run,
        action, version), or None if the backup ended before it was seen in progress."""
        version = self.big_disk.write_version()
        # A backup that began before the new version was in place is let finish first.
        last = self.wait_idle(self.big["id"])
        after_run_id = last["id"] if last else 0

        def moving():
            run = self.runs(self.big["id"])[0]
            if run["id"] <= after_run_id or run["action_id"] is None:
                return None
            action = self.action(run["action_id"])
            if action["status"] != "in-progress":
                return {"ended": (run, action)}
            return {"moving": (run, action)} if action["drydock"]["progress"]["bytes_done"] > 0 else None

        seen = self.wait("a backup of big to be moving data", moving, interval=0.02)
        return (*seen["moving"], version) if "moving" in seen else None

    def settled_retention(self, droplet_id: int, keep: dict[str, int], timeout: float = 30) -> tuple[list, list]:
        """The droplet's tagged successful runs and its backups, read when retention has been
        applied after the last success and no backup ended between the reads (retention runs
        just after a run is recorded succeeded, so a read may fall in between: it is repeated).
        Fails naming the difference if the backups never agree with the rule."""
        seen = {}

        def agree():
            before = self.runs(droplet_id)
            backups = self.backups(droplet_id)
            after = self.runs(droplet_id)
            successes = tagged_successes(before)
            if successes != tagged_successes(after):
                return None
            expected = expected_kept(successes, keep)
            actual = {b["id"] for b in backups}
            seen.update(expected=sorted(expected), actual=sorted(actual), successes=successes)
            return (successes, backups) if expected == actual else None

        try:
            return wait_for("retention to agree with the rule", agree, self.daemon, timeout, 0.2)
        except AssertionError:
            runs = [(s["id"], s["image_id"], s["taken_at"], sorted(s["tags"])) for s in seen.get("successes", [])]
            self.fail(
                f"droplet {droplet_id}: kept backups {seen.get('actual')} but the rule keeps {seen.get('expected')};"
                f" successful runs (run, image, taken_at, tags): {runs}"
            )


@pytest.fixture(scope="module")
def schedule(request, tmp_path_factory):
    binary = drydock_binary()
    receiver = WebhookReceiver()
    secret = "whsec-" + uuid.uuid4().hex
    clock = FastClock.reaching(SPEED, next_new_year_start())
    daemon = RestartableDaemon(
        tmp_path_factory.mktemp("schedule"), binary, extra_config=scheduler_config(clock, receiver.url, secret)
    )
    daemon.write_config()
    token = daemon.create_token("*", name="schedule")
    daemon.start()
    env = Schedule(daemon, token, clock, receiver, secret)
    failed_before = request.session.testsfailed
    try:
        env.register_droplets()
        yield env
    finally:
        if env.small_disk is not None:
            env.small_disk.stop()
        code = daemon.stop() if daemon.process.poll() is None else daemon.process.returncode
        receiver.close()
    assert code == 0, f"drydock serve exited with {code} after SIGTERM{log_tail(daemon)}"
    log = daemon.full_log()
    # Every life of the daemon in one file, kept with the data when a test failed.
    (daemon.root / "daemon-all.log").write_text(log)
    problems = [line for line in log.splitlines() if "panicked" in line or " ERROR " in line]
    assert not problems, "the daemon logged errors:\n" + "\n".join(problems)
    check = subprocess.run(
        [str(daemon.bin), "catalog", "check", "--data-dir", str(daemon.data_dir), "--config", str(daemon.config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, f"catalog check: {check.stdout}{check.stderr}"
    if request.session.testsfailed == failed_before:
        shutil.rmtree(daemon.root, ignore_errors=True)


def test_backups_are_taken_on_schedule_tagged_pruned_and_gc_runs_beside_a_running_backup(schedule):
    s = schedule
    small = s.small["id"]
    s.wait(
        f"{SMALL_SUCCESSES_WANTED} successful backups of small",
        lambda: len(tagged_successes(s.runs(small))) >= SMALL_SUCCESSES_WANTED,
        timeout=SMALL_SUCCESSES_WANTED * WINDOW_TIMEOUT_SECS / 2,
        interval=0.5,
    )
    # One backup per hourly window, each taken inside its window and never before the moment
    # the spread gives the droplet in it (a hash of its key into the window's first half).
    for droplet in (small, s.big["id"]):
        for run in tagged_successes(s.runs(droplet)):
            start, end, taken = parse_time(run["window"]["start"]), parse_time(run["window"]["end"]), run["taken"]
            due = due_at(start, end, f"droplet:{droplet}")
            assert end - start == HOUR, run
            assert due <= taken < end, f"backup of droplet {droplet} taken outside [{due}, {end}): {run}"
            assert run["image_id"] is not None and run["attempts"] == 1, run

    # gc beside a backup of big that is moving fresh data: it neither waits for the backup nor
    # breaks it. Seen to overlap: the backup is still running once the gc has started.
    for _ in range(TRIES):
        seen = s.long_backup_of_big()
        if seen is None:
            continue
        run, action, version = seen
        before = s.start_gc()
        overlapped = s.action(action["id"])["status"] == "in-progress"
        gc = s.finish_gc(before)
        if overlapped:
            break
    else:
        s.fail(f"no gc could be started during a backup of big in {TRIES} windows")
    assert gc["last_errors"] == [], gc
    done = s.wait(
        f"big's backup {run['id']} to end",
        lambda: r if (r := s.run_by_id(s.big["id"], run["id"]))["status"] not in ("running", "retrying") else None,
    )
    assert done["status"] == "succeeded" and done["attempts"] == 1, done
    assert s.action(action["id"])["status"] == "completed"
    # Restored at once, before retention prunes it (big keeps 2).
    restored = s.restore(done["image_id"])
    assert restored == s.big_disk.versions[version], f"big's backup {done['image_id']} restored other data"

    # Small's backups are exactly those the retention rule keeps of all its successful runs.
    successes, backups = s.settled_retention(small, SMALL_KEEP)
    by_image = {r["image_id"]: r for r in successes}
    for backup in backups:
        image = s.client.images.get(backup["id"])["image"]
        run = by_image[backup["id"]]
        assert image["type"] == "backup", image
        assert "hourly" in image["tags"], image
        assert set(image["tags"]) == run["tags"], f"image {image['id']} has tags {image['tags']}, expected {run}"
        assert parse_time(image["created_at"]) == run["taken"], (image, run)
    days = {r["taken"].date() for r in successes}
    if len(days) > 1:
        # The clock passed midnight: the first backup of each day is kept as a daily beside the
        # newest hourly ones.
        assert len(backups) > SMALL_KEEP["hourly"], (backups, successes)
    plan = s.get(f"/drydock/v1/droplets/{small}/retention")
    assert {b["id"] for b in plan["backups"]} == {b["id"] for b in backups}, plan
    assert all(b["keep"] and b["reasons"] for b in plan["backups"]), plan
    assert plan["policy"]["keep_hourly"] == 3 and plan["policy"]["keep_daily"] == 2, plan

    # Pruned backups are gone, but their tags came with their backup.succeeded events. The very
    # first backup is the first of its day, week, month and year.
    first = successes[0]
    assert first["tags"] == {"hourly", "daily", "weekly", "monthly", "yearly"}, first
    events = {e["image_id"]: e for e in s.receiver.events("backup.succeeded", small)}
    for run in successes:
        if run["image_id"] in events:
            assert set(events[run["image_id"]]["tags"]) == run["tags"], (events[run["image_id"]], run)
    assert first["image_id"] in events, "no backup.succeeded event for small's first backup"


def test_sigkill_in_the_middle_of_a_backup_neither_skips_nor_doubles_it(schedule):
    s = schedule
    big = s.big["id"]
    for _ in range(TRIES):
        seen = s.long_backup_of_big()
        if seen is None:
            continue
        run, action, version = seen
        window_start, window_end = parse_time(run["window"]["start"]), parse_time(run["window"]["end"])
        if window_end - s.clock.now() < KILL_WINDOW_LEFT:
            continue  # too late in its window for a retry to fit: try the next one
        s.remember_gc()
        s.restart(kill=True)
        if s.action(action["id"])["status"] == "completed":
            continue  # the backup ended just before the kill: try again
        break
    else:
        s.fail(f"no backup of big could be killed in the middle in {TRIES} windows")

    killed = s.action(action["id"])
    assert killed["status"] == "errored", killed
    assert "interrupted" in (killed["drydock"]["error"] or ""), killed

    def window_runs():
        return [r for r in s.runs(big) if r["window"]["start"] == run["window"]["start"]]

    retried = s.wait(
        f"the killed window {run['window']} to end",
        lambda: r if (r := window_runs()) and r[0]["status"] not in ("running", "retrying") else None,
    )
    assert len(retried) == 1, f"the window has {len(retried)} runs: {retried}"
    retried = retried[0]
    assert retried["id"] == run["id"], (run, retried)
    assert retried["status"] == "succeeded", f"{retried}{log_tail(s.daemon)}"
    assert (retried["attempts"], retried["failed_attempts"]) == (2, 1), retried
    assert retried["action_id"] != action["id"] and retried["image_id"] != run["image_id"], (run, retried)
    assert window_start <= parse_time(retried["taken_at"]) < window_end, retried

    # Exactly one backup image of that window exists (checked before retention prunes it), and
    # the image the killed attempt had begun is gone.
    in_window = [b for b in s.backups(big) if window_start <= parse_time(b["created_at"]) < window_end]
    assert [b["id"] for b in in_window] == [retried["image_id"]], in_window
    s.request("GET", f"/v2/images/{run['image_id']}", expect=(404,))
    backup_actions = [a for a in s.client.droplet_actions.list(big, per_page=200)["actions"] if a["type"] == "backup"]
    assert not [a for a in backup_actions if a["status"] == "in-progress" and a["id"] <= retried["action_id"]]
    assert s.action(retried["action_id"])["status"] == "completed"
    restored = s.restore(retried["image_id"])
    assert restored == s.big_disk.versions[version], "big's retried backup restored other data"


def test_sigterm_downtime_records_missed_windows_and_runs_the_open_one_once(schedule):
    s = schedule
    targets = {"small": s.small["id"], "big": s.big["id"]}
    s.remember_gc()
    stopped_at = s.clock.now()
    down_since = time.monotonic()
    code = s.daemon.stop()
    assert code == 0, f"drydock serve exited with {code} after SIGTERM{log_tail(s.daemon)}"
    time.sleep(max(0.0, DOWNTIME_SECS - (time.monotonic() - down_since)))
    restarted_at = s.clock.now()
    s.start_again()
    assert restarted_at - stopped_at > 2 * HOUR, (stopped_at, restarted_at)
    # Windows that opened and closed while the daemon was down: nothing could run in them.
    closed_while_down = [
        h for h in hour_starts(floor_hour(stopped_at) + HOUR, restarted_at) if h + HOUR <= restarted_at
    ]
    assert closed_while_down, (stopped_at, restarted_at)

    for name, droplet in targets.items():
        # The window open at the restart (or, if it closed before the first tick, the next
        # one) runs once.
        open_window = floor_hour(restarted_at)

        def ran_since_restart(droplet=droplet, open_window=open_window):
            runs = s.runs(droplet)
            return any(parse_time(r["window"]["start"]) >= open_window and r["status"] == "succeeded" for r in runs)

        s.wait(f"{name}'s first backup after the restart", ran_since_restart)
        runs = s.runs(droplet)
        starts = [parse_time(r["window"]["start"]) for r in runs]
        # Every hourly window since backups were enabled has exactly one run, none skipped.
        assert len(starts) == len(set(starts)), f"{name} has windows with two runs: {runs}"
        assert sorted(starts) == hour_starts(min(starts), max(starts)), f"{name} skipped windows: {sorted(starts)}"
        by_start = {parse_time(r["window"]["start"]): r for r in runs}
        for start in closed_while_down:
            assert by_start[start]["status"] == "missed", f"{name}: {by_start[start]}"
            assert by_start[start]["image_id"] is None and by_start[start]["attempts"] == 0, by_start[start]
        after = [r for r in runs if parse_time(r["window"]["start"]) >= open_window]
        ran = [r for r in after if r["status"] != "missed"]
        assert ran and ran[-1]["status"] == "succeeded" and ran[-1]["attempts"] == 1, f"{name}: {after}"
        # A missed window is missed for good: no backup was taken for it after the restart.
        missed = [r for r in runs if r["status"] == "missed" and parse_time(r["window"]["start"]) > stopped_at - HOUR]
        assert missed, f"{name}: {runs}"
        for run in missed:
            assert run["attempts"] == 0 and run["image_id"] is None and run["taken_at"] is None, run
        missed = {r["window"]["start"] for r in missed}

        # And the world was told.
        def missed_events(droplet=droplet, missed=missed):
            events = s.receiver.events("backup.missed", droplet)
            return events if missed <= {e["window_start"] for e in events} else None

        told = s.wait(f"backup.missed events for {name}", missed_events, timeout=30)
        assert len(told) == len({e["window_start"] for e in told}), f"a missed window was reported twice: {told}"


def test_webhooks_are_signed_retried_and_cover_success_failure_and_missed(schedule):
    s = schedule
    broken = s.broken["id"]
    # The broken droplet fails each window after 5 attempts with backoff, and says so.
    failed = s.wait(
        "a backup.failed event for the broken droplet", lambda: s.receiver.events("backup.failed", broken), timeout=60
    )
    for event in failed:
        assert all_attempts_used(event["attempts"], event["at"], event["window_end"]), event
        assert "broken.img" in (event["error"] or ""), event
        s.assert_no_image(event["image_id"])
    failed_runs = [r for r in s.runs(broken) if r["status"] == "failed"]
    for run in failed_runs:
        assert run["attempts"] == run["failed_attempts"], run
        assert all_attempts_used(run["attempts"], run["finished_at"], run["window"]["end"]), run
        assert "broken.img" in (run["error"] or ""), run
        s.assert_no_image(run["image_id"])
    assert [r for r in failed_runs if r["attempts"] == MAX_ATTEMPTS], f"no run used all its attempts: {failed_runs}"
    assert [e for e in failed if e["attempts"] == MAX_ATTEMPTS], f"no event of a run that used all attempts: {failed}"
    assert not [r for r in s.runs(broken) if r["status"] == "succeeded"]
    assert s.backups(broken) == []

    requests_seen = s.receiver.received()
    kinds = {r["headers"]["x-drydock-event"] for r in requests_seen}
    assert set(EVENT_KINDS) <= kinds, kinds
    for request in requests_seen:
        headers = request["headers"]
        assert request["method"] == "POST" and request["path"] == "/hooks/drydock", request
        assert headers["x-drydock-signature"] == expected_signature(s.secret, request), request
        assert headers["content-type"].startswith("application/json"), headers
        assert abs(int(headers["x-drydock-timestamp"]) - request["received_at"]) < 300, headers
        envelope = json.loads(request["body"])
        assert envelope["id"] == headers["x-drydock-delivery"], (envelope, headers)
        assert envelope["event"] == headers["x-drydock-event"] in EVENT_KINDS, envelope
        assert set(envelope["data"]) == EVENT_DATA_KEYS, envelope
        assert envelope["data"]["kind"] == envelope["event"].removeprefix("backup."), envelope
        parse_time(envelope["created_at"])
        parse_time(envelope["data"]["at"])
        # A wrong secret does not verify.
        assert headers["x-drydock-signature"] != expected_signature(s.secret + "x", request)

    # The first delivery was answered 500 and sent again, same delivery id, same body.
    first = requests_seen[0]
    assert first["answered"] == 500
    again = [r for r in requests_seen if r["headers"]["x-drydock-delivery"] == first["headers"]["x-drydock-delivery"]]
    assert len(again) == 2, f"the first delivery was sent {len(again)} times"
    assert again[1]["answered"] == 200 and again[1]["body"] == first["body"], again
    assert int(again[1]["headers"]["x-drydock-timestamp"]) >= int(first["headers"]["x-drydock-timestamp"])
    # Apart from that retry, every delivery is a different event: nothing was reported twice.
    delivered = list(s.receiver.deliveries(requests_seen).values())
    assert len(delivered) == len(requests_seen) - 1
    keys = [(e["event"], e["data"]["resource_id"], e["data"]["window_start"]) for e in delivered]
    assert len(keys) == len(set(keys)), f"events reported twice: {sorted(keys)}"

    # Succeeded events match the runs they report.
    small = s.small["id"]
    runs = {r["image_id"]: r for r in s.runs(small) if r["status"] == "succeeded"}
    for event in s.receiver.events("backup.succeeded", small):
        run = runs[event["image_id"]]
        assert event["window_start"] == run["window"]["start"] and event["resource_name"] == "small", (event, run)
        assert event["size_bytes"] == SMALL_BYTES and event["error"] is None and event["attempts"] == run["attempts"]


def test_metrics_parse_and_agree_with_the_runs(schedule):
    s = schedule
    small, broken = s.small["id"], s.broken["id"]
    assert s.clock.now() - s.broken_enabled_at > 2 * HOUR, "the run is too short for the broken droplet to be stale"
    s.wait("small's status to be ok", lambda: s.droplet(small)["drydock"]["backups"]["status"] == "ok")

    def consistent():
        before = s.runs(small)
        response = s.request("GET", "/metrics")
        if s.runs(small) != before:
            return None
        return before, response

    runs, response = s.wait("metrics read between two equal run listings", consistent)
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    families = list(text_string_to_metric_families(response.text))
    # The parser names a counter family without its _total suffix.
    names = {f.name + ("_total" if f.type == "counter" else "") for f in families}
    assert METRIC_FAMILIES <= names, METRIC_FAMILIES - names
    samples = {}
    for family in families:
        for sample in family.samples:
            samples[(sample.name, sample.labels.get("name"))] = (sample.value, sample.labels)

    def value(name: str, droplet: str) -> float:
        assert (name, droplet) in samples, f"no {name} for {droplet}: {response.text}"
        return samples[(name, droplet)][0]

    successes = tagged_successes(runs)
    assert value("drydock_backup_successes_total", "small") == len(successes)
    # Failures count failed attempts (a retried attempt included), like drydock.backups.failures.
    assert value("drydock_backup_failures_total", "small") == sum(r["failed_attempts"] for r in runs)
    assert value("drydock_backup_missed_total", "small") == len([r for r in runs if r["status"] == "missed"]) > 0
    last = value("drydock_backup_last_success_timestamp_seconds", "small")
    assert last == successes[-1]["taken"].timestamp(), (last, successes[-1])
    assert s.clock.now().timestamp() - last < 1.5 * HOUR.total_seconds(), "small's last success is too old"
    assert value("drydock_backup_last_size_bytes", "small") == SMALL_BYTES
    assert value("drydock_backup_last_duration_seconds", "small") >= 0
    assert value("drydock_backup_stale", "small") == 0
    assert value("drydock_backup_enabled", "small") == 1
    assert samples[("drydock_backup_enabled", "small")][1] == {
        "resource_type": "droplet", "resource_id": str(small), "name": "small"
    }  # fmt: skip

    broken_failures = value("drydock_backup_failures_total", "broken")
    # The broken droplet keeps failing: its runs are read again after the metrics.
    broken_attempts = sum(r["failed_attempts"] for r in s.runs(broken))
    assert 5 <= broken_failures <= broken_attempts, (broken_failures, broken_attempts)
    assert value("drydock_backup_failures_total", "big") >= 1, "big's attempt killed by SIGKILL is not counted"
    assert value("drydock_backup_successes_total", "broken") == 0
    assert ("drydock_backup_last_success_timestamp_seconds", "broken") not in samples
    # Never succeeded since it was enabled more than an hour and a window ago: stale, in the
    # API too.
    assert value("drydock_backup_stale", "broken") == 1
    state = s.droplet(broken)["drydock"]["backups"]
    assert state["status"] == "stale" and state["last_success_at"] is None and state["last_error"], state
    assert value("drydock_actions_running", None) >= 0
    assert samples[("drydock_build_info", None)][1].get("version"), samples[("drydock_build_info", None)]

    # The droplet JSON tells the same story.
    droplet = s.droplet(small)
    state = droplet["drydock"]["backups"]
    # A backup of small running when the SIGKILL test killed the daemon counts as failed.
    assert (state["successes"], state["failures"]) == (len(successes), sum(r["failed_attempts"] for r in runs)), state
    assert parse_time(state["last_success_at"]) >= successes[-1]["taken"], state
    window = droplet["next_backup_window"]
    assert parse_time(window["end"]) - parse_time(window["start"]) == HOUR, window
    # Without a token, no metrics.
    assert requests.get(s.daemon.endpoint + "/metrics", verify=str(s.daemon.cert), timeout=10).status_code == 401


def test_every_kept_backup_restores_bit_exactly_and_gc_freed_space(schedule):
    s = schedule
    s.small_disk.stop()
    # No new backups from here: the kept ones stay as they are while they are restored.
    for droplet in (s.small["id"], s.big["id"]):
        action = s.client.droplet_actions.post(droplet, {"type": "disable_backups"})["action"]
        assert action["status"] == "completed", action
        s.wait_idle(droplet)

    # Pruned backups' data goes at a gc: two in a row finish whatever an earlier one planned.
    # Everything kept must restore after them.
    freed = s.bytes_freed_before + s.run_gc()["bytes_freed_total"]
    freed = s.bytes_freed_before + s.run_gc()["bytes_freed_total"]
    assert freed > 0, f"no gc freed anything{log_tail(s.daemon)}"

    successes, backups = s.settled_retention(s.small["id"], SMALL_KEEP)
    versions = []
    for backup in sorted(backups, key=lambda b: (parse_time(b["created_at"]), b["id"])):
        digest = s.restore(backup["id"])
        assert digest in s.small_disk.versions, f"small's backup {backup} restored data that was never on its disk"
        versions.append(s.small_disk.versions.index(digest))
    assert versions == sorted(versions), f"small's backups restored versions out of order: {versions}"
    assert len(backups) >= SMALL_KEEP["hourly"], backups

    _, big_backups = s.settled_retention(s.big["id"], BIG_KEEP)
    big_versions = []
    for backup in sorted(big_backups, key=lambda b: (parse_time(b["created_at"]), b["id"])):
        digest = s.restore(backup["id"])
        assert digest in s.big_disk.versions, f"big's backup {backup} restored data that was never on its disk"
        big_versions.append(s.big_disk.versions.index(digest))
    assert big_versions == sorted(big_versions), big_versions
    assert len(big_backups) == BIG_KEEP["hourly"], big_backups
