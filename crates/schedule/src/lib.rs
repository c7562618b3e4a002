//! Backup policies and everything that follows from them, as pure functions of time: when a
//! backup is due ([`window`], [`tick`]), which tags it carries ([`tags`]), which backups a policy
//! keeps and why ([`retention`]), what a policy would leave after N days ([`simulate`]) and what
//! that costs ([`cost`]). No I/O and no clock: `now` is always a parameter, so the daemon, the
//! simulator and the tests run the same code.

pub mod cost;
pub mod cron;
pub mod policy;
pub mod retention;
pub mod simulate;
pub mod tags;
pub mod tick;
pub mod window;

pub use policy::{Plan, Policy, PolicyError, Retention};
pub use retention::{BackupRef, Decision, Reason};
pub use tags::Tag;
pub use window::Window;
