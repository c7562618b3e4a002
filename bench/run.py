#!/usr/bin/env python3
"""drydock benchmark harness: drydock vs restic vs borg on a realistic disk image.

Run by hand (never in CI), as root. Standard library only.

What is measured
----------------
For every tool (drydock, restic, borg), in a fresh repository under the work dir:

1. full backup of a 4 GiB ext4 image (``base.img``),
2. incremental backup of the same image after ~1% of it was rewritten,
3. restore of the second snapshot to a new file,

then (untimed) a streaming SHA-256 of the restored file is compared with the changed image.

Per step: wall-clock seconds, MB/s (image *apparent* size / durable seconds, decimal MB), user+system
CPU seconds and the child's peak RSS (``ru_maxrss`` from ``os.wait4``), plus the repository size
after each backup (``du -sb`` apparent bytes and ``du -sB1`` allocated bytes). The ``sync`` run
right after each step is timed separately ("flush s"); MB/s and the ratios use seconds + flush
(the time until the result is durable), because drydock fsyncs within its steps and the peers do
not.

Why it is done this way
-----------------------
* Cold cache: before every timed step the harness runs ``sync`` and
  ``echo 3 > /proc/sys/vm/drop_caches``, so every tool reads the image (or repository) from disk,
  as a real backup run would. This is why it must run as root.
* Same path for both backups: restic and borg pick the parent snapshot / files cache by path, so
  each tool backs up ``runs/<tool>/src/disk.img`` twice: the base image is copied there
  (``cp --sparse=always``) before backup 1 and the deterministic 1% change is written *in place*
  before backup 2.
* Reproducible input: the image is built from a sorted selection of the host's /usr files plus
  ~400 MiB of incompressible PRNG data (seeded, not /dev/urandom), with a fixed filesystem UUID,
  hash seed, timestamps and ``E2FSPROGS_FAKE_TIME``. The change (a few dozen 64 KiB-4 MiB extents
  plus a few hundred 4 KiB writes) is generated from a seed too. Images are cached in the work dir
  and rebuilt only with ``--rebuild-image`` (or when the recipe changes).

Modes
-----
* default: the tool comparison (``--tools drydock,restic,borg``) with drydock/peer ratios and
  PASS/FAIL against the project goals;
* ``--chunk-sizes 256KiB,...`` and/or ``--compression-levels 1,3``: drydock only, one fresh
  repository per value, to pick the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import math
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORK = REPO_ROOT / "bench" / "work"

# Image recipe. Bump RECIPE_VERSION when anything below changes, so cached images are rebuilt.
RECIPE_VERSION = 3
DEFAULT_IMAGE_SIZE = 4 * GiB
FS_UUID = "0d5c0a1e-d0c4-4b7e-8e11-0000000000d1"
FS_HASH_SEED = "0d5c0a1e-d0c4-4b7e-8e11-0000000000d2"
FS_LABEL = "drydock-bench"
FIXED_TIME = 1767225600  # 2026-01-01T00:00:00Z: mkfs fake time and every file's atime/mtime
# Host trees copied into the image, with their byte quota for a 4 GiB image (scaled otherwise).
HOST_TREES = (("/usr/bin", 250_000_000), ("/usr/share", 450_000_000), ("/usr/lib", 900_000_000))
RANDOM_FILES_MIB = (64, 64, 64, 64, 32, 32, 16, 16, 16, 16, 8, 8)  # 400 MiB incompressible
CHANGE_FRACTION = 0.01
CHANGE_EXTENT_MIN, CHANGE_EXTENT_MAX = 64 * KiB, 4 * MiB
CHANGE_SCATTERED = 300  # 4 KiB writes
CHANGE_SKIP_HEAD = 1 * MiB  # leave the superblock area alone
BLOCK = 4 * KiB

PASSWORD = "drydock-bench-password"
INSTALL_HINT = "apt-get update && apt-get install -y restic borgbackup"
ALL_TOOLS = ("drydock", "restic", "borg")
STEPS = (("full", "full backup"), ("incr", "incremental backup"), ("restore", "restore"))

# (label, peer, metric, minimum drydock/peer ratio) and (label, peer, metric, maximum ratio).
SPEED_GOALS = (
    ("full backup >= 8x restic", "restic", "full", 8.0),
    ("full backup >= 3x borg", "borg", "full", 3.0),
    ("incremental >= 4x restic", "restic", "incr", 4.0),
    ("restore >= 6x restic", "restic", "restore", 6.0),
)
SIZE_GOALS = (
    ("repo size <= restic", "restic", "repo", 1.0),
    ("peak RSS <= restic", "restic", "rss", 1.0),
)


class BenchError(Exception):
    """A failure that ends the run with a message (and exit status 1)."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# small helpers


