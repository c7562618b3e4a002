#!/usr/bin/env python3
"""The dashboard in headless Chromium with 500 droplets: how many bytes its first load
transfers, and how long the droplets list takes to render, measured in the browser (from the
navigation's start to the `drydock:droplets-list-rendered` mark the list view sets once its
table is in the page). Run by hand with the API suite's virtualenv, which has Playwright:

    scripts/test-api -k dashboard_is_served        # once: makes target/pyenv, builds drydock
    cargo build --release -p drydock-cli
    target/pyenv/bin/python bench/dashboard.py [--droplets 500] [--runs 5]

It starts its own daemon (target/release/drydock unless --drydock names one) in a temporary
directory, registers the droplets on sparse disk files (half of them with backups on), and
loads the list `--runs` times, each in a new browser context (an empty cache)."""

import argparse
import json
import platform
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "api"))
from browser import Browser  # noqa: E402
from conftest import Daemon  # noqa: E402

DISK_BYTES = 20 << 30
POLICY = {"plan": "daily", "hour": 4, "time_zone": "Europe/Paris", "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12}


def register_all(daemon: Daemon, token: str, count: int):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def register(i: int):
        disk = daemon.disks_dir / f"web-{i:04}.img"
        with disk.open("wb") as f:
            f.truncate(DISK_BYTES)
        body = {"name": f"web-{i:04}", "disk": {"path": str(disk), "format": "raw"}}
        if i % 2 == 0:
            body |= {"backups": True, "backup_policy": POLICY}
        response = session.post(f"{daemon.endpoint}/v2/droplets", json=body, verify=str(daemon.cert), timeout=60)
        response.raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(register, range(count)))


def load_once(browser: Browser, daemon: Daemon, token: str, expected_rows: int) -> dict:
    page = browser.page()
    page.context.add_init_script(f"localStorage.setItem('drydock.token', {json.dumps(token)})")
    page.goto(f"{daemon.endpoint}/#/droplets/active")
    page.wait_for_function("() => performance.getEntriesByName('drydock:droplets-list-rendered').length > 0", timeout=60_000)
    measured = page.evaluate(
        """() => {
            const navigation = performance.getEntriesByType('navigation')[0];
            const resources = performance.getEntriesByType('resource');
            const api = (r) => /\\/(v2|drydock)\\//.test(new URL(r.name).pathname);
            const sum = (list) => list.reduce((total, r) => total + r.transferSize, 0);
            return {
                rendered_ms: performance.getEntriesByName('drydock:droplets-list-rendered')[0].startTime,
                asset_bytes: navigation.transferSize + sum(resources.filter((r) => !api(r))),
                api_bytes: sum(resources.filter(api)),
                api_decoded_bytes: resources.filter(api).reduce((total, r) => total + r.decodedBodySize, 0),
                asset_decoded_bytes: resources.filter((r) => !api(r)).reduce((total, r) => total + r.decodedBodySize, 0)
                    + navigation.decodedBodySize,
                requests: resources.length + 1,
                rows: document.querySelectorAll('main tbody tr').length,
                timeline: [
                    ...resources.map((r) => [r.startTime, `${Math.round(r.startTime)}+${Math.round(r.duration)} ms ${new URL(r.name).pathname}${new URL(r.name).search}`]),
                    ...performance.getEntriesByType('mark').map((m) => [m.startTime, `${Math.round(m.startTime)} ms mark ${m.name}`]),
                ].sort((a, b) => a[0] - b[0]).map(([, line]) => line),
            };
        }"""
    )
    problems = list(page.problems)
    page.context.close()
    if problems:
        raise SystemExit("the browser reported problems:\n" + "\n".join(problems))
    if measured["rows"] != expected_rows:
        raise SystemExit(f"the list shows {measured['rows']} rows, not {expected_rows}")
    return measured


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--droplets", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeline", action="store_true", help="print when each request of the last load started and ended")
    parser.add_argument("--drydock", type=Path, default=REPO_ROOT / "target" / "release" / "drydock")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="drydock-dashboard-bench-") as root:
        daemon = Daemon(Path(root), args.drydock, extra_config="[scheduler]\nenabled = false\n")
        daemon.write_config()
        token = daemon.create_token("*", name="bench")
        daemon.start()
        browser = None
        try:
            register_all(daemon, token, args.droplets)
            browser = Browser(daemon.endpoint)
            # The Active tab: the droplets with backups on, every other one.
            active = (args.droplets + 1) // 2
            runs = [load_once(browser, daemon, token, active) for _ in range(args.runs)]
        finally:
            if browser:
                browser.close()
            daemon.stop()

    times = [r["rendered_ms"] for r in runs]
    first = runs[0]
    print(f"machine: {platform.machine()}, {platform.node()}; {args.droplets} droplets, {args.runs} cold loads")
    print(f"list rendered (ms from navigation start): median {statistics.median(times):.0f}, min {min(times):.0f}, max {max(times):.0f}")
    print("each load, in order: " + ", ".join(f"{t:.0f}" for t in times))
    if args.timeline:
        print("\n".join(runs[-1]["timeline"]))
    kib = lambda n: f"{n / 1024:.1f} KiB"  # noqa: E731
    print(
        f"first load: {first['requests']} requests; dashboard files {kib(first['asset_bytes'])} transferred"
        f" ({kib(first['asset_decoded_bytes'])} decoded), API answers {kib(first['api_bytes'])}"
        f" ({kib(first['api_decoded_bytes'])} decoded)"
    )


if __name__ == "__main__":
    main()
