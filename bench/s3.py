#!/usr/bin/env python3
"""End to end through the daemon: a snapshot of a disk image into an S3 region (a SeaweedFS on
loopback) and a restore from it, timed next to the same into a local region, with the objects
and the S3 requests each GiB stored costs. Standard library only; run by hand (see README.md).

It starts a private SeaweedFS with scripts/s3-test-server (on free ports, with its Prometheus
metrics on, which count the requests by type) and a daemon with regions `local-1` (a directory)
and `s3-1` (a prefix of a bucket there), then for each region: registers a droplet on the
image, snapshots it, creates a droplet from the snapshot (the restore) and checks its SHA-256.
The page cache is dropped before every timed step when this runs as root. Everything it made is
removed at the end."""

import argparse
import hashlib
import json
import os
import platform
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUCKET = "drydock-bench"
ACCESS_KEY = "drydock-test"
SECRET_KEY = "drydock-test-secret"
POLL_SECS = 0.02
STEP_TIMEOUT_SECS = 1800


def parse_size(text: str) -> int:
    units = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Seaweed:
    def __init__(self, root: Path):
        self.dir = root / "seaweedfs"
        self.base = self.endpoint = None

    def script(self, command: str):
        # Every port of its own, chosen by the script at the first start and kept for the next.
        env = {**os.environ, "DRYDOCK_TEST_S3_PORT_BASE": "free"}
        subprocess.run([str(REPO_ROOT / "scripts" / "s3-test-server"), command, str(self.dir)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        if command == "start":
            ports = dict(line.split("=", 1) for line in (self.dir / "ports").read_text().split())
            self.base = int(ports["port_base"])
            self.endpoint = f"http://127.0.0.1:{ports['port']}"

    def requests(self) -> Counter:
        """S3 requests answered so far, by type (PUT, GET, LIST, DELETE…), from weed's metrics."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.base + 8}/metrics", timeout=10).read().decode()
        counts = Counter()
        for line in text.splitlines():
            if line.startswith("SeaweedFS_s3_request_total{"):
                labels, value = line.rsplit(" ", 1)
                kind = labels.split('type="', 1)[1].split('"', 1)[0]
                counts[kind] += int(float(value))
        return counts

    def objects(self, prefix: str) -> Counter:
        """Objects under the prefix, by top-level folder, through the filer's HTTP listing."""
        counts = Counter()
        pending = [f"/buckets/{BUCKET}/{prefix}/"]
        while pending:
            path = pending.pop()
            last = ""
            while True:
                url = f"http://127.0.0.1:{self.base + 4}{path}?limit=1000&lastFileName={urllib.request.quote(last)}"
                request = urllib.request.Request(url, headers={"Accept": "application/json"})
                listing = json.loads(urllib.request.urlopen(request, timeout=30).read())
                entries = listing.get("Entries") or []
                for entry in entries:
                    full = entry["FullPath"]
                    if entry["Mode"] & (1 << 31):  # os.ModeDir
                        pending.append(full + "/")
                    else:
                        top = full.split(f"/{prefix}/", 1)[1].split("/", 1)[0]
                        counts[top] += 1
                if not listing.get("ShouldDisplayLoadMore") or not entries:
                    break
                last = entries[-1]["FullPath"].rsplit("/", 1)[1]
        return counts


class Daemon:
    def __init__(self, binary: Path, root: Path, seaweed: Seaweed):
        self.bin, self.root = binary, root
        self.data_dir, self.disks = root / "data", root / "disks"
        self.config = root / "drydock.toml"
        self.port = free_port()
        self.cert = self.data_dir / "tls" / "cert.pem"
        self.prefix = f"bench-{os.getpid()}"
        self.disks.mkdir(parents=True)
        (root / "s3.secret").write_text(SECRET_KEY + "\n")
        self.config.write_text(
            f'disk_roots = ["{self.disks}"]\nworkers = 2\nrate_limit_per_hour = 1000000\n'
            f'[[regions]]\nslug = "local-1"\nname = "Local"\npath = "{root / "local-1"}"\n'
            f'[[regions]]\nslug = "s3-1"\nname = "SeaweedFS"\n[regions.s3]\nendpoint = "{seaweed.endpoint}"\n'
            f'bucket = "{BUCKET}"\nprefix = "{self.prefix}"\naccess_key_id = "{ACCESS_KEY}"\n'
            f'secret_access_key_file = "{root / "s3.secret"}"\n[scheduler]\nenabled = false\n'
        )
        self.process = None
        self.token = None

    def cli(self, *args) -> str:
        return subprocess.run([str(self.bin), *args, "--data-dir", str(self.data_dir), "--config", str(self.config)],
                              check=True, capture_output=True, text=True).stdout

    def start(self):
        self.token = self.cli("token", "create", "--scopes", "*", "--team", "default", "--name", "bench").strip()
        self.log = (self.root / "daemon.log").open("wb")
        self.process = subprocess.Popen(
            [str(self.bin), "serve", "--data-dir", str(self.data_dir), "--config", str(self.config),
             "--listen", f"127.0.0.1:{self.port}"], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.cert.exists():
                try:
                    self.call("GET", "/drydock/v1/health")
                    return
                except (OSError, urllib.error.URLError):
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"the daemon did not start; see {self.root / 'daemon.log'}")

    def stop(self):
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=60)

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        context = ssl.create_default_context(cafile=str(self.cert))
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.port}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=context, timeout=60) as response:
            return json.loads(response.read() or b"{}")

    def wait(self, action_id: int) -> dict:
        deadline = time.monotonic() + STEP_TIMEOUT_SECS
        while time.monotonic() < deadline:
            action = self.call("GET", f"/v2/actions/{action_id}")["action"]
            if action["status"] != "in-progress":
                if action["status"] != "completed":
                    raise RuntimeError(f"action {action_id} {action['status']}: {action['drydock']['error']}")
                return action
            time.sleep(POLL_SECS)
        raise RuntimeError(f"action {action_id} still running after {STEP_TIMEOUT_SECS} s")

    def stored_bytes(self, region: str) -> int:
        usage = self.call("GET", "/drydock/v1/usage")["usage"]["regions"]
        return next((r["stored_bytes"] for r in usage if r["region"] == region), 0)


