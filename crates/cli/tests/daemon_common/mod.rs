//! Helpers for the daemon tests: a sandbox holding a data directory and a disk root, a real
//! `drydock serve` process that can be stopped gently, killed and restarted, and the real
//! `curl` for every request, the way the seeds' tutorial talks to the API.
// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

/// Long enough for the daemon to start (it derives the repository key with Argon2) on a
/// loaded two-core machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on any action the tests wait for.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on one curl request.
const REQUEST_SECS_MAX: &str = "30";
/// Bodies longer than this go to curl through a file: an argument may not exceed 128 KiB.
const INLINE_BODY_BYTES_MAX: usize = 32 << 10;
const STATUS_MARK: &str = "\n@@drydock-test-status@@";
const HEADERS_MARK: &str = "@@drydock-test-headers@@";
/// What the daemon prints on stderr once it listens.
const SERVING: &str = "drydock: serving the API on ";

// ---- the daemon ----

/// A data directory, a disk root beside it, and the daemon serving them. Dropping it kills the
/// daemon; if the test is failing, the daemon's log is printed first.
pub struct Daemon {
    dir: TempDir,
    pub data_dir: PathBuf,
    /// The configured disk root (`disk_roots`); `<data_dir>/disks` is allowed too.
    pub disks: PathBuf,
    /// A directory outside every disk root.
    pub outside: PathBuf,
    pub config: PathBuf,
    /// A full-access token of team `default`.
    pub token: String,
    /// `https://127.0.0.1:PORT` of the running daemon.
    pub url: String,
    child: Option<Child>,
    runs: u32,
    requests: AtomicU64,
    /// Every request answered with a 5xx, for [`Daemon::assert_healthy`].
    server_errors: Mutex<Vec<String>>,
}

impl Daemon {
    /// A daemon with the default settings (2 workers, the default region).
    pub fn start() -> Daemon {
        Daemon::with_config("")
    }

    /// A daemon whose configuration file has `extra` (TOML lines) after the disk root.
    pub fn with_config(extra: &str) -> Daemon {
        let dir = tempfile::Builder::new().prefix("drydock-daemon-").tempdir().expect("temporary directory");
        let root = dir.path().to_path_buf();
        let (data_dir, disks, outside) = (root.join("data"), root.join("disks"), root.join("outside"));
        for d in [&disks, &outside, &root.join("logs"), &root.join("requests")] {
            std::fs::create_dir_all(d).expect("creating the sandbox");
        }
        let config = root.join("drydock.toml");
        std::fs::write(&config, format!("disk_roots = [{:?}]\n{extra}\n", disks.display().to_string()))
            .expect("writing the configuration");
        let mut daemon = Daemon {
            dir,
            data_dir,
            disks,
            outside,
            config,
            token: String::new(),
            url: String::new(),
            child: None,
            runs: 0,
            requests: AtomicU64::new(0),
            server_errors: Mutex::new(Vec::new()),
        };
        daemon.token = daemon.create_token("*", "default");
        daemon.launch();
        daemon
    }

