//! The command driver against real shell commands. Each test's "machine" is a state file in a
//! temporary directory: `on`/`off` rewrite it and append their name to a log, `status` reads it.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use drydock_power::{CommandConfig, CommandDriver, PowerConfig, PowerControl, PowerError, PowerState};
use tempfile::TempDir;

const DROPLET: &str = "web-1";

struct Machine {
    dir: TempDir,
}

impl Machine {
    fn new(state: PowerState) -> Self {
        let machine = Machine { dir: tempfile::tempdir().unwrap() };
        fs::write(machine.path("state"), format!("{state}\n")).unwrap();
        fs::write(machine.path("log"), "").unwrap();
        machine
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `name`'s path, quoted for the shell.
    fn sh(&self, name: &str) -> String {
        format!("'{}'", self.path(name).display())
    }

    /// Commands that log `name` and set the state file to `state`.
    fn set(&self, name: &str, state: PowerState) -> String {
        format!("echo {name} >> {}; echo {state} > {}", self.sh("log"), self.sh("state"))
    }

    fn config(&self) -> CommandConfig {
        let mut config = CommandConfig::new(
            self.set("on", PowerState::On),
            self.set("off", PowerState::Off),
            format!("test \"$(cat {})\" = on", self.sh("state")),
        );
        config.timeout_secs = 5;
        config
    }

    fn driver(&self, config: CommandConfig) -> CommandDriver {
        CommandDriver::new(DROPLET, config).unwrap()
    }

    fn log(&self) -> Vec<String> {
        fs::read_to_string(self.path("log")).unwrap().lines().map(str::to_owned).collect()
    }
}

#[test]
fn command_driver_switches_off_and_on() {
    let machine = Machine::new(PowerState::On);
    let driver = machine.driver(machine.config());
    assert_eq!(driver.status().unwrap(), PowerState::On);

    driver.power_off().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::Off);
    driver.power_off().unwrap();
    assert_eq!(machine.log(), ["off"], "switching off a machine that is off runs nothing");

    driver.power_on().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::On);
    driver.power_on().unwrap();
    assert_eq!(machine.log(), ["off", "on"]);
}

#[test]
fn command_driver_built_from_config_works_as_a_trait_object() {
    let machine = Machine::new(PowerState::Off);
    let config: PowerConfig = serde_json::from_value(serde_json::json!({
        "driver": "command",
        "on": machine.set("on", PowerState::On),
        "off": machine.set("off", PowerState::Off),
        "status": format!("test \"$(cat {})\" = on", machine.sh("state")),
        "timeout_secs": 1,
    }))
    .unwrap();
    let driver: Box<dyn PowerControl> = config.driver(DROPLET).unwrap();
    assert_eq!(driver.droplet(), DROPLET);
    driver.wait_for(PowerState::Off, Duration::from_secs(1)).unwrap();
    driver.power_on().unwrap();
    driver.wait_for(PowerState::On, Duration::ZERO).unwrap();

    let error = driver.wait_for(PowerState::Off, Duration::from_secs(1)).unwrap_err();
    assert!(matches!(error, PowerError::WaitTimedOut { .. }), "{error:?}");
    assert_eq!(error.to_string(), "droplet web-1 did not reach power state off within 1s");
}

#[test]
fn shutdown_falls_back_to_off_and_reboot_to_shutdown_then_on() {
    let machine = Machine::new(PowerState::On);
    let driver = machine.driver(machine.config());

    driver.shutdown().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::Off);
    driver.reboot().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::On);
    driver.reboot().unwrap();
    driver.power_cycle().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::On);
    assert_eq!(machine.log(), ["off", "on", "off", "on", "off", "on"]);
}

#[test]
fn shutdown_and_reboot_commands_are_used_when_configured() {
    let machine = Machine::new(PowerState::On);
    let mut config = machine.config();
    config.shutdown = Some(machine.set("shutdown", PowerState::Off));
    config.reboot = Some(machine.set("reboot", PowerState::On));
    let driver = machine.driver(config);

    driver.shutdown().unwrap();
    driver.reboot().unwrap();
    driver.power_cycle().unwrap();
    assert_eq!(machine.log(), ["shutdown", "reboot", "off", "on"]);
}

#[test]
fn commands_know_which_droplet_they_serve() {
    let machine = Machine::new(PowerState::Off);
    let mut config = machine.config();
    config.on = format!("echo \"$DRYDOCK_DROPLET\" > {}; {}", machine.sh("name"), config.on);
    machine.driver(config).power_on().unwrap();
    assert_eq!(fs::read_to_string(machine.path("name")).unwrap(), "web-1\n");
}