def parse_size(text: str) -> int:
    """'512KiB', '1MiB', '4GiB', '1.5GB', '4096' -> bytes."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]i?B?|B)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size: {text!r}")
    unit = (m.group(2) or "B").upper().rstrip("B") or "B"
    mult = {"B": 1, "K": 1000, "M": 10**6, "G": 10**9, "T": 10**12,
            "KI": KiB, "MI": MiB, "GI": GiB, "TI": 1 << 40}[unit]
    return int(float(m.group(1)) * mult)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6 if seconds > 0 else float("inf")


def run(cmd: list, env: dict | None = None, cwd: Path | None = None) -> str:
    """Run an untimed command; on failure print its stderr and raise."""
    proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
                         f"--- stderr ---\n{proc.stderr.strip()}\n--- stdout (tail) ---\n"
                         f"{proc.stdout.strip()[-2000:]}")
    return proc.stdout


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def timed_sync() -> float:
    t0 = time.monotonic()
    os.sync()
    return time.monotonic() - t0


def du_bytes(path: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of a file or tree, as du reports them."""
    apparent = int(run(["du", "-sb", path]).split()[0])
    allocated = int(run(["du", "-sB1", path]).split()[0])
    return apparent, allocated


def file_sizes(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_blocks * 512


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(8 * MiB)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def copy_sparse(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    run(["cp", "--sparse=always", src, dst])


# --------------------------------------------------------------------------------------------
# timed child processes


@dataclasses.dataclass
class Measurement:
    seconds: float
    cpu_seconds: float
    peak_rss: int  # bytes
    flush_seconds: float = 0.0


def run_timed(cmd: list, env: dict, log_base: Path, cwd: Path | None = None) -> Measurement:
    """Cold-cache, wall-clock timed run of one command; peak RSS from wait4 on the child."""
    cmd = [str(c) for c in cmd]
    log_base.parent.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_base.with_suffix(".out"), log_base.with_suffix(".err")
    drop_caches()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise BenchError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n--- stderr "
                         f"({err_path}) ---\n{err_path.read_text(errors='replace')[-4000:]}")
    return Measurement(seconds=seconds, cpu_seconds=usage.ru_utime + usage.ru_stime,
                       peak_rss=usage.ru_maxrss * 1024, flush_seconds=timed_sync())


# --------------------------------------------------------------------------------------------
# building the base image


def list_host_tree(src_root: str) -> tuple[list, list]:
    """Sorted (path, size) of the regular files and sorted symlink paths under src_root.

    Symlinks are never followed (os.walk does not descend into symlinked directories);
    sockets, fifos and devices are skipped.
    """
    files, links = [], []
    for dirpath, dirnames, filenames in os.walk(src_root):
        dirnames.sort()
        for name in sorted(filenames + dirnames):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                links.append(path)
            elif stat.S_ISREG(st.st_mode):
                files.append((path, st.st_size))
    return files, links


def copy_host_tree(src_root: str, staging: Path, quota: int, seed: int) -> tuple[int, int]:
    """Copy a seeded sample of src_root's files (up to quota bytes) plus all its symlinks.

    Sampling (rather than taking a prefix of the sorted walk) keeps the mix of small and large
    files representative instead of filling the quota with the first big directory. The sample
    only depends on the seed and the host's file list. Returns (bytes copied, files copied).
    """
    files, links = list_host_tree(src_root)
    order = list(range(len(files)))
    random.Random(f"drydock-bench-host-{src_root}-{seed}").shuffle(order)
    chosen, used = [], 0
    for i in order:
        if used + files[i][1] <= quota:
            chosen.append(i)
            used += files[i][1]
    used = 0
    for i in sorted(chosen):
        src, _ = files[i]
        dst = staging / os.path.relpath(src, "/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(src, dst, follow_symlinks=False)
        except OSError:
            continue
        os.chmod(dst, stat.S_IMODE(os.lstat(src).st_mode))
        used += os.path.getsize(dst)
    for src in links:
        dst = staging / os.path.relpath(src, "/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.readlink(src), dst)
    return used, len(chosen)


def write_random_files(directory: Path, sizes_mib: tuple, scale: float, seed: int) -> int:
    """Incompressible files from a seeded PRNG (reproducible, unlike /dev/urandom)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"drydock-bench-random-files-{seed}")
    total = 0
    for i, size_mib in enumerate(sizes_mib):
        size = max(BLOCK, int(size_mib * MiB * scale) // BLOCK * BLOCK)
        with open(directory / f"blob-{i:02d}.bin", "wb") as f:
            left = size
            while left:
                n = min(left, 16 * MiB)
                f.write(rng.randbytes(n))
                left -= n
        total += size
    return total


def normalize_times(root: Path) -> None:
    """Give every staged path the same atime/mtime (mkfs -d copies them into the image)."""
    ns = FIXED_TIME * 10**9
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), ns=(ns, ns), follow_symlinks=False)
    os.utime(root, ns=(ns, ns))


def mkfs_env() -> dict:
    return {**os.environ, "E2FSPROGS_FAKE_TIME": str(FIXED_TIME)}


def make_ext4(staging: Path, image: Path, size: int) -> None:
    with open(image, "wb") as f:
        f.truncate(size)
    run(["mkfs.ext4", "-q", "-F", "-L", FS_LABEL, "-U", FS_UUID,
         "-E", f"hash_seed={FS_HASH_SEED}", "-d", staging, image], env=mkfs_env())
    log("  debugfs: pinning ctimes and atimes")
    fix_ctimes(staging, image)
    log("  e2fsck -fn")
    run(["e2fsck", "-fn", image])


def fix_ctimes(staging: Path, image: Path) -> None:
    """Pin ctime and atime of every inode with debugfs.

    mkfs -d copies each staged file's ctime (which utime cannot set) and atime (which reading
    the staged files while mkfs runs may bump, relatime). With this the image is bit-identical
    between rebuilds on the same host.
    """
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(FIXED_TIME))
    paths = ["/", "/lost+found"]
    for dirpath, dirnames, filenames in os.walk(staging):
        rel = "/" + os.path.relpath(dirpath, staging)
        paths += [os.path.normpath(os.path.join(rel, n)) for n in dirnames + filenames]
    cmds = image.with_suffix(".debugfs")
    cmds.write_text("".join(f'sif "{p}" {field} {stamp}\n' for p in paths for field in ("ctime", "atime")
                            if '"' not in p and "\n" not in p))
    run(["debugfs", "-w", "-f", cmds, image], env=mkfs_env())
    cmds.unlink()


def build_base_image(work: Path, size: int, seed: int) -> dict:
    scale = size / DEFAULT_IMAGE_SIZE
    staging = work / "rootfs"
    rmtree(staging)
    staging.mkdir(parents=True)
    host_bytes = host_files = 0
    for tree, quota in HOST_TREES:
        b, n = copy_host_tree(tree, staging, int(quota * scale), seed)
        log(f"  copied {n} files, {b / 1e6:.0f} MB from {tree}")
        host_bytes, host_files = host_bytes + b, host_files + n
    random_bytes = write_random_files(staging / "srv" / "data", RANDOM_FILES_MIB, scale, seed)
    log(f"  wrote {random_bytes / MiB:.0f} MiB of seeded random data in /srv/data")
    normalize_times(staging)
    tmp = work / "base.img.tmp"
    log("  mkfs.ext4 -d ...")
    make_ext4(staging, tmp, size)
    # cp --sparse=always turns the zero ranges mkfs allocated (journal, unwritten extents) into
    # holes, exactly as for the per-tool copies, so the allocated size printed is what they see.
    copy_sparse(tmp, work / "base.img")
    tmp.unlink()
    rmtree(staging)
    return {"host_bytes": host_bytes, "host_files": host_files, "random_bytes": random_bytes}


# --------------------------------------------------------------------------------------------
# the 1% change


def make_change_plan(size: int, seed: int) -> list[tuple[int, int]]:
    """(offset, length) writes: extents of 64 KiB-4 MiB (log-uniform) plus scattered 4 KiB.

    Offsets are 4 KiB aligned and uniform over the image (past the first MiB), like a server
    rewriting database pages, logs and files all over its disk.
    """
    rng = random.Random(f"drydock-bench-change-plan-{seed}")
    budget = int(size * CHANGE_FRACTION) - CHANGE_SCATTERED * BLOCK
    first_block, last_block = CHANGE_SKIP_HEAD // BLOCK, size // BLOCK
    plan, written = [], 0
    while written < budget:
        length = int(math.exp(rng.uniform(math.log(CHANGE_EXTENT_MIN), math.log(CHANGE_EXTENT_MAX))))
        length = min(max(BLOCK, length // BLOCK * BLOCK), (budget - written + BLOCK - 1) // BLOCK * BLOCK)
        blocks = length // BLOCK
        plan.append((rng.randrange(first_block, last_block - blocks) * BLOCK, length))
        written += length
    plan += [(rng.randrange(first_block, last_block) * BLOCK, BLOCK) for _ in range(CHANGE_SCATTERED)]
    return plan


def apply_changes(path: Path, plan: list[tuple[int, int]], seed: int) -> int:
    """Write the plan's seeded random data in place; returns bytes written."""
    rng = random.Random(f"drydock-bench-change-data-{seed}")
    fd = os.open(path, os.O_WRONLY)
    try:
        written = sum(os.pwrite(fd, rng.randbytes(length), offset) for offset, length in plan)
        os.fsync(fd)
    finally:
        os.close(fd)
    return written


def distinct_bytes(plan: list[tuple[int, int]]) -> int:
    total, end = 0, -1
    for offset, length in sorted(plan):
        start = max(offset, end)
        if offset + length > start:
            total += offset + length - start
        end = max(end, offset + length)
    return total


# --------------------------------------------------------------------------------------------
# image cache


def image_recipe(size: int, seed: int) -> dict:
    return {"version": RECIPE_VERSION, "size": size, "seed": seed, "uuid": FS_UUID,
            "host_trees": HOST_TREES, "random_files_mib": RANDOM_FILES_MIB,
            "change_fraction": CHANGE_FRACTION, "change_scattered": CHANGE_SCATTERED}


def ensure_images(work: Path, size: int, seed: int, rebuild: bool) -> dict:
    """Build (or reuse) base.img and changed.img; returns their description."""
    meta_path = work / "image.json"
    recipe = json.loads(json.dumps(image_recipe(size, seed)))
    base, changed = work / "base.img", work / "changed.img"
    if not rebuild and meta_path.exists() and base.exists() and changed.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("recipe") == recipe:
            log(f"using cached images in {work} (--rebuild-image to rebuild)")
            return meta
        log("image recipe changed: rebuilding")
    work.mkdir(parents=True, exist_ok=True)
    for p in (meta_path, base, changed):
        rmtree(p)
    t0 = time.monotonic()
    log(f"building base image ({human(size)}) in {work}")
    content = build_base_image(work, size, seed)
    plan = make_change_plan(size, seed)
    copy_sparse(base, changed)
    written = apply_changes(changed, plan, seed)
    log("hashing base and changed images")
    meta = {
        "recipe": recipe,
        "content": content,
        "base": dict(zip(("apparent", "allocated"), file_sizes(base)), sha256=sha256_file(base)),
        "changed": dict(zip(("apparent", "allocated"), file_sizes(changed)), sha256=sha256_file(changed)),
        "change": {"writes": len(plan), "extents": len(plan) - CHANGE_SCATTERED,
                   "scattered_4k": CHANGE_SCATTERED, "bytes_written": written,
                   "bytes_distinct": distinct_bytes(plan)},
        "build_seconds": round(time.monotonic() - t0, 1),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    log(f"images built in {meta['build_seconds']} s")
    return meta


def describe_image(meta: dict) -> list[str]:
    b, c, ch, ct = meta["base"], meta["changed"], meta["change"], meta["content"]
    return [
        f"base image: ext4, apparent {b['apparent']} B ({human(b['apparent'])}), allocated "
        f"{b['allocated']} B ({human(b['allocated'])}); {ct['host_files']} host files "
        f"({ct['host_bytes'] / 1e6:.0f} MB) + {ct['random_bytes'] / MiB:.0f} MiB seeded random "
        f"data; sha256 {b['sha256'][:16]}...",
        f"change: {ch['writes']} writes ({ch['extents']} extents of 64 KiB-4 MiB + "
        f"{ch['scattered_4k']} x 4 KiB), {ch['bytes_written']} bytes written "
        f"({100 * ch['bytes_written'] / b['apparent']:.2f}% of the image; {ch['bytes_distinct']} "
        f"distinct bytes); changed image allocated {human(c['allocated'])}, sha256 {c['sha256'][:16]}...",
    ]


# --------------------------------------------------------------------------------------------
# tool adapters


class Tool:
    """One backup tool, with its repository, caches and logs under work/runs/<label>."""

    name = ""

    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.repo = run_dir / "repo"

    def env(self) -> dict:
        return dict(os.environ)

    def prepare(self) -> None:
        """Remove state from a previous run (repo, caches, restore output)."""
        for sub in ("repo", "cache", "restore", "src", "logs"):
            rmtree(self.dir / sub)
        self.dir.mkdir(parents=True, exist_ok=True)

    def cleanup(self) -> None:
        for sub in ("repo", "cache", "restore", "src"):
            rmtree(self.dir / sub)

    def init(self, options: list) -> None:
        run(self.init_cmd(options), env=self.env())

    def snapshot_info(self) -> list | None:
        return None

    # Subclasses implement these.
    def init_cmd(self, options: list) -> list: raise NotImplementedError
    def backup_cmd(self, path: Path, name: str) -> list: raise NotImplementedError
    def restore_cmd(self, name: str, out_dir: Path, src: Path) -> tuple[list, Path | None, Path]:
        """-> (command, cwd, path of the restored file)."""
        raise NotImplementedError


class Restic(Tool):
    name = "restic"

    def env(self) -> dict:
        return {**os.environ, "RESTIC_PASSWORD": PASSWORD, "RESTIC_REPOSITORY": str(self.repo)}

    def cache_args(self) -> list:
        return ["--cache-dir", self.dir / "cache"]

    def init_cmd(self, options):
        return ["restic", "init", "--repository-version", "2", *self.cache_args(), *options]

    def backup_cmd(self, path, name):
        return ["restic", "backup", *self.cache_args(), "--tag", name, path]

    def restore_cmd(self, name, out_dir, src):
        return (["restic", "restore", "latest", "--target", out_dir, *self.cache_args()],
                None, out_dir / src.relative_to("/"))


class Borg(Tool):
    name = "borg"

    def env(self) -> dict:
        return {**os.environ, "BORG_PASSPHRASE": PASSWORD, "BORG_BASE_DIR": str(self.dir / "cache"),
                "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
                "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes"}

    def init_cmd(self, options):
        return ["borg", "init", "-e", "repokey-blake2", *options, self.repo]

    def backup_cmd(self, path, name):
        return ["borg", "create", f"{self.repo}::{name}", path]

    def restore_cmd(self, name, out_dir, src):
        return (["borg", "extract", f"{self.repo}::{name}"], out_dir, out_dir / src.relative_to("/"))


class Drydock(Tool):
    name = "drydock"
    binary = Path("drydock")

    def env(self) -> dict:
        return {**os.environ, "DRYDOCK_PASSWORD": PASSWORD}

    def base(self) -> list:
        return [self.binary, "--repo", self.repo]

    def init_cmd(self, options):
        return [*self.base(), "repo", "init", *options]

    def backup_cmd(self, path, name):
        return [*self.base(), "image", "backup", path, "--name", name]

    def restore_cmd(self, name, out_dir, src):
        target = out_dir / "disk.img"
        return [*self.base(), "image", "restore", name, target], None, target

    def snapshot_info(self):
        try:
            return json.loads(run([*self.base(), "--json", "image", "list"], env=self.env()))
        except (BenchError, json.JSONDecodeError) as e:
            log(f"  warning: drydock --json image list failed: {str(e).splitlines()[0]}")
            return None


TOOL_CLASSES = {"drydock": Drydock, "restic": Restic, "borg": Borg}


def check_tools(tools: list[str], args) -> None:
    missing = [t for t in ("mkfs.ext4", "e2fsck", "debugfs", "du", "cp") if not shutil.which(t)]
    if missing:
        raise BenchError(f"missing: {', '.join(missing)} (apt-get install -y e2fsprogs coreutils)")
    peers = [t for t in tools if t in ("restic", "borg") and not shutil.which(t)]
    if peers:
        raise BenchError(f"not installed: {', '.join(peers)}\ninstall with: {INSTALL_HINT}")
    if "drydock" in tools:
        prepare_drydock(args)
    if os.geteuid() != 0:
        raise BenchError("must run as root (it writes /proc/sys/vm/drop_caches before each step)")


def prepare_drydock(args) -> None:
    if not args.no_build:
        log("cargo build --release -p drydock-cli")
        run(["cargo", "build", "--release", "-p", "drydock-cli"], cwd=REPO_ROOT)
    binary = Path(args.drydock)
    if not binary.is_absolute():
        binary = REPO_ROOT / binary
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise BenchError(f"drydock binary not found at {binary}\n"
                         "build it with: cargo build --release -p drydock-cli (or pass --drydock PATH)")
    Drydock.binary = binary


def tool_version(name: str) -> str:
    cmd = {"restic": ["restic", "version"], "borg": ["borg", "--version"],
           "drydock": [Drydock.binary, "--version"]}[name]
    try:
        return run(cmd).strip().splitlines()[0]
    except (BenchError, OSError, IndexError):
        return "unknown"


# --------------------------------------------------------------------------------------------
# one tool run


@dataclasses.dataclass
class ToolResult:
    label: str
    image_bytes: int
    steps: dict = dataclasses.field(default_factory=dict)   # step -> Measurement
    repo: dict = dataclasses.field(default_factory=dict)    # step -> (apparent, allocated)
    restored_allocated: int | None = None
    snapshots: list | None = None

    def mbps(self, step: str) -> float:
        # Durable throughput: the step plus the sync after it. drydock fsyncs inside its steps,
        # restic and borg leave dirty pages behind; counting the flush compares like with like.
        m = self.steps[step]
        return mbps(self.image_bytes, m.seconds + m.flush_seconds)

    def peak_rss(self) -> int:
        return max(m.peak_rss for m in self.steps.values())

    def incr_added(self) -> int:
        return self.repo["incr"][0] - self.repo["full"][0]


def bench_tool(tool: Tool, label: str, images: dict, work: Path, init_options: list,
               restore: bool, keep: bool, seed: int) -> ToolResult:
    """init, full backup, change in place, incremental backup, restore, verify."""
    result = ToolResult(label, images["base"]["apparent"])
    src = tool.dir / "src" / "disk.img"
    tool.prepare()
    log(f"[{label}] copying base image to {src}")
    try:
        copy_sparse(work / "base.img", src)
        tool.init(init_options)
        for step, name in (("full", "b1"), ("incr", "b2")):
            if step == "incr":
                plan = make_change_plan(images["base"]["apparent"], seed)
                written = apply_changes(src, plan, seed)
                log(f"[{label}] applied the change in place ({written} bytes)")
            log(f"[{label}] {dict(STEPS)[step]} ...")
            m = run_timed(tool.backup_cmd(src, name), tool.env(), tool.dir / "logs" / step)
            result.steps[step] = m
            result.repo[step] = du_bytes(tool.repo)
            log(f"[{label}]   {m.seconds:.1f} s, {result.mbps(step):.0f} MB/s, "
                f"repo {human(result.repo[step][0])}, RSS {human(m.peak_rss)}")
        result.snapshots = tool.snapshot_info()
        if restore:
            restore_and_verify(tool, label, result, src, images["changed"]["sha256"])
    finally:
        if not keep:
            tool.cleanup()
    return result


def restore_and_verify(tool: Tool, label: str, result: ToolResult, src: Path, want: str) -> None:
    out_dir = tool.dir / "restore"
    rmtree(out_dir)
    out_dir.mkdir(parents=True)
    cmd, cwd, restored = tool.restore_cmd("b2", out_dir, src)
    log(f"[{label}] restore ...")
    m = run_timed(cmd, tool.env(), tool.dir / "logs" / "restore", cwd=cwd)
    result.steps["restore"] = m
    log(f"[{label}]   {m.seconds:.1f} s, {result.mbps('restore'):.0f} MB/s, RSS {human(m.peak_rss)}")
    if not restored.is_file():
        raise BenchError(f"{label}: restored file not found at {restored}")
    apparent, result.restored_allocated = file_sizes(restored)
    log(f"[{label}] verifying restored file (sha256)")
    got = sha256_file(restored)
    if apparent != result.image_bytes or got != want:
        raise BenchError(f"{label}: restored file differs from the changed image "
                         f"(size {apparent}, sha256 {got}, want {want})")
    log(f"[{label}]   restore verified: bit-identical")


# --------------------------------------------------------------------------------------------
# reporting


def render(headers: list, rows: list, markdown: bool) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in cells]
        lines.insert(1, "|" + "|".join("---" for _ in headers) + "|")
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(cells[0]), fmt(["-" * w for w in widths])] + [fmt(r) for r in cells[1:]])