    /// The sandbox directory holding everything.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn cert(&self) -> PathBuf {
        self.data_dir.join("tls").join("cert.pem")
    }

    /// Starts `drydock serve` on a free port and waits until it listens.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "the daemon is already running");
        self.runs += 1;
        let log_path = self.log_path(self.runs);
        let log = File::create(&log_path).expect("creating the daemon log");
        let child = drydock()
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--config")
            .arg(&self.config)
            .args(["--listen", "127.0.0.1:0"])
            .env("DRYDOCK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting drydock serve");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| l.starts_with(SERVING)) {
                let address = line[SERVING.len()..].split_whitespace().next().expect("an address after the words");
                self.url = address.to_string();
                return;
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().expect("checking the daemon"));
            if let Some(status) = exited {
                self.child = None;
                panic!("drydock serve exited ({status}) before listening:\n{log}");
            }
            assert!(Instant::now() < deadline, "drydock serve did not listen within {START_TIMEOUT:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon is running").id()
    }

    /// SIGKILL, and waits for the process to be gone (its data directory lock with it).
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("the daemon is running");
        let _ = child.kill();
        let status = child.wait().expect("waiting for the killed daemon");
        assert!(status.code().is_none(), "the daemon exited by itself ({status}) before SIGKILL");
    }

    /// SIGTERM; returns how the daemon exited and how long it took. Fails the test if it does
    /// not exit within `limit`.
    pub fn terminate(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("the daemon is running");
        let pid = libc::pid_t::try_from(child.id()).expect("a pid");
        let sent = Instant::now();
        // SAFETY: kill(2) on our own child, which has not been reaped, so the pid is still its.
        let result = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(result, 0, "sending SIGTERM");
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the daemon") {
                return (status, sent.elapsed());
            }
            if sent.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the daemon did not exit within {limit:?} of SIGTERM:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_path(&self, run: u32) -> PathBuf {
        self.root().join("logs").join(format!("serve-{run}.log"))
    }

    /// Everything every run of the daemon wrote on stderr.
    pub fn logs(&self) -> String {
        (1..=self.runs)
            .map(|run| {
                format!("--- run {run} ---\n{}", std::fs::read_to_string(self.log_path(run)).unwrap_or_default())
            })
            .collect()
    }

    /// No run of the daemon panicked, and no request was answered with a 5xx.
    pub fn assert_healthy(&self) {
        let logs = self.logs();
        assert!(!logs.contains("panicked"), "the daemon panicked:\n{logs}");
        let server_errors = self.server_errors.lock().unwrap_or_else(|e| e.into_inner());
        assert!(server_errors.is_empty(), "server errors:\n{}", server_errors.join("\n"));
    }

    /// `drydock token create`, straight on the data directory.
    pub fn create_token(&self, scopes: &str, team: &str) -> String {
        let output = self
            .offline(&["token", "create", "--scopes", scopes, "--team", team, "--name", "test"])
            .output()
            .expect("running drydock token create");
        assert!(output.status.success(), "token create failed: {}", String::from_utf8_lossy(&output.stderr));
        let secret = String::from_utf8(output.stdout).expect("a text secret").trim().to_string();
        assert!(secret.starts_with("dop_v1_"), "unexpected secret {secret:?}");
        secret
    }

    /// `drydock --json catalog check`: its exit code and report.
    pub fn catalog_check(&self) -> (Option<i32>, Value) {
        let mut command = drydock();
        command.arg("--json");
        command.args(["catalog", "check", "--data-dir"]).arg(&self.data_dir).arg("--config").arg(&self.config);
        let output = command.output().expect("running drydock catalog check");
        let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "catalog check printed no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.code(), report)
    }

    /// The catalog agrees with the repository: exit 0 and no mismatches.
    pub fn assert_catalog_consistent(&self) -> Value {
        let (code, report) = self.catalog_check();
        assert_eq!(code, Some(0), "catalog check found mismatches: {report}");
        assert_eq!(report["consistent"], true, "{report}");
        report
    }

    /// A `drydock` command on the data directory (token, catalog).
    fn offline(&self, args: &[&str]) -> Command {
        let mut command = drydock();
        command.args(args).arg("--data-dir").arg(&self.data_dir).arg("--config").arg(&self.config);
        command
    }

    // ---- HTTP ----

    /// One request with the full-access token.
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Response {
        self.request_as(Some(&self.token), method, path, body)
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.request("POST", path, Some(body.to_string().as_bytes()))
    }

    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, None)
    }

    /// One request with curl, as the tutorial sends them: `-X METHOD`, a JSON content type, a
    /// bearer token (unless `token` is `None`) and the body given with `-d`.
    pub fn request_as(&self, token: Option<&str>, method: &str, path: &str, body: Option<&[u8]>) -> Response {
        assert!(!self.url.is_empty(), "the daemon has not been started");
        let mut command = Command::new("curl");
        command
            .args(["-sS", "--max-time", REQUEST_SECS_MAX, "--cacert"])
            .arg(self.cert())
            .args(["-X", method, "-H", "Content-Type: application/json"])
            .arg("-w")
            .arg(format!("{STATUS_MARK}%{{http_code}}{HEADERS_MARK}%{{header_json}}"));
        if let Some(token) = token {
            command.arg("-H").arg(format!("Authorization: Bearer {token}"));
        }
        if let Some(body) = body {
            if body.len() <= INLINE_BODY_BYTES_MAX && !body.contains(&0) {
                command.arg("--data-raw").arg(OsStr::from_bytes(body));
            } else {
                let n = self.requests.fetch_add(1, Ordering::Relaxed);
                let file = self.root().join("requests").join(format!("{n}.body"));
                std::fs::write(&file, body).expect("writing a request body");
                command.arg("--data-binary").arg(format!("@{}", file.display()));
            }
        }
        command.arg(format!("{}{path}", self.url));
        let output = command.stdin(Stdio::null()).output().expect("running curl (is it installed?)");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let described = format!("{method} {path}");
        let (body, rest) =
            stdout.rsplit_once(STATUS_MARK).unwrap_or_else(|| panic!("curl {described} printed no status: {stdout:?}"));
        let (status, headers) = rest.split_once(HEADERS_MARK).expect("curl printed the headers mark");
        let status: u16 = status.parse().unwrap_or_else(|_| panic!("curl {described}: status {status:?}"));
        assert!(
            status != 0,
            "curl {described} got no response: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
        if status >= 500 {
            self.server_errors.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{described}: {status} {body}"));
        }
        Response {
            request: described,
            status,
            body: body.to_string(),
            headers: serde_json::from_str(headers).unwrap_or(Value::Null),
        }
    }

    // ---- resources ----

    /// Registers a droplet on an existing disk; returns its id.
    pub fn register(&self, name: &str, disk: &Path, power: Value) -> i64 {
        let response =
            self.post("/v2/droplets", &json!({"name": name, "disk": {"path": disk, "format": "raw"}, "power": power}));
        let body = response.expect(202);
        let id = body["droplet"]["id"].as_i64().unwrap_or_else(|| panic!("no droplet id: {body}"));
        let create = body["links"]["actions"][0]["id"].as_i64().expect("a create action");
        assert_eq!(self.wait_action(create)["status"], "completed", "registering droplet {name}");
        id
    }

    /// Starts an action on a droplet (201); returns the action.
    pub fn droplet_action(&self, droplet: i64, body: &Value) -> Value {
        let response = self.post(&format!("/v2/droplets/{droplet}/actions"), body);
        response.expect(201)["action"].clone()
    }

    pub fn action(&self, id: i64) -> Value {
        self.get(&format!("/v2/actions/{id}")).expect(200)["action"].clone()
    }

    pub fn droplet(&self, id: i64) -> Value {
        self.get(&format!("/v2/droplets/{id}")).expect(200)["droplet"].clone()
    }

    /// Polls an action until it is no longer in progress; returns it.
    pub fn wait_action(&self, id: i64) -> Value {
        let deadline = Instant::now() + ACTION_TIMEOUT;
        loop {
            let action = self.action(id);
            if action["status"] != "in-progress" {
                return action;
            }
            assert!(Instant::now() < deadline, "action {id} still in progress after {ACTION_TIMEOUT:?}: {action}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for an action and requires it to have completed.
    pub fn wait_completed(&self, id: i64) -> Value {
        let action = self.wait_action(id);
        assert_eq!(action["status"], "completed", "action {id} did not complete: {action}");
        action
    }

    /// A power driver of the command kind whose machine is a file holding `on` or `off`; every
    /// switch is appended to a log. Starts on.
    pub fn file_power(&self, name: &str) -> FilePower {
        let state = self.root().join(format!("{name}.power"));
        let log = self.root().join(format!("{name}.power-log"));
        std::fs::write(&state, "on\n").expect("writing the power state");
        let (s, l) = (state.display(), log.display());
        let driver = json!({
            "driver": "command",
            "on": format!("echo on > '{s}' && echo on >> '{l}'"),
            "off": format!("echo off > '{s}' && echo off >> '{l}'"),
            "status": format!("grep -qx on '{s}'"),
            "timeout_secs": 10,
        });
        FilePower { driver, state, log }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("daemon logs:\n{}", self.logs());
        }
    }
}

/// The `drydock` binary with none of the environment that would point it elsewhere.
pub fn drydock() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drydock"));
    for key in ["DRYDOCK_CONFIG", "DRYDOCK_DATA_DIR", "DRYDOCK_LISTEN", "DRYDOCK_REPO", "DRYDOCK_PASSWORD"] {
        command.env_remove(key);
    }
    command.stdin(Stdio::null());
    command
}

/// A machine simulated by a state file, switched by shell commands.
pub struct FilePower {
    /// The `power` object to register the droplet with.
    pub driver: Value,
    pub state: PathBuf,
    pub log: PathBuf,
}

impl FilePower {
    /// The switches made so far, in order (`on`, `off`).
    pub fn switches(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
    }

    pub fn is_on(&self) -> bool {
        std::fs::read_to_string(&self.state).expect("reading the power state").trim() == "on"
    }
}

/// What came back from one request.
#[derive(Debug)]
pub struct Response {
    /// `METHOD path`, for messages.
    pub request: String,
    pub status: u16,
    pub body: String,
    /// Response headers as curl's `%{header_json}`: lowercase names, arrays of values.
    pub headers: Value,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{} ({}) answered no JSON ({e}): {:?}", self.request, self.status, self.body))
    }

    /// Requires `status` and returns the JSON body (`null` for an empty one).
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{} answered {}: {}", self.request, self.status, self.body);
        if self.body.is_empty() { Value::Null } else { self.json() }
    }

    /// Requires an error with `status` and a DigitalOcean error body: the id matching the
    /// status, a non-empty message and a request id. Returns the message.
    pub fn expect_error(&self, status: u16) -> String {
        let body = self.expect(status);
        let id = match status {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            413 => "request_too_large",
            422 => "unprocessable_entity",
            429 => "too_many_requests",
            other => panic!("no DigitalOcean error id known for {other}"),
        };
        assert_eq!(body["id"], id, "{}: {body}", self.request);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(!message.trim().is_empty(), "{}: empty message in {body}", self.request);
        let request_id = body["request_id"].as_str().unwrap_or_default();
        assert!(!request_id.is_empty(), "{}: no request_id in {body}", self.request);
        message.to_string()
    }

    /// One response header, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers[name.to_ascii_lowercase()][0].as_str()
    }
}

