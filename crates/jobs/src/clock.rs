//! The scheduler's clock. The daemon uses the wall clock; tests inject a manual clock they
//! advance themselves, or a fast one (`speed` scheduler seconds per real second from an epoch)
//! so that a day of hourly backups passes in minutes. A fast clock is a pure function of the wall
//! clock, so it keeps running while the daemon is stopped, as real time does. Everything that decides *when* (windows, retries,
//! retention ages, tags) reads this clock, never the wall clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

#[derive(Clone, Debug)]
pub struct Clock(Kind);

#[derive(Clone, Debug)]
enum Kind {
    System,
    Fast { epoch: Timestamp, speed: f64 },
    Manual(Arc<Mutex<Timestamp>>),
}

impl Clock {
    pub fn system() -> Clock {
        Clock(Kind::System)
    }

    /// Agrees with the wall clock at `epoch` and runs `speed` times faster from there.
    pub fn fast(speed: f64, epoch: Timestamp) -> Clock {
        Clock(Kind::Fast { epoch, speed: speed.max(1.0) })
    }

    /// Stands still at `start` until [`Clock::advance`] or [`Clock::set`] moves it.
    pub fn manual(start: Timestamp) -> Clock {
        Clock(Kind::Manual(Arc::new(Mutex::new(start))))
    }

    pub fn now(&self) -> Timestamp {
        match &self.0 {
            Kind::System => Timestamp::now(),
            Kind::Fast { epoch, speed } => {
                let elapsed = Timestamp::now().duration_since(*epoch).as_secs_f64() * speed;
                epoch.saturating_add(SignedDuration::from_secs_f64(elapsed)).unwrap_or(*epoch)
            }
            Kind::Manual(now) => *now.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Now in whole unix seconds, as the catalog stores scheduling times.
    pub fn unix(&self) -> i64 {
        self.now().as_second()
    }

    /// How long to really sleep for `span` of this clock's time (at least a millisecond).
    pub fn real(&self, span: SignedDuration) -> Duration {
        let seconds = span.as_secs_f64().max(0.0);
        let real = match &self.0 {
            Kind::Fast { speed, .. } => seconds / speed,
            _ => seconds,
        };
        Duration::from_secs_f64(real.clamp(0.001, 1e9))
    }

    /// Moves a manual clock forward; other clocks ignore it.
    pub fn advance(&self, span: SignedDuration) {
        if let Kind::Manual(now) = &self.0 {
            let mut now = now.lock().unwrap_or_else(|e| e.into_inner());
            *now = now.saturating_add(span).unwrap_or(*now);
        }
    }

    /// Sets a manual clock; other clocks ignore it.
    pub fn set(&self, to: Timestamp) {
        if let Kind::Manual(now) = &self.0 {
            *now.lock().unwrap_or_else(|e| e.into_inner()) = to;
        }
    }
}

/// A unix-second time as the catalog writes times: RFC 3339, UTC, to the second.
pub fn rfc3339(unix: i64) -> String {
    Timestamp::from_second(unix).unwrap_or(Timestamp::UNIX_EPOCH).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
