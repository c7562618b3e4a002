//! Shared helpers for the end-to-end tests: a sandbox holding a repository, a runner for the
//! real `drydock` binary, deterministic sparse images, and byte comparison.
// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tempfile::TempDir;

pub const PASSWORD: &str = "correct horse battery staple";
/// Small chunks and packs: images of a few MiB make many chunks and packs.
pub const SMALL_REPO: [&str; 4] = ["--chunk-size", "64KiB", "--pack-size", "1MiB"];
pub const CHUNK_BYTES: usize = 64 << 10;
/// What the process exits with when Rust panics.
const PANIC_EXIT_CODE: i32 = 101;
/// Exit code of `repo verify` when it found damage.
pub const EXIT_DAMAGE_FOUND: i32 = 3;

// ---- running drydock ----

/// What one run of `drydock` did.
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// The command line, for messages.
    pub command: String,
}

impl Outcome {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with the whole story unless the run succeeded.
    pub fn assert_ok(self) -> Outcome {
        assert!(
            self.status.success(),
            "`{}` failed ({}):\n{}\n{}",
            self.command,
            self.status,
            self.stderr,
            self.stdout_text()
        );
        self
    }

    /// Parses standard output as exactly one JSON value (nothing before or after it).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!("`{}` did not print exactly one JSON value ({e}):\n{}", self.command, self.stdout_text())
        })
    }

    /// A failure the way a person should see it: not a panic, a non-zero exit, and exactly one
    /// line on standard error that starts with `drydock: ` and names every one of `needles`.
    pub fn assert_clean_failure(&self, needles: &[&str]) {
        let context =
            format!("`{}` ({})\nstderr: {}\nstdout: {}", self.command, self.status, self.stderr, self.stdout_text());
        assert!(!self.status.success(), "expected a failure: {context}");
        assert_ne!(self.status.code(), Some(PANIC_EXIT_CODE), "exit code of a panic: {context}");
        assert!(self.status.code().is_some(), "killed by a signal: {context}");
        assert!(!self.stderr.contains("panicked"), "panicked: {context}");
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr: {context}");
        assert!(lines[0].starts_with("drydock: "), "stderr does not start with `drydock: `: {context}");
        for needle in needles {
            assert!(
                lines[0].to_lowercase().contains(&needle.to_lowercase()),
                "the message does not name {needle:?}: {context}"
            );
        }
    }

    /// Lines `repo verify` printed about damage.
    pub fn damage_lines(&self) -> Vec<String> {
        self.stderr.lines().filter(|l| l.starts_with("damaged: ")).map(str::to_string).collect()
    }
}

/// One command line, with its environment, ready to run or spawn.
pub struct Invocation {
    command: Command,
    description: String,
}

impl Invocation {
    pub fn env(mut self, key: &str, value: &str) -> Invocation {
        self.command.env(key, value);
        self
    }

    pub fn password(self, password: &str) -> Invocation {
        self.env("DRYDOCK_PASSWORD", password)
    }

    pub fn stdout(mut self, stdout: Stdio) -> Invocation {
        self.command.stdout(stdout);
        self
    }

    pub fn no_password(mut self) -> Invocation {
        self.command.env_remove("DRYDOCK_PASSWORD");
        self
    }

    pub fn run(mut self) -> Outcome {
        let output = self.command.output().unwrap_or_else(|e| panic!("cannot run `{}`: {e}", self.description));
        Outcome {
            status: output.status,
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            command: self.description,
        }
    }

    /// Starts the command; its output is captured for [`finish`].
    pub fn spawn(mut self) -> Running {
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = self.command.spawn().unwrap_or_else(|e| panic!("cannot start `{}`: {e}", self.description));
        Running { child, description: self.description }
    }
}

/// A `drydock` process started with [`Invocation::spawn`].
pub struct Running {
    pub child: Child,
    description: String,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGKILL (harmless if the process already exited: it is not reaped until `finish`).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    pub fn finish(self) -> Outcome {
        let output = self.child.wait_with_output().expect("waiting for drydock");
        Outcome {
            status: output.status,
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            command: self.description,
        }
    }
}

