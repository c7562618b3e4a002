use std::time::Duration;

use drydock_power::{NoPower, PowerConfig, PowerControl, PowerError, PowerState};

type Operation = fn(&dyn PowerControl) -> drydock_power::Result<()>;

#[test]
fn no_driver_means_always_on_and_no_switching() {
    let driver = PowerConfig::None.driver("web-1").unwrap();
    assert_eq!(driver.status().unwrap(), PowerState::On);
    driver.wait_for(PowerState::On, Duration::from_secs(1)).unwrap();

    let operations: [(&str, Operation); 5] = [
        ("power_off", |driver| driver.power_off()),
        ("power_on", |driver| driver.power_on()),
        ("shutdown", |driver| driver.shutdown()),
        ("reboot", |driver| driver.reboot()),
        ("power_cycle", |driver| driver.power_cycle()),
    ];
    for (name, operation) in operations {
        let error = operation(driver.as_ref()).unwrap_err();
        assert!(matches!(error, PowerError::NoDriver { .. }), "{name}: {error:?}");
        assert_eq!(error.to_string(), "droplet web-1 has no power driver", "{name}");
    }
}

#[test]
fn waiting_for_off_without_a_driver_fails_at_once() {
    let error = NoPower::new("web-1").wait_for(PowerState::Off, Duration::from_secs(3600)).unwrap_err();
    assert!(matches!(error, PowerError::NoDriver { .. }), "{error:?}");
}
