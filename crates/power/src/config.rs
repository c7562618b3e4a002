//! How a droplet's power is controlled, as written in the API (JSON) and in config files (TOML).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{CommandDriver, NoPower, PowerControl, PowerError, QemuDriver, Result};

/// Default for `timeout_secs`: long enough for a guest OS to shut down cleanly.
pub const TIMEOUT_SECS_DEFAULT: u64 = 60;
/// Upper bound for `timeout_secs`: a power operation that needs longer is broken.
pub const TIMEOUT_SECS_MAX: u64 = 3600;
/// Longest accepted shell command.
pub const COMMAND_BYTES_MAX: usize = 16 * 1024;
/// Longest unix socket path Linux accepts (`sun_path` is 108 bytes including the NUL).
pub const SOCKET_PATH_BYTES_MAX: usize = 107;

/// The power driver of one droplet, tagged by `driver`:
///
/// ```json
/// {"driver": "none"}
/// {"driver": "command", "on": "virsh start web", "off": "virsh destroy web",
///  "shutdown": "virsh shutdown web", "reboot": "virsh reboot web",
///  "status": "test \"$(virsh domstate web)\" = running", "timeout_secs": 60}
/// {"driver": "qemu", "socket": "/run/qemu/web.qmp", "timeout_secs": 60}
/// ```
///
/// `shutdown`, `reboot` and `timeout_secs` are optional; unknown fields are rejected so that a
/// typo does not silently drop a command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "driver", rename_all = "snake_case")]
pub enum PowerConfig {
    /// No power control: the droplet is always treated as running (snapshots are live and
    /// crash-consistent) and every switching operation fails with [`PowerError::NoDriver`].
    #[default]
    None,
    Command(CommandConfig),
    Qemu(QemuConfig),
}

/// Shell commands, each run as `/bin/sh -c <command>` with `DRYDOCK_DROPLET` set to the
/// droplet's name, stdin and stdout discarded, stderr kept for error messages.
///
/// `status` must exit 0 when the machine is on and 1 when it is off; any other exit code is
/// an error (so a broken status command never reads as "off"). Exit codes rather than output
/// words keep the rule unambiguous; wrap tools that print their state, e.g.
/// `s=$(virsh domstate web) || exit 2; [ "$s" = running ]`.
///
/// Commands appear in error messages, which reach logs and API clients: keep secrets in a
/// script or an environment variable (`ipmitool -E`), not in the command text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// Switches the machine on.
    pub on: String,
    /// Switches the machine off at once (hard power off).
    pub off: String,
    /// Asks the guest to shut down cleanly; `off` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<String>,
    /// Reboots the machine; when absent a reboot is `shutdown` then `on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot: Option<String>,
    /// Exit 0 = on, 1 = off, anything else = error.
    pub status: String,
    /// Bound on one operation: its commands plus the wait for the new state.
    #[serde(default = "timeout_secs_default")]
    pub timeout_secs: u64,
}

/// A QEMU process controlled over its QMP unix socket (`-qmp unix:<socket>,server=on,wait=off`).
/// Start QEMU with `-no-shutdown` so that a guest shutdown leaves it stopped rather than exited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuConfig {
    /// Absolute path of the QMP socket.
    pub socket: PathBuf,
    /// Bound on one operation, including the wait for a graceful shutdown.
    #[serde(default = "timeout_secs_default")]
    pub timeout_secs: u64,
}

fn timeout_secs_default() -> u64 {
    TIMEOUT_SECS_DEFAULT
}

impl PowerConfig {
    /// Checks everything that can be checked without running anything.
    pub fn validate(&self) -> Result<()> {
        match self {
            PowerConfig::None => Ok(()),
            PowerConfig::Command(config) => config.validate(),
            PowerConfig::Qemu(config) => config.validate(),
        }
    }

    /// The driver for the droplet named `droplet` (the name only appears in messages and in
    /// `DRYDOCK_DROPLET`). Fails if the config is invalid; connects to nothing.
    pub fn driver(&self, droplet: &str) -> Result<Box<dyn PowerControl>> {
        Ok(match self {
            PowerConfig::None => Box::new(NoPower::new(droplet)),
            PowerConfig::Command(config) => Box::new(CommandDriver::new(droplet, config.clone())?),
            PowerConfig::Qemu(config) => Box::new(QemuDriver::new(droplet, config.clone())?),
        })
    }
}