/// A `drydock` command with a clean environment: no inherited repository or passphrases, and
/// standard input that is not a terminal.
pub fn drydock_command<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Invocation {
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
    let description = std::iter::once("drydock".to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = Command::new(env!("CARGO_BIN_EXE_drydock"));
    command
        .args(&args)
        .env_remove("DRYDOCK_REPO")
        .env_remove("DRYDOCK_PASSWORD")
        .env_remove("DRYDOCK_NEW_PASSWORD")
        .stdin(Stdio::null());
    Invocation { command, description }
}

/// An argument, for argument lists that mix words and paths.
pub fn os(text: &str) -> &OsStr {
    OsStr::new(text)
}

// ---- a sandbox with a repository ----

/// A temporary directory with a repository path (`repo/`, not created until `init`) and room
/// for images and restore targets beside it.
pub struct Sandbox {
    dir: TempDir,
    pub repo: PathBuf,
}

impl Sandbox {
    /// A sandbox whose repository does not exist yet.
    pub fn empty() -> Sandbox {
        let dir = tempfile::Builder::new().prefix("drydock-e2e-").tempdir().expect("temporary directory");
        let repo = dir.path().join("repo");
        Sandbox { dir, repo }
    }

    /// A sandbox with a small-chunk encrypted repository, opened with [`PASSWORD`].
    pub fn new() -> Sandbox {
        let sandbox = Sandbox::empty();
        sandbox.init(&SMALL_REPO);
        sandbox
    }

    pub fn init(&self, extra: &[&str]) {
        let mut args = vec!["repo", "init"];
        args.extend_from_slice(extra);
        self.drydock(&args).assert_ok();
    }

    /// A path in the sandbox, beside the repository.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `drydock --repo <repo> <args>` opened with [`PASSWORD`].
    pub fn cmd<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Invocation {
        let mut all: Vec<std::ffi::OsString> = vec!["--repo".into(), self.repo.clone().into_os_string()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        drydock_command(all).password(PASSWORD)
    }

    pub fn drydock<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Outcome {
        self.cmd(args).run()
    }

    /// Runs with `--json`, requires success and returns the one JSON value printed.
    pub fn json<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> serde_json::Value {
        let mut all: Vec<std::ffi::OsString> = vec!["--json".into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self.drydock(all).assert_ok().json()
    }

    /// Writes `image` to a file in the sandbox and backs it up under `name`; returns the id.
    pub fn backup(&self, image: &Image, name: &str) -> String {
        let path = self.path(&format!("{name}.img"));
        image.write(&path);
        self.backup_file(&path, name)
    }

    pub fn backup_file(&self, path: &Path, name: &str) -> String {
        let view = self.json([
            OsStr::new("image"),
            OsStr::new("backup"),
            path.as_os_str(),
            OsStr::new("--name"),
            OsStr::new(name),
        ]);
        view["id"].as_str().expect("backup prints an id").to_string()
    }

    pub fn list(&self) -> Vec<Listed> {
        serde_json::from_value(self.json(["image", "list"])).expect("image list --json is an array of snapshots")
    }

    pub fn list_ids(&self) -> BTreeSet<String> {
        self.list().into_iter().map(|s| s.id).collect()
    }

    /// Restores `snapshot` to standard output and returns the bytes.
    pub fn restore_bytes(&self, snapshot: &str) -> Vec<u8> {
        self.drydock(["image", "restore", snapshot, "-"]).assert_ok().stdout
    }

    /// Restores `snapshot` and requires it to equal `expected` byte for byte.
    pub fn assert_restores(&self, snapshot: &str, expected: &[u8]) {
        assert_same_bytes(&self.restore_bytes(snapshot), expected, &format!("snapshot {snapshot}"));
    }

    /// `repo verify --read-data` must find nothing.
    pub fn assert_verifies(&self) {
        let outcome = self.drydock(["repo", "verify", "--read-data"]);
        assert_eq!(
            outcome.status.code(),
            Some(0),
            "verify --read-data failed:\n{}\n{}",
            outcome.stderr,
            outcome.stdout_text()
        );
    }

    pub fn gc(&self) -> serde_json::Value {
        self.json(["repo", "gc"])
    }

    /// Files of one kind in the repository (`packs`, `index`, `snapshots`, `keys`, `plans`,
    /// `leases`), temporary files excluded.
    pub fn objects(&self, kind: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        collect_files(&self.repo.join(kind), &mut found);
        found.retain(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')));
        found.sort();
        found
    }

    pub fn object_names(&self, kind: &str) -> BTreeSet<String> {
        self.objects(kind).iter().map(|p| file_name(p)).collect()
    }
}

fn collect_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_files(&path, found),
            Ok(t) if t.is_file() => found.push(path),
            _ => {}
        }
    }
}

pub fn file_name(path: &Path) -> String {
    path.file_name().expect("a file name").to_string_lossy().into_owned()
}

/// One item of `image list --json`.
#[derive(Clone, Debug, Deserialize)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub size_bytes: u64,
    pub stored_bytes: u64,
    pub created_at: String,
    pub tags: Vec<String>,
}

