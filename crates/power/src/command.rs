//! The command driver: shell commands switch the machine and report its state.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{excerpt, one_line};
use crate::{CommandConfig, Deadline, PowerControl, PowerError, PowerState, Result, poll_status};

/// The shell every command runs in.
const SHELL: &str = "/bin/sh";
/// How much of a command's stderr (its end) is kept for error messages.
const STDERR_TAIL_BYTES_MAX: u64 = 512;
/// Longest pause between two checks whether a command has finished.
const CHILD_POLL_INTERVAL_MAX: Duration = Duration::from_millis(20);
/// Attempts at finding an unused name for a command's stderr file.
const SCRATCH_ATTEMPTS_MAX: u32 = 16;

/// Runs the shell commands of a [`CommandConfig`]. Each operation (status check, command, wait
/// for the new state) shares one deadline of `timeout_secs`. A command still running at the
/// deadline is killed together with its process group, that is everything it started that did
/// not detach itself (`setsid`, daemonizing). A command that finishes in time may leave
/// background processes behind (an `on` command may start the machine that way); they are not
/// touched.
#[derive(Clone, Debug)]
pub struct CommandDriver {
    droplet: String,
    config: CommandConfig,
}

/// How a command ended, when it ended in time.
struct Finished {
    status: ExitStatus,
    stderr: String,
}

impl CommandDriver {
    /// Validates `config`; runs nothing.
    pub fn new(droplet: impl Into<String>, config: CommandConfig) -> Result<Self> {
        config.validate()?;
        Ok(CommandDriver { droplet: droplet.into(), config })
    }

    pub fn config(&self) -> &CommandConfig {
        &self.config
    }

    fn deadline(&self) -> Deadline {
        Deadline::after(self.config.timeout())
    }

    fn status_before(&self, deadline: Deadline) -> Result<PowerState> {
        let finished = self.run("status", &self.config.status, deadline)?;
        match finished.status.code() {
            Some(0) => Ok(PowerState::On),
            Some(1) => Ok(PowerState::Off),
            _ => Err(self.failed(
                "status",
                &self.config.status,
                format!("{} (a status command exits 0 for on, 1 for off)", outcome(finished.status)),
                finished.stderr,
            )),
        }
    }

    /// Brings the machine to `want` with `command`, unless it is there already.
    fn switch(&self, action: &'static str, command: &str, want: PowerState) -> Result<()> {
        let deadline = self.deadline();
        if self.status_before(deadline)? == want {
            return Ok(());
        }
        self.run_successfully(action, command, deadline)?;
        poll_status(&self.droplet, want, deadline, |deadline| self.status_before(deadline))
    }

    fn run_successfully(&self, action: &'static str, command: &str, deadline: Deadline) -> Result<()> {
        let finished = self.run(action, command, deadline)?;
        if finished.status.success() {
            return Ok(());
        }
        Err(self.failed(action, command, outcome(finished.status), finished.stderr))
    }

    fn run(&self, action: &'static str, command: &str, deadline: Deadline) -> Result<Finished> {
        let start_error = |source| PowerError::CommandStart {
            droplet: self.droplet.clone(),
            action,
            command: excerpt(command),
            source,
        };
        // stderr goes to an unlinked file rather than a pipe: a background process that inherits
        // a pipe would keep it open and leave us waiting for an end of file that never comes.
        let mut stderr = scratch_file().map_err(start_error)?;
        let mut child = Command::new(SHELL)
            .arg("-c")
            .arg(command)
            .env("DRYDOCK_DROPLET", &self.droplet)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr.try_clone().map_err(start_error)?)
            .process_group(0)
            .spawn()
            .map_err(start_error)?;

        let mut pause = Duration::from_millis(1);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(Finished { status, stderr: stderr_tail(&mut stderr) }),
                Ok(None) => {}
                Err(source) => {
                    kill_process_group(&mut child);
                    return Err(self.failed(
                        action,
                        command,
                        format!("could not be waited for: {source}"),
                        String::new(),
                    ));
                }
            }
            let remaining = deadline.remaining();
            if remaining.is_zero() {
                kill_process_group(&mut child);
                return Err(PowerError::CommandTimedOut {
                    droplet: self.droplet.clone(),
                    action,
                    command: excerpt(command),
                    timeout: deadline.timeout(),
                    stderr: stderr_tail(&mut stderr),
                });
            }
            thread::sleep(pause.min(remaining));
            pause = (pause * 2).min(CHILD_POLL_INTERVAL_MAX);
        }
    }

    fn failed(&self, action: &'static str, command: &str, outcome: String, stderr: String) -> PowerError {
        PowerError::CommandFailed { droplet: self.droplet.clone(), action, command: excerpt(command), outcome, stderr }
    }
}