#[test]
fn power_on_waits_until_the_status_reports_on() {
    let machine = Machine::new(PowerState::Off);
    let mut config = machine.config();
    // The command returns at once; the machine comes up half a second later.
    config.on = format!("(sleep 0.5; echo on > {}) &", machine.sh("state"));
    let driver = machine.driver(config);

    let started = Instant::now();
    driver.power_on().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400), "returned after {:?}", started.elapsed());
    assert_eq!(driver.status().unwrap(), PowerState::On);
}

#[test]
fn a_command_without_effect_ends_in_a_wait_timeout() {
    let machine = Machine::new(PowerState::On);
    let mut config = machine.config();
    config.off = "true".to_owned();
    config.timeout_secs = 1;
    let error = machine.driver(config).power_off().unwrap_err();
    assert!(matches!(error, PowerError::WaitTimedOut { state: PowerState::Off, .. }), "{error:?}");
    assert_eq!(error.to_string(), "droplet web-1 did not reach power state off within 1s");
}

#[test]
fn a_failing_command_reports_its_stderr() {
    let machine = Machine::new(PowerState::Off);
    let mut config = machine.config();
    config.on = "echo 'virsh: domain web-1 not found' >&2\necho 'hint: check the name' >&2\nexit 3".to_owned();
    let error = machine.driver(config).power_on().unwrap_err();
    assert!(matches!(error, PowerError::CommandFailed { action: "on", .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "power command `echo 'virsh: domain web-1 not found' >&2; echo 'hint: check the name' >&2; exit 3` (on) \
         for droplet web-1 exited with status 3: virsh: domain web-1 not found; hint: check the name"
    );
}

#[test]
fn a_missing_program_is_reported_with_the_shell_complaint() {
    let machine = Machine::new(PowerState::Off);
    let mut config = machine.config();
    config.on = "/nonexistent/virsh start web-1".to_owned();
    let message = machine.driver(config).power_on().unwrap_err().to_string();
    assert!(
        message.contains("`/nonexistent/virsh start web-1` (on) for droplet web-1 exited with status 127"),
        "{message}"
    );
    assert!(message.contains("not found"), "{message}");
}

#[test]
fn a_status_command_must_exit_0_or_1() {
    let machine = Machine::new(PowerState::On);
    let mut config = machine.config();
    config.status = "echo 'cannot reach hypervisor' >&2; exit 2".to_owned();
    let error = machine.driver(config).status().unwrap_err();
    assert!(matches!(error, PowerError::CommandFailed { action: "status", .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("exited with status 2 (a status command exits 0 for on, 1 for off)"), "{message}");
    assert!(message.ends_with(": cannot reach hypervisor"), "{message}");
}

#[test]
fn a_hanging_command_is_killed_with_everything_it_started() {
    let machine = Machine::new(PowerState::On);
    let mut config = machine.config();
    config.off = format!(
        "echo 'waiting for the hypervisor' >&2; sleep 30 & echo $! > {}; sleep 30",
        machine.sh("background.pid")
    );
    config.timeout_secs = 1;
    let driver = machine.driver(config);

    let started = Instant::now();
    let error = driver.power_off().unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, PowerError::CommandTimedOut { action: "off", .. }), "{error:?}");
    assert!(elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(3), "took {elapsed:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("power command `echo 'waiting for the hypervisor' >&2; sleep 30 & echo $! > "),
        "{message}"
    );
    assert!(
        message.ends_with(
            "(off) for droplet web-1 was still running when the 1s power timeout expired and was killed: \
             waiting for the hypervisor"
        ),
        "{message}"
    );

    let pid: u32 = fs::read_to_string(machine.path("background.pid")).unwrap().trim().parse().unwrap();
    wait_until_gone(pid);
}

/// Waits until process `pid` has died (it may linger as a zombie until something reaps it).
fn wait_until_gone(pid: u32) {
    let stat = PathBuf::from(format!("/proc/{pid}/stat"));
    let deadline = Instant::now() + Duration::from_secs(3);
    while !is_gone(&stat) {
        assert!(Instant::now() < deadline, "background process {pid} survived its command's timeout");
        thread::sleep(Duration::from_millis(20));
    }
}

fn is_gone(stat: &Path) -> bool {
    match fs::read_to_string(stat) {
        // The state letter follows the parenthesized command name.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}
