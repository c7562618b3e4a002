//! Every storage implementation in this crate honours the same contract.

use std::cell::Cell;
use std::sync::Arc;

use drydock_storage::{FaultPlan, Faulty, LocalStorage, MemoryStorage, Retry, RetryPolicy, conformance};

#[test]
fn memory_storage() {
    conformance::run_all(&|| Box::new(MemoryStorage::new()));
}

/// A fresh root per check, all inside one temporary directory that outlives them.
fn local_storage_maker(parent: &tempfile::TempDir) -> impl Fn() -> LocalStorage + '_ {
    let next = Cell::new(0);
    move || {
        next.set(next.get() + 1);
        LocalStorage::create(parent.path().join(format!("root-{}", next.get()))).unwrap()
    }
}

#[test]
fn local_storage() {
    let parent = tempfile::tempdir().unwrap();
    let make = local_storage_maker(&parent);
    conformance::run_all(&|| Box::new(make()));
}

#[test]
fn retry_over_local_storage() {
    let parent = tempfile::tempdir().unwrap();
    let make = local_storage_maker(&parent);
    conformance::run_all(&|| Box::new(Retry::new(make(), RetryPolicy::default())));
}

#[test]
fn faulty_memory_storage_with_an_empty_plan() {
    conformance::run_all(&|| Box::new(Faulty::new(MemoryStorage::new(), Arc::new(FaultPlan::new()))));
}
