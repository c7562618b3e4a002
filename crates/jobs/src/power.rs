//! Power drivers as the API sees them: configurations checked at registration, and whether a
//! droplet can be switched at all.

use drydock_catalog::DropletStatus;
use drydock_power::{PowerConfig, PowerControl, PowerState};
use serde_json::Value;

use crate::error::{Error, Result};

/// Checks a power driver configuration from a request (none when absent) and returns it in its
/// stored form.
pub fn parse_power(given: Option<&Value>) -> Result<Value> {
    let config = match given {
        None | Some(Value::Null) => PowerConfig::None,
        Some(value) => {
            serde_json::from_value::<PowerConfig>(value.clone()).map_err(|e| Error::Invalid(format!("power: {e}")))?
        }
    };
    config.validate().map_err(|e| Error::Invalid(format!("power: {e}")))?;
    Ok(serde_json::to_value(&config).expect("power configurations serialize"))
}

/// The driver of a droplet from its stored configuration.
pub fn driver(power: &Value, droplet: &str) -> Result<(PowerConfig, Box<dyn PowerControl>)> {
    let config: PowerConfig = serde_json::from_value(power.clone())
        .map_err(|e| Error::Invalid(format!("power driver of droplet {droplet}: {e}")))?;
    let driver = config.driver(droplet)?;
    Ok((config, driver))
}

/// Refuses power actions on a droplet whose driver cannot switch it.
pub fn require_switchable(power: &Value, droplet: &str) -> Result<()> {
    match driver(power, droplet)? {
        (PowerConfig::None, _) => Err(Error::Invalid(format!(
            "droplet {droplet} has no power driver: register it with power {{\"driver\": \"command\"|\"qemu\", ...}}"
        ))),
        _ => Ok(()),
    }
}

/// The status a droplet's driver reports now; `active` when it cannot tell.
pub fn current_status(power: &Value, droplet: &str) -> DropletStatus {
    match driver(power, droplet).and_then(|(_, d)| Ok(d.status()?)) {
        Ok(PowerState::Off) => DropletStatus::Off,
        _ => DropletStatus::Active,
    }
}