// ---- deterministic images ----

/// xorshift64: fast, seedable, good enough for test data and kill timings.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for piece in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            piece.copy_from_slice(&word[..piece.len()]);
        }
    }
}

/// Kinds of content an image is made of.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fill {
    /// Incompressible bytes.
    Random,
    /// Words and newlines: compresses well.
    Text,
    /// Never written: a hole in the file.
    Hole,
    /// Zeros written explicitly: allocated on disk, but zero chunks to drydock.
    Zeros,
}

/// An image's bytes and which ranges are holes in its file.
#[derive(Clone)]
pub struct Image {
    pub bytes: Vec<u8>,
    holes: Vec<(usize, usize)>,
}

const HOLE_ALIGN_BYTES: usize = 4096;

impl Image {
    /// Random and text-like data with holes and explicitly written zero ranges; the size is
    /// deliberately not a multiple of the chunk size.
    pub fn mixed(seed: u64, size_bytes: usize) -> Image {
        Image::build(seed, size_bytes, &[(Fill::Random, 4), (Fill::Text, 3), (Fill::Hole, 2), (Fill::Zeros, 1)])
    }

    /// Mostly incompressible data (with a little text and one or two holes): the slowest kind
    /// to back up, and nothing deduplicates within it.
    pub fn random(seed: u64, size_bytes: usize) -> Image {
        Image::build(seed, size_bytes, &[(Fill::Random, 17), (Fill::Text, 2), (Fill::Hole, 1)])
    }

    fn build(seed: u64, size_bytes: usize, weights: &[(Fill, u64)]) -> Image {
        let mut rng = Rng::new(seed);
        let mut bytes = vec![0u8; size_bytes];
        let mut holes = Vec::new();
        let total_weight: u64 = weights.iter().map(|(_, w)| w).sum();
        let mut start = 0;
        while start < size_bytes {
            let len = ((1 + rng.below(96)) as usize * HOLE_ALIGN_BYTES).min(size_bytes - start);
            let fill = pick_weighted(weights, rng.below(total_weight));
            let range = &mut bytes[start..start + len];
            match fill {
                Fill::Random => rng.fill(range),
                Fill::Text => fill_text(&mut rng, range),
                Fill::Hole => holes.push((start, len)),
                Fill::Zeros => {}
            }
            start += len;
        }
        Image { bytes, holes }
    }

    /// A copy with `regions` random 4 KiB-aligned ranges overwritten: a later state of the same
    /// disk, sharing most chunks with this one.
    pub fn mutated(&self, seed: u64, regions: usize) -> Image {
        let mut rng = Rng::new(seed);
        let mut next = self.clone();
        let size = next.bytes.len();
        for _ in 0..regions {
            let len = ((1 + rng.below(16)) as usize * HOLE_ALIGN_BYTES).min(size);
            let start = rng.below((size - len + 1) as u64) as usize / HOLE_ALIGN_BYTES * HOLE_ALIGN_BYTES;
            rng.fill(&mut next.bytes[start..start + len]);
            next.holes.retain(|&(s, l)| s + l <= start || s >= start + len);
        }
        next
    }

