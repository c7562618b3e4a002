//! The qemu driver: QMP commands over QEMU's unix socket.
//!
//! | operation     | QMP                                                                       |
//! |---------------|---------------------------------------------------------------------------|
//! | `status`      | `query-status`, mapped by [`power_state_of_run_state`]                    |
//! | `power_off`   | `stop`: vCPUs halted; QEMU drains and flushes in-flight disk I/O first    |
//! | `power_on`    | `cont`; `system_reset` first after a guest shutdown, panic or internal error; `system_wakeup` when suspended |
//! | `shutdown`    | `system_powerdown` (ACPI power button), then wait for the guest to stop   |
//! | `reboot`      | `system_reset`, then `cont` if the machine was not running                |
//! | `power_cycle` | same as `reboot`: a reset is QEMU's hard power cycle                      |

use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::qmp::{Qmp, excerpt_json};
use crate::{Deadline, PowerControl, PowerError, PowerState, QemuConfig, Result, poll_status};

/// QEMU run states that `cont` refuses until the machine has been reset. `guest-panicked` would
/// be accepted, but resuming a panicked guest is not what "power on" means.
const RUN_STATES_NEEDING_RESET: [&str; 3] = ["shutdown", "internal-error", "guest-panicked"];
/// How often to check whether QEMU has carried out a requested reset.
const RESET_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How a QEMU run state (`query-status`) reads as a power state: `running` is on, every other
/// state is off, because in all of them the vCPUs are halted and the guest cannot write to its
/// disks. They include `paused` (after `stop`, ours or an operator's), `prelaunch` (started with
/// `-S`, or just reset), `shutdown` (the guest powered off and QEMU runs with `-no-shutdown`),
/// `suspended` (guest sleep), `inmigrate`, `postmigrate`, `finish-migrate`, `guest-panicked`,
/// `internal-error`, `io-error`, `watchdog`, `debug`, `save-vm`, `restore-vm` and `colo`.
pub fn power_state_of_run_state(run_state: &str) -> PowerState {
    if run_state == "running" { PowerState::On } else { PowerState::Off }
}

/// Controls a QEMU process through its QMP socket, one connection per operation. QEMU must run
/// with `-no-shutdown`: otherwise a guest shutdown ends the process and the socket with it, and
/// the machine cannot be powered on again through QMP.
#[derive(Clone, Debug)]
pub struct QemuDriver {
    droplet: String,
    config: QemuConfig,
}

impl QemuDriver {
    /// Validates `config`; connects to nothing.
    pub fn new(droplet: impl Into<String>, config: QemuConfig) -> Result<Self> {
        config.validate()?;
        Ok(QemuDriver { droplet: droplet.into(), config })
    }

    pub fn config(&self) -> &QemuConfig {
        &self.config
    }

    /// A QMP session for one operation, bounded by the configured timeout.
    fn operation(&self) -> Result<Qmp<'_>> {
        Qmp::connect(&self.droplet, &self.config.socket, Deadline::after(self.config.timeout()))
    }
}

impl PowerControl for QemuDriver {
    fn droplet(&self) -> &str {
        &self.droplet
    }

    fn status(&self) -> Result<PowerState> {
        Ok(power_state_of_run_state(&run_state(&mut self.operation()?)?))
    }

    fn power_off(&self) -> Result<()> {
        let mut qmp = self.operation()?;
        qmp.execute("stop")?;
        wait_in(&mut qmp, PowerState::Off)
    }

    fn power_on(&self) -> Result<()> {
        let mut qmp = self.operation()?;
        let state = run_state(&mut qmp)?;
        start(&mut qmp, &state)
    }

    /// Presses the ACPI power button and waits for the guest to power off. A guest that ignores
    /// the button (no ACPI support, or still booting) ends in [`PowerError::WaitTimedOut`].
    fn shutdown(&self) -> Result<()> {
        let mut qmp = self.operation()?;
        if power_state_of_run_state(&run_state(&mut qmp)?) == PowerState::Off {
            return Ok(());
        }
        qmp.execute("system_powerdown")?;
        wait_in(&mut qmp, PowerState::Off)
    }

    fn reboot(&self) -> Result<()> {
        reset_and_start(&mut self.operation()?)
    }

    fn power_cycle(&self) -> Result<()> {
        reset_and_start(&mut self.operation()?)
    }
}

fn run_state(qmp: &mut Qmp<'_>) -> Result<String> {
    let reply = qmp.execute("query-status")?;
    match reply.get("status").and_then(Value::as_str) {
        Some(state) => Ok(state.to_owned()),
        None => Err(qmp.protocol(format!("`query-status` returned no status: {}", excerpt_json(&reply)))),
    }
}

/// Polls `query-status` on the open session until the machine is in `want`.
fn wait_in(qmp: &mut Qmp<'_>, want: PowerState) -> Result<()> {
    let (droplet, deadline) = (qmp.droplet(), qmp.deadline());
    poll_status(droplet, want, deadline, |_| Ok(power_state_of_run_state(&run_state(qmp)?)))
}

/// Gets a machine in `state` running.
fn start(qmp: &mut Qmp<'_>, state: &str) -> Result<()> {
    match state {
        "running" => {}
        "suspended" => {
            qmp.execute("system_wakeup")?;
        }
        state if RUN_STATES_NEEDING_RESET.contains(&state) => return reset_and_start(qmp),
        _ => {
            qmp.execute("cont")?;
        }
    }
    wait_in(qmp, PowerState::On)
}

fn reset_and_start(qmp: &mut Qmp<'_>) -> Result<()> {
    qmp.execute("system_reset")?;
    // QEMU's main loop carries the reset out, possibly after replying; until it has, a machine
    // that was shut down still reads `shutdown` and `cont` would be refused.
    let mut state = run_state(qmp)?;
    while RUN_STATES_NEEDING_RESET.contains(&state.as_str()) {
        if qmp.deadline().remaining() <= RESET_POLL_INTERVAL {
            return Err(PowerError::WaitTimedOut {
                droplet: qmp.droplet().to_owned(),
                state: PowerState::On,
                timeout: qmp.deadline().timeout(),
            });
        }
        thread::sleep(RESET_POLL_INTERVAL);
        state = run_state(qmp)?;
    }
    start(qmp, &state)
}
