//! Ctrl-C and SIGTERM ask the running command to stop at a safe point (so a restore removes
//! its partial file and a backup releases its lease); a second signal ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use drydock_engine::CancelToken;

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: libc::c_int) {
    // Only async-signal-safe work here: set a flag, and restore the default so a second
    // signal terminates.
    SIGNALLED.store(true, Ordering::SeqCst);
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}

/// Installs the handlers and returns the token they cancel.
pub fn install() -> CancelToken {
    let token = CancelToken::new();
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    let watched = token.clone();
    std::thread::spawn(move || {
        while !SIGNALLED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        watched.cancel();
    });
    token
}