def tool_table(r: ToolResult, markdown: bool) -> str:
    headers = ["step", "seconds", "MB/s", "CPU s", "peak RSS", "repo (apparent)",
               "repo (allocated)", "flush s"]
    rows = []
    for step, name in STEPS:
        if step not in r.steps:
            continue
        m = r.steps[step]
        repo = r.repo.get(step)
        rows.append([name, f"{m.seconds:.2f}", f"{r.mbps(step):.0f}", f"{m.cpu_seconds:.1f}",
                     human(m.peak_rss), human(repo[0]) if repo else "-",
                     human(repo[1]) if repo else "-", f"{m.flush_seconds:.2f}"])
    text = render(headers, rows, markdown)
    notes = []
    if "incr" in r.repo:
        notes.append(f"repo apparent bytes after full {r.repo['full'][0]}, after incremental "
                     f"{r.repo['incr'][0]} (+{r.incr_added()}, {human(r.incr_added())})")
    if r.restored_allocated is not None:
        notes.append(f"restored file allocated {human(r.restored_allocated)}")
    if r.snapshots:
        snaps = ", ".join(f"{s.get('name')}: stored {human(s.get('stored_bytes') or 0)}"
                          for s in r.snapshots if isinstance(s, dict))
        notes.append(f"snapshots ({snaps})")
    return text + ("\n\n" if markdown else "\n") + "; ".join(notes) if notes else text