impl PowerControl for CommandDriver {
    fn droplet(&self) -> &str {
        &self.droplet
    }

    fn status(&self) -> Result<PowerState> {
        self.status_before(self.deadline())
    }

    fn power_off(&self) -> Result<()> {
        self.switch("off", &self.config.off, PowerState::Off)
    }

    fn power_on(&self) -> Result<()> {
        self.switch("on", &self.config.on, PowerState::On)
    }

    /// Runs `shutdown`, or `off` when there is none.
    fn shutdown(&self) -> Result<()> {
        let command = self.config.shutdown.as_deref().unwrap_or(&self.config.off);
        self.switch("shutdown", command, PowerState::Off)
    }

    /// Runs `reboot`; without one, [`PowerControl::shutdown`] then [`PowerControl::power_on`].
    fn reboot(&self) -> Result<()> {
        let Some(command) = &self.config.reboot else {
            self.shutdown()?;
            return self.power_on();
        };
        let deadline = self.deadline();
        self.run_successfully("reboot", command, deadline)?;
        poll_status(&self.droplet, PowerState::On, deadline, |deadline| self.status_before(deadline))
    }

    fn power_cycle(&self) -> Result<()> {
        self.power_off()?;
        self.power_on()
    }
}

fn outcome(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended with {status}"),
    }
}

mod sys {
    unsafe extern "C" {
        /// kill(2). Takes and returns plain integers, so calling it cannot break memory safety;
        /// declared here rather than pulling in the libc crate for one function.
        pub(super) safe fn kill(pid: i32, signal: i32) -> i32;
    }

    /// SIGKILL has the number 9 on every Unix.
    pub(super) const SIGKILL: i32 = 9;
}

/// Kills the command's whole process group, then reaps the command.
fn kill_process_group(child: &mut Child) {
    // The command leads its own group (`process_group(0)`) and has not been reaped yet, so its
    // pid, which is also the group id, cannot have been reused by an unrelated process. The
    // `> 1` guard keeps a nonsensical id from turning into kill(-1), "every process".
    if let Ok(group) = i32::try_from(child.id())
        && group > 1
    {
        sys::kill(-group, sys::SIGKILL);
    }
    // Only matters if signalling the group failed; harmless otherwise.
    let _ = child.kill();
    let _ = child.wait();
}

/// A new, already unlinked file that only this process can read, for a command's stderr.
fn scratch_file() -> io::Result<File> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    for _ in 0..SCRATCH_ATTEMPTS_MAX {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.subsec_nanos());
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".drydock-power-{}-{sequence}-{nanos}", std::process::id()));
        // Append mode: the command's writes land at the end even while we seek to read the tail.
        match OpenOptions::new().read(true).append(true).create_new(true).mode(0o600).open(&path) {
            Ok(file) => {
                // The open descriptor keeps the file alive; failing to unlink only leaves a small
                // file in the temporary directory, not worth failing the power operation for.
                let _ = fs::remove_file(&path);
                return Ok(file);
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("no unused scratch file name in {}", dir.display())))
}

/// The last [`STDERR_TAIL_BYTES_MAX`] bytes of `file`, on one line. Best effort: an unreadable
/// stderr only makes the message less helpful.
fn stderr_tail(file: &mut File) -> String {
    let Ok(length_bytes) = file.seek(SeekFrom::End(0)) else { return String::new() };
    if file.seek(SeekFrom::Start(length_bytes.saturating_sub(STDERR_TAIL_BYTES_MAX))).is_err() {
        return String::new();
    }
    let mut tail = Vec::new();
    let _ = file.take(STDERR_TAIL_BYTES_MAX).read_to_end(&mut tail);
    one_line(&String::from_utf8_lossy(&tail))
}