// ---- disks ----

/// xorshift64: fast and seedable; good enough for disk contents.
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

    pub fn fill(&mut self, out: &mut [u8]) {
        for piece in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            piece.copy_from_slice(&word[..piece.len()]);
        }
    }
}

const MIB: u64 = 1 << 20;

/// Writes a sparse disk of `size_bytes` with `data_bytes` of random data in 1 MiB pieces spread
/// evenly over it (the rest are holes), plus its very last byte.
pub fn write_sparse_disk(path: &Path, size_bytes: u64, data_bytes: u64, seed: u64) {
    let file = File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    file.set_len(size_bytes).expect("sizing the disk");
    let pieces = data_bytes.div_ceil(MIB).max(1);
    let stride = (size_bytes / pieces) / 4096 * 4096;
    assert!(stride >= MIB, "{data_bytes} bytes of data do not fit in {size_bytes} in 1 MiB pieces");
    let mut rng = Rng::new(seed);
    let mut buffer = vec![0u8; MIB as usize];
    for piece in 0..pieces {
        rng.fill(&mut buffer);
        // Pieces start at a varying offset in their stride, not all aligned alike.
        let slack = (stride - MIB) / 4096;
        let offset = piece * stride + if slack > 0 { rng.next_u64() % slack * 4096 } else { 0 };
        file.write_all_at(&buffer, offset).expect("writing the disk");
    }
    file.write_all_at(&[0xd5], size_bytes - 1).expect("writing the disk's last byte");
}