def ratio_table(results: dict, markdown: bool) -> str | None:
    """drydock/peer ratios: throughput (higher is better), repo size and RSS (lower is better)."""
    d = results.get("drydock")
    peers = [p for p in ("restic", "borg") if p in results]
    if not d or not peers:
        return None
    headers = ["drydock ratio"] + [f"vs {p}" for p in peers]
    rows = []
    for step, name in STEPS:
        if step in d.steps and all(step in results[p].steps for p in peers):
            rows.append([f"{name} throughput (x)"] + [f"{d.mbps(step) / results[p].mbps(step):.2f}" for p in peers])
    rows.append(["repo size (drydock/peer)"] + [f"{d.repo['incr'][0] / results[p].repo['incr'][0]:.2f}" for p in peers])
    rows.append(["peak RSS (drydock/peer)"] + [f"{d.peak_rss() / results[p].peak_rss():.2f}" for p in peers])
    return render(headers, rows, markdown)


def goal_table(results: dict, markdown: bool) -> tuple[str | None, bool]:
    d = results.get("drydock")
    if not d:
        return None, True
    rows, ok = [], True
    for label, peer, step, minimum in SPEED_GOALS:
        if peer in results and step in d.steps and step in results[peer].steps:
            value = d.mbps(step) / results[peer].mbps(step)
            passed = value >= minimum
            rows.append([label, f"{value:.2f}x", "PASS" if passed else "FAIL"])
            ok &= passed
    for label, peer, metric, maximum in SIZE_GOALS:
        if peer in results:
            p = results[peer]
            value = (d.repo["incr"][0] / p.repo["incr"][0]) if metric == "repo" else d.peak_rss() / p.peak_rss()
            passed = value <= maximum
            rows.append([label, f"{value:.2f}x", "PASS" if passed else "FAIL"])
            ok &= passed
    if not rows:
        return None, True
    return render(["goal", "drydock/peer", "result"], rows, markdown), ok