    /// This image followed by `next`.
    pub fn concat(&self, next: &Image) -> Image {
        let offset = self.bytes.len();
        let mut bytes = self.bytes.clone();
        bytes.extend_from_slice(&next.bytes);
        let holes = self.holes.iter().copied().chain(next.holes.iter().map(|&(s, l)| (s + offset, l))).collect();
        Image { bytes, holes }
    }

    /// A copy in which every chunk except one in `keep_one_in` is replaced by fresh random
    /// data: it shares a scattered third (say) of this image's chunks, so forgetting this image
    /// leaves its packs partly used.
    pub fn rewrite_chunks(&self, seed: u64, keep_one_in: usize) -> Image {
        let mut rng = Rng::new(seed);
        let mut next = self.clone();
        for (index, chunk) in next.bytes.chunks_mut(CHUNK_BYTES).enumerate() {
            if index % keep_one_in != 0 {
                rng.fill(chunk);
            }
        }
        next.holes.retain(|&(s, l)| (s / CHUNK_BYTES..(s + l).div_ceil(CHUNK_BYTES)).all(|c| c % keep_one_in == 0));
        next
    }

    /// Writes the image as a sparse file: holes are left unwritten, everything else (explicit
    /// zeros included) is written.
    pub fn write(&self, path: &Path) {
        let file = File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        file.set_len(self.bytes.len() as u64).expect("set_len");
        let mut offset = 0;
        for &(hole_start, hole_len) in self.holes.iter().chain(std::iter::once(&(self.bytes.len(), 0))) {
            if hole_start > offset {
                file.write_all_at(&self.bytes[offset..hole_start], offset as u64).expect("writing the image");
            }
            offset = offset.max(hole_start + hole_len);
        }
        file.sync_all().expect("sync");
    }

    pub fn hole_bytes(&self) -> usize {
        self.holes.iter().map(|(_, l)| l).sum()
    }
}

/// The fill whose cumulative weight range holds `pick`.
fn pick_weighted(weights: &[(Fill, u64)], mut pick: u64) -> Fill {
    for &(fill, weight) in weights {
        if pick < weight {
            return fill;
        }
        pick -= weight;
    }
    unreachable!("pick is below the total weight")
}

fn fill_text(rng: &mut Rng, out: &mut [u8]) {
    const WORDS: [&[u8]; 12] = [
        b"block ",
        b"image ",
        b"backup ",
        b"sector ",
        b"the ",
        b"of ",
        b"kernel: ",
        b"ext4 ",
        b"inode ",
        b"42 ",
        b"\n",
        b"journal ",
    ];
    let mut i = 0;
    while i < out.len() {
        let word = WORDS[rng.below(WORDS.len() as u64) as usize];
        let n = word.len().min(out.len() - i);
        out[i..i + n].copy_from_slice(&word[..n]);
        i += n;
    }
}

/// Compares without printing megabytes: reports lengths and the first differing offset.
pub fn assert_same_bytes(actual: &[u8], expected: &[u8], what: &str) {
    if actual == expected {
        return;
    }
    let first = actual.iter().zip(expected).position(|(a, b)| a != b);
    panic!(
        "{what}: restored {} bytes, expected {}; first difference at offset {:?}",
        actual.len(),
        expected.len(),
        first.or(Some(actual.len().min(expected.len())))
    );
}

// ---- files ----

/// Cuts `path` to half its length, as a crash or a bad disk might.
pub fn truncate_half(path: &Path) {
    let len = std::fs::metadata(path).expect("stat").len();
    File::options().write(true).open(path).and_then(|f| f.set_len(len / 2)).expect("truncating");
}

/// Files in `dir` whose name contains `.drydock-partial-`.
pub fn partial_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().map(|e| e.path()).filter(|p| file_name(p).contains(".drydock-partial-")).collect()
        })
        .unwrap_or_default()
}

/// Waits until `condition` holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    condition()
}

// ---- tmpfs ----

/// A tmpfs mounted for the life of the value (tests run as root in CI).
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    pub fn mount(path: &Path, size_mib: u32) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mount point");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount: {e} (these tests need root and mount(8))"));
        assert!(
            output.status.success(),
            "mounting a {size_mib} MiB tmpfs at {} failed (these tests need root): {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs { path: path.to_path_buf() }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Something still has a file open there: detach it so the tempdir can go.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}
