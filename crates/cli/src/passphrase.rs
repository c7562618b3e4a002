//! Where passphrases come from: a file, the environment, or a prompt on a terminal.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result, bail};

pub const PASSWORD_ENV: &str = "DRYDOCK_PASSWORD";
pub const NEW_PASSWORD_ENV: &str = "DRYDOCK_NEW_PASSWORD";

/// The passphrase that opens the repository.
pub fn current(file: Option<&Path>) -> Result<Vec<u8>> {
    obtain(file, PASSWORD_ENV, "repository passphrase: ", false)
}

/// A passphrase being set (init, key add, passwd): asked twice on a terminal.
pub fn new(file: Option<&Path>, env: &str) -> Result<Vec<u8>> {
    obtain(file, env, "new passphrase: ", true)
}

fn obtain(file: Option<&Path>, env: &str, prompt: &str, confirm: bool) -> Result<Vec<u8>> {
    let passphrase = if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading password file {}", path.display()))?;
        text.lines().next().unwrap_or_default().to_string()
    } else if let Ok(value) = std::env::var(env) {
        value
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt).context("reading the passphrase")?;
        if confirm && rpassword::prompt_password("repeat passphrase: ").context("reading the passphrase")? != first {
            bail!("the passphrases do not match");
        }
        first
    } else {
        bail!("no passphrase: set {env}, pass --password-file, or run on a terminal");
    };
    if passphrase.is_empty() {
        bail!("the passphrase is empty");
    }
    Ok(passphrase.into_bytes())
}
