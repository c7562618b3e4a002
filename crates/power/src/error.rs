use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::PowerState;

pub type Result<T, E = PowerError> = std::result::Result<T, E>;

/// A power error. Every message is one lowercase line that names the droplet and the command or
/// socket involved. Callers map [`PowerError::NoDriver`] and [`PowerError::InvalidConfig`] to
/// "unprocessable" (HTTP 422); everything else is a failure of the machine or its driver.
#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    #[error("invalid power config: {0}")]
    InvalidConfig(String),

    #[error("droplet {droplet} has no power driver")]
    NoDriver { droplet: String },

    /// The shell could not be started at all (fork failed, /bin/sh missing, ...).
    #[error("power command `{command}` ({action}) for droplet {droplet} could not start: {source}")]
    CommandStart {
        droplet: String,
        action: &'static str,
        /// The command, shortened to one line.
        command: String,
        #[source]
        source: io::Error,
    },

    /// The command was still running when the operation's timeout expired; its whole process
    /// group was killed.
    #[error(
        "power command `{command}` ({action}) for droplet {droplet} was still running when the {timeout:?} power timeout expired and was killed{}",
        stderr_suffix(.stderr)
    )]
    CommandTimedOut { droplet: String, action: &'static str, command: String, timeout: Duration, stderr: String },

    /// The command finished unsuccessfully (or, for a status command, with an exit code that is
    /// neither 0 nor 1). `outcome` reads like "exited with status 3".
    #[error("power command `{command}` ({action}) for droplet {droplet} {outcome}{}", stderr_suffix(.stderr))]
    CommandFailed {
        droplet: String,
        action: &'static str,
        command: String,
        outcome: String,
        /// The tail of the command's stderr, on one line.
        stderr: String,
    },

    #[error("cannot connect to qmp socket {} of droplet {droplet}: {source}", .socket.display())]
    QmpConnect {
        droplet: String,
        socket: PathBuf,
        #[source]
        source: io::Error,
    },

    /// QEMU did not answer in time. `waiting_for` is "greeting" or the QMP command.
    #[error(
        "qmp socket {} of droplet {droplet} did not answer `{waiting_for}` within the {timeout:?} power timeout",
        .socket.display()
    )]
    QmpTimedOut { droplet: String, socket: PathBuf, waiting_for: String, timeout: Duration },

    /// The connection broke or QEMU said something that is not QMP.
    #[error("qmp socket {} of droplet {droplet}: {message}", .socket.display())]
    QmpProtocol { droplet: String, socket: PathBuf, message: String },

    /// QEMU refused a command.
    #[error("qmp command `{command}` on {} for droplet {droplet} failed: {class}: {desc}", .socket.display())]
    QmpCommand { droplet: String, socket: PathBuf, command: String, class: String, desc: String },

    /// The driver's command or request succeeded but the machine never reached the state.
    #[error("droplet {droplet} did not reach power state {state} within {timeout:?}")]
    WaitTimedOut { droplet: String, state: PowerState, timeout: Duration },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!(": {stderr}") }
}

/// Longest command or QMP message quoted in an error message.
const EXCERPT_CHARS_MAX: usize = 160;

/// `text` on one line: lines trimmed, blank ones dropped, the rest joined with "; ".
pub(crate) fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join("; ")
}

/// `text` as quoted in error messages: one line of at most [`EXCERPT_CHARS_MAX`] characters.
pub(crate) fn excerpt(text: &str) -> String {
    let line = one_line(text);
    match line.char_indices().nth(EXCERPT_CHARS_MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_lines_and_drops_blanks() {
        assert_eq!(one_line("  error: a\n\n  hint: b  \n"), "error: a; hint: b");
        assert_eq!(one_line(""), "");
    }

    #[test]
    fn long_excerpts_are_cut_on_a_char_boundary() {
        let command = "é".repeat(EXCERPT_CHARS_MAX + 10);
        let shown = excerpt(&command);
        assert_eq!(shown.chars().count(), EXCERPT_CHARS_MAX + 1);
        assert!(shown.ends_with('…'));
    }
}
