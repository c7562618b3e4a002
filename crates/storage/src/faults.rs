//! Fault injection for tests: [`Faulty`] wraps a storage and makes calls fail, or return damaged
//! data, as a shared [`FaultPlan`] says. It lives in the library (not under `cfg(test)`) so that
//! the engine's tests can check how backup, restore and verify cope with a misbehaving storage.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, ErrorKind, ObjectInfo, ObjectKey, Result, Storage};

/// A storage operation, as a fault rule selects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Put,
    Get,
    GetRange,
    List,
    Delete,
    Stat,
}

impl Op {
    /// The operation's name as errors spell it.
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::GetRange => "get_range",
            Op::List => "list",
            Op::Delete => "delete",
            Op::Stat => "stat",
        }
    }
}

/// What goes wrong when a rule fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fails with [`ErrorKind::Transient`]; the inner storage is not called.
    Transient,
    /// Fails with [`ErrorKind::Permanent`]; the inner storage is not called.
    Permanent,
    /// Fails with [`ErrorKind::NoSpace`]; the inner storage is not called.
    NoSpace,
    /// `put` only: stores the first half of the data, then fails with [`ErrorKind::Permanent`].
    /// Simulates a non-atomic store (LocalStorage never does this), to test that the engine
    /// detects truncated objects.
    TornWrite,
    /// `get` and `get_range` only: inverts the byte in the middle of the returned data, to test
    /// that the engine detects corruption. Empty data is returned unchanged.
    CorruptRead,
}

/// How many matching calls a rule fires on, once past its `after` count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    Times(u64),
    Always,
}

#[derive(Debug)]
struct Rule {
    op: Op,
    /// Only keys (for `list`, prefixes) starting with this match.
    key_prefix: Option<String>,
    fault: Fault,
    repeat: Repeat,
    /// Matching calls to let through before firing.
    after: u64,
    /// Matching calls seen so far; one atomic counter, so concurrent callers fire exactly as
    /// many times as the rule says.
    matched: AtomicU64,
}

impl Rule {
    /// Counts this call if it matches and says whether the rule fires on it.
    fn fires(&self, op: Op, key: &str) -> bool {
        let key_matches = self.key_prefix.as_deref().is_none_or(|prefix| key.starts_with(prefix));
        if self.op != op || !key_matches {
            return false;
        }
        let seen = self.matched.fetch_add(1, Ordering::Relaxed);
        match self.repeat {
            Repeat::Always => seen >= self.after,
            Repeat::Times(times) => seen >= self.after && seen - self.after < times,
        }
    }
}

/// Which calls fail and how: an ordered list of rules, checked in order for every call; the
/// first rule that fires wins, and the rules after it do not count the call.
///
/// Build it, then share it in an `Arc` with [`Faulty`] so the test can read the counters:
///
/// ```
/// use drydock_storage::{Fault, FaultPlan, Op};
/// let plan = FaultPlan::new()
///     .fail(Op::Put, Fault::Transient).times(2)
///     .fail(Op::Get, Fault::CorruptRead).on_prefix("packs/").after(1).times(1);
/// ```
#[derive(Debug, Default)]
pub struct FaultPlan {
    rules: Vec<Rule>,
    calls: AtomicU64,
    injected: AtomicU64,
}

impl FaultPlan {
    /// A plan that injects nothing (a transparent [`Faulty`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule: `op` fails with `fault` on every call, until narrowed by the methods below,
    /// which all refine the rule added last. Panics if the fault cannot apply to `op`, since that
    /// is a mistake in the test.
    pub fn fail(mut self, op: Op, fault: Fault) -> Self {
        let applies = match fault {
            Fault::TornWrite => op == Op::Put,
            Fault::CorruptRead => matches!(op, Op::Get | Op::GetRange),
            Fault::Transient | Fault::Permanent | Fault::NoSpace => true,
        };
        assert!(applies, "fault {fault:?} cannot apply to {}", op.name());
        self.rules.push(Rule {
            op,
            key_prefix: None,
            fault,
            repeat: Repeat::Always,
            after: 0,
            matched: AtomicU64::new(0),
        });
        self
    }

