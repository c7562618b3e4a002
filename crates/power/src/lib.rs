//! How drydock switches a protected machine (a droplet) off and on.
//!
//! A [`PowerConfig`] (JSON in the API, TOML in config files) names a driver; [`PowerConfig::driver`]
//! turns it into a [`PowerControl`]. Three drivers exist: [`NoPower`] (no control, always on),
//! [`CommandDriver`] (shell commands) and [`QemuDriver`] (QMP over a unix socket).
//!
//! The API is synchronous: callers run it on a blocking thread. The contract every driver keeps:
//!
//! - **Bounded**: every operation returns within the driver's timeout (`timeout_secs`), plus at
//!   most one status check for [`PowerControl::wait_for`]. [`PowerControl::reboot`] and
//!   [`PowerControl::power_cycle`] may be two operations (off, then on), each bounded.
//! - **Returns in the new state**: `power_off` and `shutdown` return `Ok` only once
//!   [`PowerControl::status`] reports [`PowerState::Off`]; `power_on`, `reboot` and
//!   `power_cycle` only once it reports [`PowerState::On`]. A driver whose command succeeded but
//!   whose machine did not follow reports [`PowerError::WaitTimedOut`].
//! - **Idempotent switching**: `power_off`/`shutdown` of a machine that is off, and `power_on`
//!   of a machine that is on, succeed without doing anything.
//! - **Off means quiet disks**: [`PowerState::Off`] means the guest cannot write to its disks
//!   (powered off, or its vCPUs halted), so a snapshot taken while off is consistent.
//! - **No driver, no switching**: [`NoPower`] reports `On` and fails every switching operation
//!   with [`PowerError::NoDriver`].
//! - Callers serialize operations on one droplet; drivers hold no connection between operations
//!   (QEMU accepts one QMP client at a time, so holding one would lock operators out).

mod command;
mod config;
mod error;
mod none;
mod qemu;
mod qmp;

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use command::CommandDriver;
pub use config::{
    COMMAND_BYTES_MAX, CommandConfig, PowerConfig, QemuConfig, SOCKET_PATH_BYTES_MAX, TIMEOUT_SECS_DEFAULT,
    TIMEOUT_SECS_MAX,
};
pub use error::{PowerError, Result};
pub use none::NoPower;
pub use qemu::{QemuDriver, power_state_of_run_state};

/// How often [`PowerControl::wait_for`] checks the status.
pub const STATUS_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Whether a droplet is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    On,
    Off,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::On => "on",
            PowerState::Off => "off",
        })
    }
}

/// Switches one droplet off and on. See the crate documentation for the contract.
pub trait PowerControl: Send + Sync {
    /// The droplet's name, as used in error messages.
    fn droplet(&self) -> &str;

    fn status(&self) -> Result<PowerState>;

    /// Hard power off: the machine stops at once, like pulling the plug (QEMU: vCPUs halted).
    fn power_off(&self) -> Result<()>;

    fn power_on(&self) -> Result<()>;

    /// Graceful power off: asks the guest OS to shut down and waits for it.
    fn shutdown(&self) -> Result<()>;

    fn reboot(&self) -> Result<()>;

    /// Hard off then on; ends on even if the machine was off.
    fn power_cycle(&self) -> Result<()>;

    /// Polls [`PowerControl::status`] every [`STATUS_POLL_INTERVAL`] until it reports `state`,
    /// or fails with [`PowerError::WaitTimedOut`] after `timeout`. Each check is an ordinary
    /// `status` call with the driver's own timeout, so this returns within `timeout` plus at
    /// most one status check; a `timeout` of zero checks once.
    fn wait_for(&self, state: PowerState, timeout: Duration) -> Result<()> {
        poll_status(self.droplet(), state, Deadline::after(timeout), |_| self.status())
    }
}

/// When an operation must be over.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    pub(crate) fn after(timeout: Duration) -> Self {
        Deadline { at: Instant::now() + timeout, timeout }
    }

    pub(crate) fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The timeout this deadline was made from, for messages.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Calls `status` until it reports `want` or `deadline` is too close for another check.
pub(crate) fn poll_status(
    droplet: &str,
    want: PowerState,
    deadline: Deadline,
    mut status: impl FnMut(Deadline) -> Result<PowerState>,
) -> Result<()> {
    loop {
        if status(deadline)? == want {
            return Ok(());
        }
        // Starting a check that the deadline would cut short only turns a clear "did not reach
        // the state" into a confusing "status command was killed".
        if deadline.remaining() <= STATUS_POLL_INTERVAL {
            return Err(PowerError::WaitTimedOut {
                droplet: droplet.to_owned(),
                state: want,
                timeout: deadline.timeout(),
            });
        }
        thread::sleep(STATUS_POLL_INTERVAL);
    }
}
