//! The qemu driver against a real QEMU (no disk, or a 47-byte boot sector that honours the ACPI
//! power button). These tests fail, rather than skip, when qemu-system-x86_64 is missing; on
//! Debian bookworm install it from backports, matching the backported qemu-utils:
//!
//! ```sh
//! echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list
//! apt-get update
//! apt-get install -y --no-install-recommends -t bookworm-backports qemu-system-x86
//! ```

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use drydock_power::{PowerControl, PowerError, PowerState, QemuConfig, QemuDriver};
use tempfile::TempDir;

const QEMU: &str = "qemu-system-x86_64";
const DROPLET: &str = "web-1";
/// How long QEMU may take to create its QMP socket.
const SOCKET_WAIT: Duration = Duration::from_secs(10);
/// How long SeaBIOS (emulated, no KVM) may take to boot the test guest.
const GUEST_BOOT_WAIT: Duration = Duration::from_secs(30);
/// What the test guest prints on the debug console once it listens to the power button.
const GUEST_READY: &str = "\ndrydock-guest-ready\n";

/// A QEMU process for one test, killed when dropped.
struct Qemu {
    child: Child,
    dir: TempDir,
    socket: PathBuf,
}

impl Qemu {
    /// A machine with no disk: SeaBIOS runs, finds nothing to boot and idles.
    fn start() -> Self {
        Self::launch(false)
    }

    /// A machine that boots [`acpi_guest_disk`].
    fn start_with_acpi_guest() -> Self {
        let qemu = Self::launch(true);
        qemu.wait_guest_ready(1);
        qemu
    }

    fn launch(with_guest: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("qmp.sock");
        let mut command = Command::new(QEMU);
        command
            .args(["-machine", "q35", "-accel", "tcg", "-nodefaults", "-display", "none", "-no-shutdown", "-m", "64"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("qemu.stderr")).unwrap());
        if with_guest {
            let disk = dir.path().join("guest.img");
            fs::write(&disk, acpi_guest_disk()).unwrap();
            let debug_log = dir.path().join("debug.log");
            command
                .arg("-drive")
                .arg(format!("file={},format=raw,if=ide", disk.display()))
                .arg("-chardev")
                .arg(format!("file,id=debug,path={}", debug_log.display()))
                .args(["-device", "isa-debugcon,iobase=0x402,chardev=debug"]);
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
                "{QEMU} is not installed ({error}); the qemu driver tests need a real qemu, see the install lines \
                 at the top of crates/power/tests/qemu.rs"
            ),
            Err(error) => panic!("cannot start {QEMU}: {error}"),
        };
        let mut qemu = Qemu { child, dir, socket };

        let deadline = Instant::now() + SOCKET_WAIT;
        while !qemu.socket.exists() {
            if let Some(status) = qemu.child.try_wait().unwrap() {
                panic!("{QEMU} exited with {status}: {}", qemu.stderr());
            }
            assert!(Instant::now() < deadline, "{QEMU} made no qmp socket in {SOCKET_WAIT:?}: {}", qemu.stderr());
            thread::sleep(Duration::from_millis(20));
        }
        qemu
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("qemu.stderr")).unwrap_or_default()
    }

    fn driver(&self, timeout_secs: u64) -> QemuDriver {
        QemuDriver::new(DROPLET, QemuConfig { socket: self.socket.clone(), timeout_secs }).unwrap()
    }

    /// Waits until the guest has booted `times` times.
    fn wait_guest_ready(&self, times: usize) {
        let deadline = Instant::now() + GUEST_BOOT_WAIT;
        loop {
            let log = fs::read_to_string(self.dir.path().join("debug.log")).unwrap_or_default();
            if log.matches(GUEST_READY).count() >= times {
                return;
            }
            assert!(Instant::now() < deadline, "guest did not boot {times} times in {GUEST_BOOT_WAIT:?}: {log}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 1 MiB disk whose boot sector is a tiny operating system for QEMU's q35 machine: it enables
/// the ACPI power button, prints [`GUEST_READY`] on the debug console (port 0x402) and, once the
/// button is pressed, powers the machine off through ACPI like a real OS would.
fn acpi_guest_disk() -> Vec<u8> {
    #[rustfmt::skip]
    let mut code = vec![
        0xFA,                               // cli
        0x66, 0xB8, 0x40, 0xF8, 0x00, 0x80, // mov eax, 0x8000F840: PCI 00:1f.0 (ICH9 LPC) register 0x40, PMBASE
        0xBA, 0xF8, 0x0C,                   // mov dx, 0xCF8
        0x66, 0xEF,                         // out dx, eax
        0xBA, 0xFC, 0x0C,                   // mov dx, 0xCFC
        0x66, 0xED,                         // in eax, dx
        0x25, 0x80, 0xFF,                   // and ax, 0xFF80: the ACPI I/O base SeaBIOS set up
        0x89, 0xC3,                         // mov bx, ax
        0x8D, 0x57, 0x02,                   // lea dx, [bx+2]: PM1_EN
        0xB8, 0x00, 0x01,                   // mov ax, 0x0100: power button enable
        0xEF,                               // out dx, ax
        0xBA, 0x02, 0x04,                   // mov dx, 0x402: debug console
    ];
    for byte in GUEST_READY.bytes() {
        code.extend([0xB0, byte, 0xEE]); // mov al, byte; out dx, al
    }
    #[rustfmt::skip]
    code.extend([
        0x89, 0xDA,                         // wait: mov dx, bx: PM1_STS
        0xED,                               // in ax, dx
        0xA9, 0x00, 0x01,                   // test ax, 0x0100: power button pressed?
        0x74, 0xF8,                         // jz wait
        0x83, 0xC2, 0x04,                   // add dx, 4: PM1_CNT
        0xB8, 0x00, 0x20,                   // mov ax, 0x2000: SLP_EN with SLP_TYP 0, soft off in QEMU
        0xEF,                               // out dx, ax
        0xF4,                               // halt: hlt
        0xEB, 0xFD,                         // jmp halt
    ]);
    let mut disk = vec![0; 1024 * 1024];
    disk[..code.len()].copy_from_slice(&code);
    disk[510..512].copy_from_slice(&[0x55, 0xAA]);
    disk
}

#[test]
fn qemu_status_power_off_and_power_on() {
    let qemu = Qemu::start();
    let driver = qemu.driver(10);
    assert_eq!(driver.status().unwrap(), PowerState::On);

    driver.power_off().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::Off);
    driver.power_off().unwrap();
    driver.wait_for(PowerState::Off, Duration::from_secs(1)).unwrap();
    let error = driver.wait_for(PowerState::On, Duration::from_secs(1)).unwrap_err();
    assert!(matches!(error, PowerError::WaitTimedOut { state: PowerState::On, .. }), "{error:?}");

    driver.power_on().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::On);
    driver.power_on().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::On);
}

