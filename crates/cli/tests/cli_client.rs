//! The client verbs against a real daemon: `drydock serve` on a free port, a token made with
//! `drydock token create`, then droplets, snapshots, restores, actions and volumes driven
//! through the CLI, and its errors as one line each.

mod common;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Image, Outcome, assert_same_bytes, os};
use serde_json::Value;
use tempfile::TempDir;

const IMAGE_BYTES: usize = (2 << 20) + 4096;
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Connection settings the tests set themselves; none may leak in from the environment.
const CLIENT_ENV: [&str; 6] = [
    "DRYDOCK_API_URL",
    "DRYDOCK_TOKEN",
    "DRYDOCK_CACERT",
    "DRYDOCK_DATA_DIR",
    "DIGITALOCEAN_ACCESS_TOKEN",
    "XDG_CONFIG_HOME",
];

/// A running `drydock serve` in a temporary directory, stopped with SIGTERM when dropped.
struct Daemon {
    child: Child,
    dir: TempDir,
    data_dir: PathBuf,
    url: String,
    token: String,
    plain_http: bool,
}

impl Daemon {
    fn start() -> Daemon {
        Daemon::start_with(false)
    }

    fn start_with(plain_http: bool) -> Daemon {
        let dir = tempfile::Builder::new().prefix("drydock-client-").tempdir().expect("temporary directory");
        let data_dir = dir.path().join("data");
        let config = dir.path().join("drydock.toml");
        std::fs::write(&config, format!("disk_roots = [{:?}]\n", dir.path().join("disks"))).unwrap();
        std::fs::create_dir(dir.path().join("disks")).unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        let port = free_port();
        let log = File::create(dir.path().join("daemon.log")).expect("daemon log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_drydock"));
        command
            .args([os("serve"), os("--data-dir"), data_dir.as_os_str(), os("--config"), config.as_os_str()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if plain_http {
            command.arg("--plain-http");
        }
        let child = command.spawn().expect("starting drydock serve");
        let scheme = if plain_http { "http" } else { "https" };
        let mut daemon = Daemon {
            child,
            dir,
            data_dir,
            url: format!("{scheme}://127.0.0.1:{port}"),
            token: String::new(),
            plain_http,
        };
        daemon.wait_until_listening(port);
        daemon.token = daemon.create_token(&["*"]);
        daemon
    }

    fn wait_until_listening(&mut self, port: u16) {
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Some(status) = self.child.try_wait().expect("polling the daemon") {
                panic!("drydock serve exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "drydock serve did not listen within {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    fn create_token(&self, scopes: &[&str]) -> String {
        let outcome = self.bare([
            os("token"),
            os("create"),
            os("--data-dir"),
            self.data_dir.as_os_str(),
            os("--scopes"),
            os(&scopes.join(",")),
        ]);
        outcome.stdout_text().trim().to_string()
    }

    /// A path in the directory the daemon accepts disks from.
    fn disk(&self, name: &str) -> PathBuf {
        self.dir.path().join("disks").join(name)
    }

    fn cert(&self) -> PathBuf {
        self.data_dir.join("tls").join("cert.pem")
    }

    /// `drydock <args>` with no connection settings at all, from an empty home directory.
    fn bare_command<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> (Command, String) {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
        let description = std::iter::once("drydock".to_string())
            .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut command = Command::new(env!("CARGO_BIN_EXE_drydock"));
        command.args(&args).current_dir(self.dir.path()).env("HOME", self.dir.path().join("home"));
        for key in CLIENT_ENV {
            command.env_remove(key);
        }
        command.stdin(Stdio::null());
        (command, description)
    }

    fn bare<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Outcome {
        let (command, description) = self.bare_command(args);
        run(command, description).assert_ok()
    }

    /// `drydock <args>` pointed at this daemon with its certificate and `token`.
    fn run_as<S: AsRef<OsStr>>(&self, token: &str, args: impl IntoIterator<Item = S>) -> Outcome {
        let (mut command, description) = self.bare_command(args);
        command.env("DRYDOCK_API_URL", &self.url).env("DRYDOCK_TOKEN", token);
        if !self.plain_http {
            command.env("DRYDOCK_CACERT", self.cert());
        }
        run(command, description)
    }

    fn drydock<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Outcome {
        self.run_as(&self.token, args)
    }

    /// Runs with `--json`, requires success and returns the JSON printed.
    fn json<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Value {
        let all: Vec<OsString> =
            std::iter::once(OsString::from("--json")).chain(args.into_iter().map(|a| a.as_ref().into())).collect();
        self.drydock(all).assert_ok().json()
    }

    /// Writes `image` into the disk directory and registers it as droplet `name`.
    fn register(&self, name: &str, image: &Image) -> (i64, PathBuf) {
        let path = self.disk(&format!("{name}.img"));
        image.write(&path);
        let droplet = self.json([os("droplet"), os("register"), os(name), os("--disk"), path.as_os_str()]);
        (droplet["id"].as_i64().unwrap_or_else(|| panic!("register prints the droplet: {droplet}")), path)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) on our own child, which is not reaped before `wait` below.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + START_TIMEOUT;
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).expect("a free port").port()
}

fn run(mut command: Command, description: String) -> Outcome {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run `{description}`: {e}"));
    Outcome {
        status: output.status,
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        command: description,
    }
}

fn id(value: &Value) -> i64 {
    value["id"].as_i64().unwrap_or_else(|| panic!("no integer id in {value}"))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// ---- droplets, snapshots, restores, actions ----

#[test]
fn snapshot_then_restore_into_a_new_droplet_is_bit_exact() {
    let daemon = Daemon::start();
    let image = Image::mixed(31, IMAGE_BYTES);
    let (droplet, disk) = daemon.register("web-1", &image);

    let table = daemon.drydock(["droplet", "list"]).assert_ok().stdout_text();
    let header = table.lines().next().unwrap_or_default();
    assert!(header.starts_with("ID") && header.contains("Name") && header.contains("Status"), "{table}");
    assert!(table.lines().any(|l| l.starts_with(&droplet.to_string()) && l.contains("web-1")), "{table}");
    let listed = daemon.json(["droplet", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["name"], "web-1");
    assert_eq!(
        daemon.json(["droplet", "get", &droplet.to_string()])["drydock"]["disk"]["path"],
        disk.to_str().unwrap()
    );

    let snapshot = daemon.json(["snapshot", "create", &droplet.to_string(), "--name", "before-upgrade", "--wait"]);
    assert_eq!(snapshot["name"], "before-upgrade", "{snapshot}");
    assert_eq!(snapshot["resource_id"], droplet.to_string(), "{snapshot}");
    let snapshot_id = snapshot["id"].as_str().expect("snapshot ids are strings").to_string();

    let table = daemon.drydock(["snapshot", "list"]).assert_ok().stdout_text();
    assert!(table.lines().any(|l| l.starts_with(&snapshot_id) && l.contains("before-upgrade")), "{table}");
    let of_droplet = daemon.json(["snapshot", "list", "--droplet", &droplet.to_string()]);
    assert_eq!(of_droplet[0]["id"].to_string(), snapshot_id, "{of_droplet}");
    assert_eq!(daemon.json(["snapshot", "list", "--resource-type", "volume"]), Value::Array(vec![]));

    // The original changes; the new droplet gets the snapshot's bytes.
    Image::mixed(32, IMAGE_BYTES).write(&disk);
    let copy = daemon.disk("web-2.img");
    let restored = daemon.json([
        os("restore"),
        os("--image"),
        os(&snapshot_id),
        os("--new-droplet"),
        os("web-2"),
        os("--disk"),
        copy.as_os_str(),
        os("--wait"),
    ]);
    assert_eq!(restored["name"], "web-2", "{restored}");
    assert_eq!(restored["locked"], false, "{restored}");
    assert_same_bytes(&read(&copy), &image.bytes, "the new droplet's disk");

    // In place: the changed disk goes back to the snapshot.
    let action = daemon.json(["restore", &droplet.to_string(), "--image", &snapshot_id, "--wait"]);
    assert_eq!(action["status"], "completed", "{action}");
    assert_eq!(action["type"], "restore", "{action}");
    assert_same_bytes(&read(&disk), &image.bytes, "the droplet restored in place");

    let again = daemon.json(["action", "get", &id(&action).to_string()]);
    assert_eq!(again["id"], action["id"]);
    assert_eq!(again["drydock"]["progress"]["percent"], 100, "{again}");
    let table = daemon.drydock(["action", "wait", &id(&action).to_string()]).assert_ok().stdout_text();
    assert!(table.lines().nth(1).is_some_and(|l| l.contains("completed") && l.contains("restore")), "{table}");

    let restored_id = id(&restored).to_string();
    daemon.drydock(["droplet", "delete", &restored_id]).assert_ok();
    daemon.drydock(["droplet", "get", &restored_id]).assert_clean_failure(&["not found"]);
    daemon.drydock(["snapshot", "delete", &snapshot_id]).assert_ok();
    assert_eq!(daemon.json(["snapshot", "list"]), Value::Array(vec![]));
}

#[test]
fn snapshot_without_wait_prints_the_action_and_action_wait_finishes_it() {
    let daemon = Daemon::start();
    let (droplet, _) = daemon.register("db-1", &Image::mixed(33, IMAGE_BYTES));
    let started = daemon.json(["snapshot", "create", &droplet.to_string()]);
    assert_eq!(started["type"], "snapshot", "{started}");
    let done = daemon.json(["action", "wait", &id(&started).to_string()]);
    assert_eq!(done["status"], "completed", "{done}");
    let snapshots = daemon.json(["snapshot", "list", "--droplet", &droplet.to_string()]);
    assert_eq!(snapshots.as_array().map(Vec::len), Some(1), "{snapshots}");
    assert!(snapshots[0]["name"].as_str().is_some_and(|n| n.starts_with("db-1-")), "{snapshots}");

    // A machine switched by commands, off now: `status` exits 1.
    let disk = daemon.disk("pw-1.img");
    Image::mixed(37, 1 << 20).write(&disk);
    let power = ["--power-on", "true", "--power-off", "true", "--power-status", "exit 1"];
    let mut args = vec![os("droplet"), os("register"), os("pw-1"), os("--disk"), disk.as_os_str()];
    args.extend(power.iter().map(|a| os(a)));
    let table = daemon.drydock(args).assert_ok().stdout_text();
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(row.contains("pw-1") && row.contains(" off ") && row.contains(" command "), "{table}");
}

#[test]
fn an_errored_action_fails_the_wait_with_its_reason() {
    let daemon = Daemon::start();
    let (droplet, disk) = daemon.register("gone-1", &Image::mixed(34, IMAGE_BYTES));
    std::fs::remove_file(&disk).unwrap();
    let outcome = daemon.drydock(["snapshot", "create", &droplet.to_string(), "--wait"]);
    outcome.assert_clean_failure(&["errored", "snapshot"]);
}

#[test]
fn list_follows_every_page() {
    // More droplets than one page holds (200); plain HTTP, as behind a proxy.
    const DROPLETS: usize = 203;
    let daemon = Daemon::start_with(true);
    let disk = daemon.disk("shared.img");
    File::create(&disk).and_then(|f| f.set_len(1 << 20)).unwrap();
    for n in 0..DROPLETS {
        let name = format!("node-{n}");
        daemon
            .drydock([
                os("droplet"),
                os("register"),
                os(&name),
                os("--disk"),
                disk.as_os_str(),
                os("--tag"),
                os("fleet"),
            ])
            .assert_ok();
    }
    let listed = daemon.json(["droplet", "list", "--tag", "fleet"]);
    let names: std::collections::BTreeSet<&str> =
        listed.as_array().unwrap().iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(names.len(), DROPLETS, "every droplet, each once");
    let table = daemon.drydock(["droplet", "list"]).assert_ok().stdout_text();
    assert_eq!(table.lines().count(), DROPLETS + 1, "a header and one line per droplet");
    assert_eq!(daemon.json(["droplet", "list", "--tag", "nothing"]), Value::Array(vec![]));
}

// ---- volumes ----

#[test]
fn volumes_register_snapshot_list_and_delete() {
    let daemon = Daemon::start();
    let disk = daemon.disk("data.img");
    Image::mixed(35, IMAGE_BYTES).write(&disk);
    let volume = daemon.json([os("volume"), os("register"), os("data-1"), os("--disk"), disk.as_os_str()]);
    let volume_id = volume["id"].as_str().expect("volume ids are strings").to_string();
    let table = daemon.drydock(["volume", "list"]).assert_ok().stdout_text();
    assert!(table.lines().any(|l| l.starts_with(&volume_id) && l.contains("data-1") && l.contains("MiB")), "{table}");
    assert_eq!(daemon.json(["volume", "get", &volume_id])["name"], "data-1");

    let snapshot = daemon.json(["volume", "snapshot", &volume_id, "--name", "nightly"]);
    assert_eq!(snapshot["resource_type"], "volume", "{snapshot}");
    let listed = daemon.json(["snapshot", "list", "--resource-type", "volume"]);
    assert_eq!(listed[0]["id"], snapshot["id"], "{listed}");

    daemon.drydock(["volume", "delete", &volume_id]).assert_ok();
    daemon.drydock(["volume", "get", &volume_id]).assert_clean_failure(&["not found"]);
}

// ---- connection settings and errors ----

#[test]
fn errors_are_one_line_naming_the_cause() {
    let daemon = Daemon::start();
    let wrong_token = daemon.run_as("dop_v1_not-a-token", ["droplet", "list"]);
    wrong_token.assert_clean_failure(&["authenticate", "401"]);
    assert_eq!(wrong_token.status.code(), Some(1), "errors exit with 1");
    daemon.drydock(["droplet", "get", "987654"]).assert_clean_failure(&["droplet 987654", "not found"]);
    daemon.drydock(["action", "get", "987654"]).assert_clean_failure(&["not found"]);
    daemon.drydock(["snapshot", "create", "987654"]).assert_clean_failure(&["not found"]);

    let (no_token, description) = daemon.bare_command(["droplet", "list"]);
    run(no_token, description).assert_clean_failure(&["no API token", "drydock token create"]);

    let half_power = daemon.disk("half.img");
    File::create(&half_power).unwrap();
    daemon
        .drydock([
            os("droplet"),
            os("register"),
            os("half"),
            os("--disk"),
            half_power.as_os_str(),
            os("--power-on"),
            os("true"),
        ])
        .assert_clean_failure(&["--power-off", "--power-status"]);

    let narrow = daemon.create_token(&["droplet:read"]);
    let (droplet, _) = daemon.register("ro-1", &Image::mixed(36, 1 << 20));
    daemon.run_as(&narrow, ["snapshot", "create", &droplet.to_string()]).assert_clean_failure(&["403", "scope"]);

    let (mut no_cacert, description) = daemon.bare_command(["droplet", "list"]);
    no_cacert.env("DRYDOCK_API_URL", &daemon.url).env("DRYDOCK_TOKEN", &daemon.token);
    run(no_cacert, description).assert_clean_failure(&["cannot reach", "--cacert"]);

    let closed = format!("https://127.0.0.1:{}", free_port());
    let (mut nobody, description) = daemon.bare_command(["droplet", "list", "--api-url", &closed]);
    nobody.env("DRYDOCK_TOKEN", &daemon.token);
    run(nobody, description).assert_clean_failure(&["cannot reach", &closed]);
}

#[test]
fn config_file_gives_defaults_and_flags_override_it() {
    let daemon = Daemon::start();
    let config_home = daemon.dir.path().join("config");
    std::fs::create_dir_all(config_home.join("drydock")).unwrap();
    let file = format!(
        "# written by the test\napi_url = {:?}\ntoken = {:?}\ncacert = {:?}\n",
        daemon.url,
        daemon.token,
        daemon.cert()
    );
    std::fs::write(config_home.join("drydock").join("client.toml"), file).unwrap();
    let with_file = |args: &[&str]| {
        let (mut command, description) = daemon.bare_command(args);
        command.env("XDG_CONFIG_HOME", &config_home);
        (command, description)
    };
    let (command, description) = with_file(&["--json", "droplet", "list"]);
    assert_eq!(run(command, description).assert_ok().json(), Value::Array(vec![]));
    let (command, description) = with_file(&["droplet", "list", "--token", "dop_v1_wrong"]);
    run(command, description).assert_clean_failure(&["authenticate"]);
    // doctl's variable is read too, and wins over the file.
    let (mut command, description) = with_file(&["droplet", "list"]);
    command.env("DIGITALOCEAN_ACCESS_TOKEN", "dop_v1_wrong");
    run(command, description).assert_clean_failure(&["authenticate"]);
}

#[test]
fn a_local_daemon_certificate_in_drydock_data_is_trusted_without_cacert() {
    let daemon = Daemon::start();
    // The daemon's default data directory, seen from the working directory.
    std::os::unix::fs::symlink(&daemon.data_dir, daemon.dir.path().join("drydock-data")).unwrap();
    let (mut command, description) = daemon.bare_command(["--json", "droplet", "list"]);
    command.env("DRYDOCK_API_URL", &daemon.url).env("DRYDOCK_TOKEN", &daemon.token);
    assert_eq!(run(command, description).assert_ok().json(), Value::Array(vec![]));
}