impl CommandConfig {
    /// The commands `on`, `off` and `status`, with no `shutdown` or `reboot` command.
    pub fn new(on: impl Into<String>, off: impl Into<String>, status: impl Into<String>) -> Self {
        CommandConfig {
            on: on.into(),
            off: off.into(),
            shutdown: None,
            reboot: None,
            status: status.into(),
            timeout_secs: TIMEOUT_SECS_DEFAULT,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let commands = [
            ("on", Some(&self.on)),
            ("off", Some(&self.off)),
            ("shutdown", self.shutdown.as_ref()),
            ("reboot", self.reboot.as_ref()),
            ("status", Some(&self.status)),
        ];
        for (name, command) in commands {
            let Some(command) = command else { continue };
            if command.trim().is_empty() {
                return Err(invalid(format!("command driver: `{name}` command is empty")));
            }
            if command.len() > COMMAND_BYTES_MAX {
                return Err(invalid(format!(
                    "command driver: `{name}` command is {} bytes, more than {COMMAND_BYTES_MAX}",
                    command.len()
                )));
            }
            if command.contains('\0') {
                return Err(invalid(format!("command driver: `{name}` command contains a nul byte")));
            }
        }
        validate_timeout("command", self.timeout_secs)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

impl QemuConfig {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        QemuConfig { socket: socket.into(), timeout_secs: TIMEOUT_SECS_DEFAULT }
    }

    pub fn validate(&self) -> Result<()> {
        let shown = self.socket.display();
        if self.socket.as_os_str().is_empty() {
            return Err(invalid("qemu driver: `socket` is empty".to_owned()));
        }
        if !self.socket.is_absolute() {
            return Err(invalid(format!("qemu driver: socket {shown} is not an absolute path")));
        }
        let length_bytes = self.socket.as_os_str().len();
        if length_bytes > SOCKET_PATH_BYTES_MAX {
            return Err(invalid(format!(
                "qemu driver: socket {shown} is {length_bytes} bytes long, more than the {SOCKET_PATH_BYTES_MAX} a unix socket allows"
            )));
        }
        validate_timeout("qemu", self.timeout_secs)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

fn validate_timeout(driver: &str, timeout_secs: u64) -> Result<()> {
    if timeout_secs == 0 || timeout_secs > TIMEOUT_SECS_MAX {
        return Err(invalid(format!(
            "{driver} driver: `timeout_secs` is {timeout_secs}, it must be between 1 and {TIMEOUT_SECS_MAX}"
        )));
    }
    Ok(())
}

fn invalid(reason: String) -> PowerError {
    PowerError::InvalidConfig(reason)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: serde_json::Value) -> std::result::Result<PowerConfig, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn none_roundtrips_and_is_the_default() {
        let config = parse(json!({"driver": "none"})).unwrap();
        assert_eq!(config, PowerConfig::None);
        assert_eq!(config, PowerConfig::default());
        assert_eq!(serde_json::to_value(&config).unwrap(), json!({"driver": "none"}));
        config.validate().unwrap();
    }

    #[test]
    fn command_defaults_and_roundtrip() {
        let config = parse(json!({"driver": "command", "on": "start", "off": "stop", "status": "check"})).unwrap();
        let PowerConfig::Command(command) = &config else { panic!("not a command config: {config:?}") };
        assert_eq!(command, &CommandConfig::new("start", "stop", "check"));
        assert_eq!(command.timeout_secs, TIMEOUT_SECS_DEFAULT);
        assert_eq!(
            serde_json::to_value(&config).unwrap(),
            json!({"driver": "command", "on": "start", "off": "stop", "status": "check", "timeout_secs": 60})
        );

        let full = json!({"driver": "command", "on": "a", "off": "b", "shutdown": "c", "reboot": "d",
                          "status": "e", "timeout_secs": 5});
        let config = parse(full.clone()).unwrap();
        config.validate().unwrap();
        assert_eq!(serde_json::to_value(&config).unwrap(), full);
    }

    #[test]
    fn qemu_defaults_and_roundtrip() {
        let config = parse(json!({"driver": "qemu", "socket": "/run/web.qmp"})).unwrap();
        assert_eq!(config, PowerConfig::Qemu(QemuConfig::new("/run/web.qmp")));
        config.validate().unwrap();
        let back: PowerConfig = serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn unknown_drivers_and_fields_are_rejected() {
        let error = parse(json!({"driver": "ipmi"})).unwrap_err().to_string();
        assert!(error.contains("ipmi"), "{error}");
        let error = parse(json!({"driver": "qemu", "socket": "/s", "timeout": 5})).unwrap_err().to_string();
        assert!(error.contains("timeout"), "{error}");
        parse(json!({"on": "a", "off": "b", "status": "c"})).unwrap_err();
    }

    #[test]
    fn validate_names_the_problem() {
        let mut command = CommandConfig::new("start", " \n", "check");
        let error = command.validate().unwrap_err().to_string();
        assert_eq!(error, "invalid power config: command driver: `off` command is empty");

        command.off = "stop".to_owned();
        command.shutdown = Some(String::new());
        assert!(command.validate().unwrap_err().to_string().contains("`shutdown` command is empty"));

        command.shutdown = None;
        command.timeout_secs = 0;
        assert!(command.validate().unwrap_err().to_string().contains("`timeout_secs` is 0"));

        let error = QemuConfig::new("qmp.sock").validate().unwrap_err().to_string();
        assert_eq!(error, "invalid power config: qemu driver: socket qmp.sock is not an absolute path");
        let long = format!("/{}", "s".repeat(SOCKET_PATH_BYTES_MAX));
        assert!(QemuConfig::new(long).validate().unwrap_err().to_string().contains("unix socket allows"));

        let config = PowerConfig::Qemu(QemuConfig::new(""));
        assert!(matches!(config.driver("web-1"), Err(PowerError::InvalidConfig(_))));
    }
}