def drop_caches():
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass  # not root: the steps may read from the page cache


def make_image(path: Path, size: int):
    """Random bytes in 8 MiB runs: nothing compresses, nothing deduplicates, no holes."""
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 8 << 20)
            f.write(os.urandom(n))
            left -= n


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def timed(daemon: Daemon, seaweed: Seaweed, start) -> tuple[float, Counter]:
    drop_caches()
    before = seaweed.requests()
    started = time.monotonic()
    daemon.wait(start())
    seconds = time.monotonic() - started
    return seconds, seaweed.requests() - before


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1GiB", help="image size (default 1GiB)")
    parser.add_argument("--image", type=Path, help="back up this image instead of a random one")
    parser.add_argument("--drydock", type=Path, default=REPO_ROOT / "target" / "release" / "drydock")
    parser.add_argument("--work", type=Path, help="working directory (default: a temporary one, removed)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="drydock-s3-bench."))
    seaweed = Seaweed(work)
    seaweed.script("start")
    daemon = Daemon(args.drydock, work / "daemon", seaweed)
    try:
        daemon.start()
        image = daemon.disks / "source.img"
        if args.image:
            shutil.copyfile(args.image, image)
        else:
            make_image(image, parse_size(args.size))
        size = image.stat().st_size
        expected = sha256(image)
        print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f}, image {size / (1 << 30):.2f} GiB "
              f"({'given' if args.image else 'random bytes'})")
        rows = []
        for region in ("local-1", "s3-1"):
            # A disk belongs to one droplet: each region's gets a copy.
            disk = daemon.disks / f"source-{region}.img"
            shutil.copyfile(image, disk)
            created = daemon.call("POST", "/v2/droplets",
                                  {"name": f"bench-{region}", "region": region, "disk": {"path": str(disk)}})
            daemon.wait(created["links"]["actions"][0]["id"])
            droplet = created["droplet"]["id"]
            backup_s, backup_requests = timed(daemon, seaweed, lambda: daemon.call(
                "POST", f"/v2/droplets/{droplet}/actions", {"type": "snapshot", "name": f"snap-{region}"})["action"]["id"])
            [snapshot] = daemon.call("GET", f"/v2/droplets/{droplet}/snapshots")["snapshots"]
            stored = daemon.stored_bytes(region)
            target = daemon.disks / f"restored-{region}.img"
            restore_s, restore_requests = timed(daemon, seaweed, lambda: daemon.call("POST", "/v2/droplets", {
                "name": f"restored-{region}", "region": region, "image": snapshot["id"], "disk": {"path": str(target)}
            })["links"]["actions"][0]["id"])
            if sha256(target) != expected:
                raise RuntimeError(f"the restore from {region} differs from the image")
            target.unlink()
            objects = seaweed.objects(daemon.prefix) if region == "s3-1" else Counter(
                p.relative_to(work / "daemon" / "local-1").parts[0]
                for p in (work / "daemon" / "local-1").rglob("*") if p.is_file())
            rows.append((region, backup_s, restore_s, stored, objects, backup_requests, restore_requests))

        mb = size / 1e6
        print("\n| region | snapshot | restore | stored | objects | S3 requests of the snapshot | of the restore |")
        print("|---|---|---|---|---|---|---|")
        for region, backup_s, restore_s, stored, objects, backup_requests, restore_requests in rows:
            gib = stored / (1 << 30)
            per_gib = lambda n: f"{n / gib:,.0f}/GiB" if gib else "-"  # noqa: E731
            describe = lambda c: ", ".join(f"{n} {k}" for k, n in sorted(c.items())) or "none"  # noqa: E731
            print(f"| {region} | {backup_s:.2f} s ({mb / backup_s:,.0f} MB/s) | {restore_s:.2f} s "
                  f"({mb / restore_s:,.0f} MB/s) | {stored:,} B | {sum(objects.values())} ({describe(objects)}; "
                  f"{per_gib(sum(objects.values()))}) | {describe(backup_requests)} "
                  f"({per_gib(sum(backup_requests.values()))}) | {describe(restore_requests)} "
                  f"({per_gib(sum(restore_requests.values()))}) |")
    finally:
        daemon.stop()
        seaweed.script("stop")
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