#[test]
fn qemu_reboot_and_power_cycle_end_running() {
    let qemu = Qemu::start();
    let driver = qemu.driver(10);

    driver.reboot().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::On);
    driver.power_cycle().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::On);

    // A reset leaves a stopped machine stopped; both must still end running.
    driver.power_off().unwrap();
    driver.power_cycle().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::On);
    driver.power_off().unwrap();
    driver.reboot().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::On);
}

#[test]
fn qemu_graceful_shutdown_then_power_on_boots_again() {
    let qemu = Qemu::start_with_acpi_guest();
    let driver = qemu.driver(10);
    assert_eq!(driver.status().unwrap(), PowerState::On);

    driver.shutdown().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::Off);
    driver.shutdown().unwrap();

    // The guest powered itself off (run state "shutdown"): `cont` alone is refused, so this
    // also checks the reset that power_on does first.
    driver.power_on().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::On);
    qemu.wait_guest_ready(2);
    driver.shutdown().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::Off);
    driver.power_cycle().unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::On);
}

#[test]
fn qemu_shutdown_ignored_by_the_guest_times_out() {
    let qemu = Qemu::start();
    let driver = qemu.driver(1);
    let started = Instant::now();
    let error = driver.shutdown().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(matches!(error, PowerError::WaitTimedOut { state: PowerState::Off, .. }), "{error:?}");
    assert_eq!(error.to_string(), "droplet web-1 did not reach power state off within 1s");
    assert_eq!(driver.status().unwrap(), PowerState::On);
}

#[test]
fn qemu_unreachable_socket_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sock");
    let driver = QemuDriver::new(DROPLET, QemuConfig { socket: missing.clone(), timeout_secs: 1 }).unwrap();
    let error = driver.status().unwrap_err();
    assert!(matches!(error, PowerError::QmpConnect { .. }), "{error:?}");
    let message = error.to_string();
    let expected = format!("cannot connect to qmp socket {} of droplet web-1: ", missing.display());
    assert!(message.starts_with(&expected), "{message}");
    assert!(message.contains("No such file or directory"), "{message}");
    assert!(matches!(driver.power_off().unwrap_err(), PowerError::QmpConnect { .. }));

    // A socket file nobody listens on any more.
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let driver = QemuDriver::new(DROPLET, QemuConfig { socket: stale, timeout_secs: 1 }).unwrap();
    let message = driver.power_on().unwrap_err().to_string();
    assert!(message.contains("stale.sock of droplet web-1: Connection refused"), "{message}");
}

#[test]
fn qemu_socket_that_never_greets_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    // Connections queue in the backlog and are never accepted, like a QEMU busy with another client.
    let _listener = UnixListener::bind(&socket).unwrap();
    let driver = QemuDriver::new(DROPLET, QemuConfig { socket: socket.clone(), timeout_secs: 1 }).unwrap();

    let started = Instant::now();
    let error = driver.status().unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(matches!(error, PowerError::QmpTimedOut { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "qmp socket {} of droplet web-1 did not answer `greeting` within the 1s power timeout",
            socket.display()
        )
    );
}

#[test]
fn qemu_socket_speaking_something_else_is_a_protocol_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("not-qmp.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap();
    });
    let driver = QemuDriver::new(DROPLET, QemuConfig { socket, timeout_secs: 1 }).unwrap();
    let error = driver.status().unwrap_err();
    server.join().unwrap();
    assert!(matches!(error, PowerError::QmpProtocol { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("not-qmp.sock of droplet web-1: malformed json while waiting for `greeting`"),
        "{message}"
    );
}
