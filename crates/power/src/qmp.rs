//! A minimal QMP client (QEMU Machine Protocol, JSON lines over a unix socket): read the
//! greeting, negotiate with `qmp_capabilities`, then run commands one at a time, skipping the
//! asynchronous events QEMU interleaves with replies. Every read, write and the connect itself
//! is bounded by the operation's deadline.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;

use serde_json::{Map, Value, json};

use crate::error::excerpt;
use crate::{Deadline, PowerError, Result};

/// Longest QMP message accepted; real replies to the commands we send are under 1 KiB.
const QMP_MESSAGE_BYTES_MAX: u64 = 1024 * 1024;

/// One negotiated QMP connection. QEMU serves one client at a time, so a session lives for one
/// operation only.
pub(crate) struct Qmp<'a> {
    droplet: &'a str,
    socket: &'a Path,
    deadline: Deadline,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl<'a> Qmp<'a> {
    pub(crate) fn connect(droplet: &'a str, socket: &'a Path, deadline: Deadline) -> Result<Self> {
        let stream = connect_before(socket, deadline).map_err(|source| {
            if source.kind() == io::ErrorKind::TimedOut {
                timed_out(droplet, socket, "connect", deadline)
            } else {
                PowerError::QmpConnect { droplet: droplet.to_owned(), socket: socket.to_owned(), source }
            }
        })?;
        let writer = stream.try_clone().map_err(|source| PowerError::QmpConnect {
            droplet: droplet.to_owned(),
            socket: socket.to_owned(),
            source,
        })?;
        let mut qmp = Qmp { droplet, socket, deadline, reader: BufReader::new(stream), writer, next_id: 1 };
        // A connection QEMU has not accepted yet (another client is connected) gets no greeting.
        let greeting = qmp.read_message("greeting")?;
        if !greeting.contains_key("QMP") {
            let shown = excerpt_json(&Value::Object(greeting));
            return Err(qmp.protocol(format!("expected a qmp greeting, got {shown}")));
        }
        qmp.execute("qmp_capabilities")?;
        Ok(qmp)
    }

    pub(crate) fn droplet(&self) -> &'a str {
        self.droplet
    }

    pub(crate) fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// Runs `command` (no arguments) and returns its `return` value.
    pub(crate) fn execute(&mut self, command: &str) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({"execute": command, "id": id}).to_string();
        request.push('\n');
        self.send(command, request.as_bytes())?;
        loop {
            let mut message = self.read_message(command)?;
            if message.contains_key("event") {
                continue;
            }
            if message.get("id") != Some(&json!(id)) {
                let shown = excerpt_json(&Value::Object(message));
                return Err(self.protocol(format!("reply to `{command}` does not carry its id {id}: {shown}")));
            }
            if let Some(value) = message.remove("return") {
                return Ok(value);
            }
            if let Some(error) = message.remove("error") {
                let field = |name: &str| error.get(name).and_then(Value::as_str).unwrap_or("unknown").to_owned();
                return Err(PowerError::QmpCommand {
                    droplet: self.droplet.to_owned(),
                    socket: self.socket.to_owned(),
                    command: command.to_owned(),
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            let shown = excerpt_json(&Value::Object(message));
            return Err(self.protocol(format!("unexpected reply to `{command}`: {shown}")));
        }
    }

    pub(crate) fn protocol(&self, message: String) -> PowerError {
        PowerError::QmpProtocol { droplet: self.droplet.to_owned(), socket: self.socket.to_owned(), message }
    }

    fn send(&mut self, command: &str, bytes: &[u8]) -> Result<()> {
        let remaining = self.deadline.remaining();
        if remaining.is_zero() {
            return Err(timed_out(self.droplet, self.socket, command, self.deadline));
        }
        let sent = self.writer.set_write_timeout(Some(remaining)).and_then(|()| self.writer.write_all(bytes));
        sent.map_err(|error| self.io_error(command, "sending", error))
    }

    /// The next message, which must be a JSON object on one line.
    fn read_message(&mut self, waiting_for: &str) -> Result<Map<String, Value>> {
        let remaining = self.deadline.remaining();
        if remaining.is_zero() {
            return Err(timed_out(self.droplet, self.socket, waiting_for, self.deadline));
        }
        let mut line = String::new();
        let read = self
            .reader
            .get_ref()
            .set_read_timeout(Some(remaining))
            .and_then(|()| (&mut self.reader).take(QMP_MESSAGE_BYTES_MAX).read_line(&mut line));
        match read {
            Ok(0) => Err(self.protocol(format!("qemu closed the connection while we waited for `{waiting_for}`"))),
            Ok(length_bytes) if !line.ends_with('\n') => {
                Err(self.protocol(if length_bytes as u64 >= QMP_MESSAGE_BYTES_MAX {
                    format!("message longer than {QMP_MESSAGE_BYTES_MAX} bytes while we waited for `{waiting_for}`")
                } else {
                    format!("qemu closed the connection mid-message while we waited for `{waiting_for}`")
                }))
            }
            Ok(_) => match serde_json::from_str::<Value>(&line) {
                Ok(Value::Object(message)) => Ok(message),
                Ok(other) => Err(self.protocol(format!(
                    "expected a json object while waiting for `{waiting_for}`, got {}",
                    excerpt_json(&other)
                ))),
                Err(error) => Err(self.protocol(format!("malformed json while waiting for `{waiting_for}`: {error}"))),
            },
            Err(error) => Err(self.io_error(waiting_for, "reading", error)),
        }
    }

    fn io_error(&self, waiting_for: &str, doing: &str, error: io::Error) -> PowerError {
        // Unix sockets report an expired SO_RCVTIMEO/SO_SNDTIMEO as EAGAIN (WouldBlock).
        if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            return timed_out(self.droplet, self.socket, waiting_for, self.deadline);
        }
        self.protocol(format!("{doing} failed while waiting for `{waiting_for}`: {error}"))
    }
}

/// A QMP message as quoted in error messages.
pub(crate) fn excerpt_json(value: &Value) -> String {
    excerpt(&value.to_string())
}

fn timed_out(droplet: &str, socket: &Path, waiting_for: &str, deadline: Deadline) -> PowerError {
    PowerError::QmpTimedOut {
        droplet: droplet.to_owned(),
        socket: socket.to_owned(),
        waiting_for: waiting_for.to_owned(),
        timeout: deadline.timeout(),
    }
}

/// `UnixStream::connect` with a deadline. A unix `connect` blocks while the listener's backlog
/// is full, which happens when QEMU is busy with another client and more are queued; std offers
/// no connect timeout for unix sockets, so the connect runs on a helper thread. If the deadline
/// passes first the thread is abandoned: it ends when the connect does and drops the stream.
fn connect_before(socket: &Path, deadline: Deadline) -> io::Result<UnixStream> {
    let (sender, receiver) = mpsc::channel();
    let path = socket.to_owned();
    thread::Builder::new().name("drydock-qmp-connect".to_owned()).spawn(move || {
        // The receiver is gone when the caller gave up; nothing to do then.
        let _ = sender.send(UnixStream::connect(path));
    })?;
    match receiver.recv_timeout(deadline.remaining()) {
        Ok(connected) => connected,
        Err(RecvTimeoutError::Timeout) => Err(io::ErrorKind::TimedOut.into()),
        Err(RecvTimeoutError::Disconnected) => Err(io::Error::other("the connecting thread ended without an answer")),
    }
}
