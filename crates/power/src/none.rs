use std::time::Duration;

use crate::{PowerControl, PowerError, PowerState, Result};

/// No power control. The droplet is treated as running, so snapshots of it are live and
/// crash-consistent; every switching operation fails with [`PowerError::NoDriver`].
#[derive(Clone, Debug)]
pub struct NoPower {
    droplet: String,
}

impl NoPower {
    pub fn new(droplet: impl Into<String>) -> Self {
        NoPower { droplet: droplet.into() }
    }

    fn no_driver(&self) -> PowerError {
        PowerError::NoDriver { droplet: self.droplet.clone() }
    }
}

impl PowerControl for NoPower {
    fn droplet(&self) -> &str {
        &self.droplet
    }

    fn status(&self) -> Result<PowerState> {
        Ok(PowerState::On)
    }

    fn power_off(&self) -> Result<()> {
        Err(self.no_driver())
    }

    fn power_on(&self) -> Result<()> {
        Err(self.no_driver())
    }

    fn shutdown(&self) -> Result<()> {
        Err(self.no_driver())
    }

    fn reboot(&self) -> Result<()> {
        Err(self.no_driver())
    }

    fn power_cycle(&self) -> Result<()> {
        Err(self.no_driver())
    }

    /// `On` holds at once; waiting for `Off` would only burn the timeout, so it fails at once.
    fn wait_for(&self, state: PowerState, _timeout: Duration) -> Result<()> {
        match state {
            PowerState::On => Ok(()),
            PowerState::Off => Err(self.no_driver()),
        }
    }
}