def sweep_table(kind: str, results: list[tuple[str, ToolResult]], markdown: bool) -> str:
    headers = [kind, "full s", "full MB/s", "incr s", "incr MB/s", "incr added", "repo total",
               "peak RSS"]
    rows = [[value, f"{r.steps['full'].seconds:.2f}", f"{r.mbps('full'):.0f}",
             f"{r.steps['incr'].seconds:.2f}", f"{r.mbps('incr'):.0f}",
             f"{r.incr_added()} ({human(r.incr_added())})",
             f"{r.repo['incr'][0]} ({human(r.repo['incr'][0])})", human(r.peak_rss())]
            for value, r in results]
    return render(headers, rows, markdown)


def machine_info(work: Path) -> list[str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    fs = " ".join(run(["df", "--output=fstype,source", work]).split()[2:4])
    return [f"CPU: {cpu}, {os.cpu_count()} cores; RAM {human(mem_kib * 1024)}; "
            f"kernel {os.uname().release}; work dir {work} on {fs}"]


def write_markdown(path: Path, title: str, header_lines: list[str], sections: list[tuple[str, str]]) -> None:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    out = [f"\n## {title}, {now}\n"] + [f"- {line}" for line in header_lines] + [""]
    for heading, body in sections:
        out += [f"### {heading}\n", body, ""]
    with open(path, "a") as f:
        f.write("\n".join(out))
    log(f"appended markdown to {path}")


# --------------------------------------------------------------------------------------------
# modes


def compare_tools(args, images: dict) -> int:
    results, t0 = {}, time.monotonic()
    for name in args.tools:
        tool = TOOL_CLASSES[name](args.work / "runs" / name)
        results[name] = bench_tool(tool, name, images, args.work, [], True, args.keep, args.seed)
    elapsed = time.monotonic() - t0
    ok = report_comparison(args, images, results, elapsed)
    return 0 if ok else 3


def report_comparison(args, images, results, elapsed) -> bool:
    sections = [(f"{name} ({tool_version(name)})", lambda md, r=r: tool_table(r, md))
                for name, r in results.items()]
    ratios = ratio_table(results, False)
    if ratios:
        sections.append(("drydock ratios", lambda md: ratio_table(results, md)))
    goals, ok = goal_table(results, False)
    if goals:
        sections.append(("goals", lambda md: goal_table(results, md)[0]))
    print()
    for line in describe_image(images):
        print(line)
    for heading, body in sections:
        print(f"\n== {heading}\n{body(False)}")
    print(f"\ntotal benchmark time (excluding image build): {elapsed:.0f} s")
    if not goals:
        print("(goals not checked: drydock was not run)" if "drydock" not in results
              else "(goals not checked: no peer was run)")
    if args.markdown:
        header = machine_info(args.work) + [f"{n}: {tool_version(n)}" for n in results] + describe_image(images)
        header.append(f"total benchmark time: {elapsed:.0f} s; cold cache before every step")
        write_markdown(args.markdown, "Backup benchmark: " + ", ".join(results), header,
                       [(h, b(True)) for h, b in sections])
    return ok


def sweep(args, images: dict, kind: str, values: list[str], option: str) -> None:
    results = []
    for value in values:
        tool = Drydock(args.work / "runs" / f"drydock-{option.strip('-')}-{value}")
        label = f"drydock {option} {value}"
        results.append((value, bench_tool(tool, label, images, args.work, [option, value],
                                          False, args.keep, args.seed)))
    print(f"\n== drydock {kind} sweep\n{sweep_table(kind, results, False)}")
    if args.markdown:
        header = machine_info(args.work) + [f"drydock: {tool_version('drydock')}"] + describe_image(images)
        write_markdown(args.markdown, f"drydock {kind} sweep", header,
                       [(f"{kind} sweep", sweep_table(kind, results, True))])


# --------------------------------------------------------------------------------------------
# main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="work dir (default bench/work)")
    p.add_argument("--tools", default=",".join(ALL_TOOLS), help="comma list of drydock,restic,borg")
    p.add_argument("--drydock", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "drydock"),
                   help="drydock binary (relative paths are relative to the repo root)")
    p.add_argument("--no-build", action="store_true", help="do not run cargo build --release -p drydock-cli")
    p.add_argument("--rebuild-image", action="store_true", help="rebuild the cached images")
    p.add_argument("--image-only", action="store_true", help="build/describe the images and stop")
    p.add_argument("--image-size", type=parse_size, default=DEFAULT_IMAGE_SIZE,
                   help="image size (default 4GiB; content scales with it)")
    p.add_argument("--seed", type=int, default=1, help="PRNG seed for random data and the change")
    p.add_argument("--chunk-sizes", help="drydock only: sweep repo init --chunk-size, e.g. 256KiB,1MiB")
    p.add_argument("--compression-levels", help="drydock only: sweep repo init --compression-level, e.g. 1,3")
    p.add_argument("--markdown", type=Path, help="append the results as a markdown section to FILE")
    p.add_argument("--keep", action="store_true", help="keep repositories, sources and restores")
    args = p.parse_args(argv)
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(args.tools) - set(ALL_TOOLS)
    if unknown:
        p.error(f"unknown tools: {', '.join(sorted(unknown))}")
    args.work = args.work.resolve()
    if args.image_size % BLOCK or args.image_size < 64 * MiB:
        p.error("--image-size must be a multiple of 4 KiB and at least 64MiB")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    sweeps = [(kind, vals, opt) for kind, vals, opt in
              (("chunk size", args.chunk_sizes, "--chunk-size"),
               ("compression level", args.compression_levels, "--compression-level")) if vals]
    try:
        if not args.image_only:
            check_tools(["drydock"] if sweeps else args.tools, args)
        images = ensure_images(args.work, args.image_size, args.seed, args.rebuild_image)
        for line in describe_image(images):
            log(line)
        if args.image_only:
            return 0
        if sweeps:
            for kind, vals, opt in sweeps:
                sweep(args, images, kind, [v.strip() for v in vals.split(",") if v.strip()], opt)
            return 0
        return compare_tools(args, images)
    except BenchError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
