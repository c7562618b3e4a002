//! [`Retry`]: a decorator that retries transient storage errors with backoff.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, SystemTime};

use crate::{ErrorKind, ObjectInfo, ObjectKey, Result, Storage};

/// How hard [`Retry`] tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included; 0 behaves as 1.
    pub attempts_max: u32,
    /// Upper bound of the first delay; the bound doubles with every retry.
    pub delay_initial: Duration,
    /// Cap on the doubling bound.
    pub delay_max: Duration,
}

impl Default for RetryPolicy {
    /// At most 0.1 + 0.2 + 0.4 + 0.8 s of sleep: enough to ride out throttling or a dropped
    /// connection, short enough that a dead storage is reported before a backup looks hung.
    fn default() -> Self {
        RetryPolicy { attempts_max: 5, delay_initial: Duration::from_millis(100), delay_max: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    /// Upper bound of the sleep before retry number `retry` (1 for the first retry).
    fn delay_bound(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.delay_initial.saturating_mul(factor).min(self.delay_max)
    }
}

/// Retries operations that fail with [`ErrorKind::Transient`]; other errors return at once, since
/// repeating them cannot help. Every storage operation is safe to repeat: `put` replaces the
/// whole object and `delete` of a missing key is `Ok`.
///
/// Backoff is exponential with full jitter (a uniformly random sleep up to the bound), so that
/// many workers failing together do not all retry together.
#[derive(Debug)]
pub struct Retry<S> {
    inner: S,
    policy: RetryPolicy,
}

impl<S: Storage> Retry<S> {
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Retry { inner, policy }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn run<T>(&self, mut operation: impl FnMut(&S) -> Result<T>) -> Result<T> {
        let attempts_max = self.policy.attempts_max.max(1);
        let mut jitter = Jitter::seeded();
        let mut attempt = 1;
        loop {
            match operation(&self.inner) {
                Err(e) if e.kind == ErrorKind::Transient && attempt < attempts_max => {
                    std::thread::sleep(jitter.up_to(self.policy.delay_bound(attempt)));
                    attempt += 1;
                }
                // Say that we tried, so nobody retries the retried error by hand.
                Err(mut e) if e.kind == ErrorKind::Transient && attempt > 1 => {
                    e.message = format!("{} (gave up after {attempt} attempts)", e.message);
                    return Err(e);
                }
                result => return result,
            }
        }
    }
}

impl<S: Storage> Storage for Retry<S> {
    fn put(&self, key: &ObjectKey, data: &[u8]) -> Result<()> {
        self.run(|inner| inner.put(key, data))
    }

    fn get(&self, key: &ObjectKey) -> Result<Vec<u8>> {
        self.run(|inner| inner.get(key))
    }

    fn get_range(&self, key: &ObjectKey, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.run(|inner| inner.get_range(key, offset, length))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.run(|inner| inner.list(prefix))
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.run(|inner| inner.delete(key))
    }

    fn stat(&self, key: &ObjectKey) -> Result<ObjectInfo> {
        self.run(|inner| inner.stat(key))
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// xorshift64: randomness good enough to spread retries out, without a dependency. Seeded from
/// the clock and the thread id so that threads retrying at the same instant still differ.
struct Jitter(u64);

impl Jitter {
    fn seeded() -> Self {
        let mut hasher = DefaultHasher::new();
        SystemTime::now().hash(&mut hasher);
        std::thread::current().id().hash(&mut hasher);
        // xorshift stays at zero forever if it starts there.
        Jitter(hasher.finish() | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A duration uniform enough in `[0, bound]`.
    fn up_to(&mut self, bound: Duration) -> Duration {
        let bound_nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.next() % bound_nanos.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Fault, FaultPlan, Faulty, MemoryStorage, Op};

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new(name).unwrap()
    }

    /// Short delays keep the tests fast; the logic is the same.
    fn quick(attempts_max: u32) -> RetryPolicy {
        RetryPolicy { attempts_max, delay_initial: Duration::from_millis(1), delay_max: Duration::from_millis(4) }
    }

    fn retrying(plan: FaultPlan, attempts_max: u32) -> (Retry<Faulty<MemoryStorage>>, Arc<FaultPlan>) {
        let plan = Arc::new(plan);
        let storage = Retry::new(Faulty::new(MemoryStorage::new(), plan.clone()), quick(attempts_max));
        (storage, plan)
    }

    #[test]
    fn retries_transient_errors_until_success() {
        let (storage, plan) = retrying(FaultPlan::new().fail(Op::Put, Fault::Transient).times(3), 5);
        storage.put(&key("a"), b"data").unwrap();
        assert_eq!(plan.injected_count(), 3);
        assert_eq!(plan.call_count(), 4);
        assert_eq!(storage.inner().inner().get(&key("a")).unwrap(), b"data");
    }

    #[test]
    fn does_not_retry_not_found() {
        let (storage, plan) = retrying(FaultPlan::new(), 5);
        let error = storage.get(&key("missing")).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
        assert_eq!(plan.call_count(), 1);
    }

    #[test]
    fn does_not_retry_permanent_errors() {
        let (storage, plan) = retrying(FaultPlan::new().fail(Op::Stat, Fault::Permanent), 5);
        let error = storage.stat(&key("a")).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Permanent);
        assert_eq!(plan.call_count(), 1);
    }

    #[test]
    fn gives_up_after_attempts_max_with_the_last_error() {
        let (storage, plan) = retrying(FaultPlan::new().fail(Op::List, Fault::Transient), 4);
        let error = storage.list("packs/").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Transient);
        assert!(error.to_string().contains("gave up after 4 attempts"), "{error}");
        assert_eq!(plan.call_count(), 4);
    }

    #[test]
    fn zero_attempts_still_tries_once() {
        let (storage, plan) = retrying(FaultPlan::new(), 0);
        storage.put(&key("a"), b"x").unwrap();
        assert_eq!(plan.call_count(), 1);
    }

    #[test]
    fn delay_bound_doubles_up_to_the_cap_without_overflow() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay_bound(1), Duration::from_millis(100));
        assert_eq!(policy.delay_bound(3), Duration::from_millis(400));
        assert_eq!(policy.delay_bound(10), Duration::from_secs(5));
        assert_eq!(policy.delay_bound(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_within_the_bound() {
        let mut jitter = Jitter::seeded();
        let bound = Duration::from_millis(3);
        assert!((0..1000).all(|_| jitter.up_to(bound) <= bound));
        assert_eq!(jitter.up_to(Duration::ZERO), Duration::ZERO);
    }
}
