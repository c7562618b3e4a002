//! The `drydock` command. It parses arguments, calls the engine and prints; all the work is in
//! the library crates.

/// `println!` that fails instead of panicking when standard output is closed, as it is in
/// `drydock image list | head -1`. Defined before the modules so that they can use it.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*).map_err(crate::stdout_failed)?
    }};
}

mod args;
mod client;
mod client_args;
mod daemon_cmd;
mod image_cmd;
mod passphrase;
mod policy_args;
mod progress;
mod repo_cmd;
mod retention_cmd;
mod signals;
mod size;
mod view;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Parser;
use drydock_engine::{CancelToken, Repository};
use drydock_storage::{ErrorKind, LocalStorage, Retry, RetryPolicy, Storage};

use args::{Cli, Command};

/// Exit status when damage was found (`repo verify`, `image list`), distinct from 1, "could not
/// run".
pub const EXIT_DAMAGE_FOUND: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon handles its signals itself (graceful shutdown).
    if let Command::Serve(args) = &cli.command {
        return report(daemon_cmd::serve(args));
    }
    let cancel = signals::install();
    report(run(&cli, &cancel))
}

fn report(outcome: Result<ExitCode>) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(e) => {
            // One line: the error and its causes, joined.
            eprintln!("drydock: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli, cancel: &CancelToken) -> Result<ExitCode> {
    match &cli.command {
        Command::Repo(command) => repo_cmd::run(cli, command, cancel),
        Command::Image(command) => image_cmd::run(cli, command, cancel),
        Command::Serve(_) => unreachable!("serve runs before signal handlers are installed"),
        Command::Token(command) => daemon_cmd::token(cli, command),
        Command::Catalog(command) => daemon_cmd::catalog(cli, command),
        Command::Retention(command) => retention_cmd::run(cli, command),
        Command::Client(command) => client::run(cli, command, cancel),
    }
}

pub fn stdout_failed(e: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!("writing to standard output: {e}")
}

pub fn repo_path(cli: &Cli) -> Result<&Path> {
    match &cli.repo {
        Some(path) => Ok(path),
        None => bail!("no repository given: pass --repo PATH or set DRYDOCK_REPO"),
    }
}

/// Transient errors on a local disk are rare, but NFS and friends have them.
fn with_retry(storage: LocalStorage) -> Arc<dyn Storage> {
    Arc::new(Retry::new(storage, RetryPolicy::default()))
}

pub fn open_repo(cli: &Cli) -> Result<Repository> {
    let path = repo_path(cli)?;
    let storage = match LocalStorage::open(path) {
        Ok(storage) => with_retry(storage),
        Err(e) if e.kind == ErrorKind::NotFound => {
            bail!("{} is not a drydock repository (no such directory)", path.display())
        }
        Err(e) => return Err(e.into()),
    };
    let config = drydock_engine::probe(storage.as_ref())?;
    let passphrase = match config.encryption {
        drydock_engine::config::Encryption::Aes256Gcm => Some(passphrase::current(cli.password_file.as_deref())?),
        drydock_engine::config::Encryption::None => None,
    };
    Repository::open(storage, passphrase.as_deref()).with_context(|| format!("opening repository {}", path.display()))
}

pub fn create_storage(path: &Path) -> Result<Arc<dyn Storage>> {
    Ok(with_retry(LocalStorage::create(path)?))
}