    /// Fires on `times` matching calls, then lets calls through.
    pub fn times(mut self, times: u64) -> Self {
        self.last_rule().repeat = Repeat::Times(times);
        self
    }

    /// Fires on every matching call (the default).
    pub fn always(mut self) -> Self {
        self.last_rule().repeat = Repeat::Always;
        self
    }

    /// Lets the first `calls` matching calls through before firing.
    pub fn after(mut self, calls: u64) -> Self {
        self.last_rule().after = calls;
        self
    }

    /// Matches only keys starting with `prefix` (for `list`: list prefixes starting with it).
    pub fn on_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.last_rule().key_prefix = Some(prefix.into());
        self
    }

    /// Faults injected so far, all rules together.
    pub fn injected_count(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// Calls that reached the [`Faulty`] wrappers sharing this plan, injected or not; lets a test
    /// count, say, how often a retrying caller tried.
    pub fn call_count(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn last_rule(&mut self) -> &mut Rule {
        self.rules.last_mut().expect("call FaultPlan::fail before refining a rule")
    }

    fn decide(&self, op: Op, key: &str) -> Option<Fault> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let fault = self.rules.iter().find(|rule| rule.fires(op, key))?.fault;
        self.injected.fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }
}

/// Wraps a storage and injects the faults its [`FaultPlan`] calls for.
#[derive(Debug)]
pub struct Faulty<S> {
    inner: S,
    plan: Arc<FaultPlan>,
}

impl<S: Storage> Faulty<S> {
    pub fn new(inner: S, plan: Arc<FaultPlan>) -> Self {
        Faulty { inner, plan }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn plan(&self) -> &Arc<FaultPlan> {
        &self.plan
    }

    /// Asks the plan about this call: an error fault becomes the error, a data fault
    /// (`TornWrite`, `CorruptRead`) is returned for the caller to apply.
    fn before(&self, op: Op, key: &str) -> Result<Option<Fault>> {
        let (kind, what) = match self.plan.decide(op, key) {
            None => return Ok(None),
            Some(fault @ (Fault::TornWrite | Fault::CorruptRead)) => return Ok(Some(fault)),
            Some(Fault::Transient) => (ErrorKind::Transient, "transient error"),
            Some(Fault::Permanent) => (ErrorKind::Permanent, "permanent error"),
            Some(Fault::NoSpace) => (ErrorKind::NoSpace, "no space left"),
        };
        Err(self.injected(op, key, kind, what))
    }

    fn injected(&self, op: Op, key: &str, kind: ErrorKind, what: impl std::fmt::Display) -> Error {
        Error::new(kind, op.name(), key, self.inner.describe(), format!("injected fault: {what}"))
    }

    fn read(&self, op: Op, key: &ObjectKey, read: impl FnOnce(&S) -> Result<Vec<u8>>) -> Result<Vec<u8>> {
        let corrupt = self.before(op, key.as_str())? == Some(Fault::CorruptRead);
        let mut data = read(&self.inner)?;
        if corrupt && !data.is_empty() {
            let middle = data.len() / 2;
            data[middle] ^= 0xff;
        }
        Ok(data)
    }
}

impl<S: Storage> Storage for Faulty<S> {
    fn put(&self, key: &ObjectKey, data: &[u8]) -> Result<()> {
        if self.before(Op::Put, key.as_str())? != Some(Fault::TornWrite) {
            return self.inner.put(key, data);
        }
        let half = data.len() / 2;
        self.inner.put(key, &data[..half])?;
        let what = format!("torn write, stored {half} of {} bytes", data.len());
        Err(self.injected(Op::Put, key.as_str(), ErrorKind::Permanent, what))
    }

    fn get(&self, key: &ObjectKey) -> Result<Vec<u8>> {
        self.read(Op::Get, key, |inner| inner.get(key))
    }

    fn get_range(&self, key: &ObjectKey, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.read(Op::GetRange, key, |inner| inner.get_range(key, offset, length))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.before(Op::List, prefix)?;
        self.inner.list(prefix)
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.before(Op::Delete, key.as_str())?;
        self.inner.delete(key)
    }

    fn stat(&self, key: &ObjectKey) -> Result<ObjectInfo> {
        self.before(Op::Stat, key.as_str())?;
        self.inner.stat(key)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests;