/// Requires two files to hold the same bytes; reports the first difference, not megabytes.
pub fn assert_same_contents(actual: &Path, expected: &Path) {
    let open = |p: &Path| File::open(p).unwrap_or_else(|e| panic!("opening {}: {e}", p.display()));
    let (mut a, mut b) = (open(actual), open(expected));
    let (len_a, len_b) = (a.metadata().expect("stat").len(), b.metadata().expect("stat").len());
    assert_eq!(len_a, len_b, "{} is {len_a} bytes, {} is {len_b}", actual.display(), expected.display());
    let (mut buf_a, mut buf_b) = (vec![0u8; 8 << 20], vec![0u8; 8 << 20]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut a, &mut buf_a);
        let m = read_full(&mut b, &mut buf_b);
        assert_eq!(n, m, "short read at {offset}");
        if n == 0 {
            return;
        }
        if buf_a[..n] != buf_b[..n] {
            let at = buf_a[..n].iter().zip(&buf_b[..n]).position(|(x, y)| x != y).unwrap_or(0);
            panic!("{} differs from {} at offset {}", actual.display(), expected.display(), offset + at as u64);
        }
        offset += n as u64;
    }
}

fn read_full(file: &mut File, buffer: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]).expect("reading") {
            0 => break,
            n => filled += n,
        }
    }
    filled
}

/// Waits until `condition` holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}
