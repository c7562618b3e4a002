use std::sync::Arc;

use super::*;
use crate::MemoryStorage;

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(name).unwrap()
}

fn faulty(plan: FaultPlan) -> Faulty<MemoryStorage> {
    Faulty::new(MemoryStorage::new(), Arc::new(plan))
}

#[test]
fn error_faults_have_their_kind_and_say_injected() {
    let storage = faulty(
        FaultPlan::new()
            .fail(Op::Put, Fault::NoSpace)
            .fail(Op::Delete, Fault::Transient)
            .fail(Op::Stat, Fault::Permanent),
    );
    let cases = [
        (storage.put(&key("a"), b"x").unwrap_err(), ErrorKind::NoSpace),
        (storage.delete(&key("a")).unwrap_err(), ErrorKind::Transient),
        (storage.stat(&key("a")).unwrap_err(), ErrorKind::Permanent),
    ];
    for (error, kind) in cases {
        assert_eq!(error.kind, kind);
        let message = error.to_string();
        assert!(message.contains("injected fault") && message.contains(" a "), "{message}");
    }
    assert!(storage.inner().list("").unwrap().is_empty(), "a failed put must store nothing");
    assert_eq!(storage.plan().injected_count(), 3);
}

#[test]
fn torn_write_stores_half_and_fails() {
    let storage = faulty(FaultPlan::new().fail(Op::Put, Fault::TornWrite).times(1));
    let data: Vec<u8> = (0..100).collect();
    let error = storage.put(&key("packs/p"), &data).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Permanent);
    assert!(error.to_string().contains("torn write"), "{error}");
    assert_eq!(storage.get(&key("packs/p")).unwrap(), &data[..50]);

    storage.put(&key("packs/p"), &data).unwrap();
    assert_eq!(storage.get(&key("packs/p")).unwrap(), data);
}

#[test]
fn corrupt_read_flips_one_byte_of_get_and_get_range() {
    let storage = faulty(
        FaultPlan::new().fail(Op::Get, Fault::CorruptRead).times(1).fail(Op::GetRange, Fault::CorruptRead).times(1),
    );
    let data = vec![7u8; 64];
    storage.put(&key("a"), &data).unwrap();
    let differing = |read: &[u8], expected: &[u8]| read.iter().zip(expected).filter(|(r, e)| r != e).count();

    let read = storage.get(&key("a")).unwrap();
    assert_eq!((read.len(), differing(&read, &data)), (64, 1));
    let range = storage.get_range(&key("a"), 8, 16).unwrap();
    assert_eq!((range.len(), differing(&range, &data[8..24])), (16, 1));

    assert_eq!(storage.get(&key("a")).unwrap(), data, "times(1) corrupts only the first read");
    assert_eq!(storage.inner().get(&key("a")).unwrap(), data, "the stored object is intact");
}

#[test]
fn after_and_times_select_which_calls_fail() {
    let storage = faulty(FaultPlan::new().fail(Op::Delete, Fault::Transient).after(2).times(2));
    let outcomes: Vec<bool> = (0..6).map(|_| storage.delete(&key("a")).is_ok()).collect();
    assert_eq!(outcomes, [true, true, false, false, true, true]);
    assert_eq!(storage.plan().injected_count(), 2);
    assert_eq!(storage.plan().call_count(), 6);
}

#[test]
fn prefix_filter_limits_the_rule_to_matching_keys() {
    let storage = faulty(FaultPlan::new().fail(Op::Put, Fault::NoSpace).on_prefix("packs/"));
    storage.put(&key("index/1"), b"x").unwrap();
    assert_eq!(storage.put(&key("packs/1"), b"x").unwrap_err().kind, ErrorKind::NoSpace);
    assert_eq!(storage.list("packs/").unwrap(), []);
}

#[test]
fn first_firing_rule_wins() {
    let storage =
        faulty(FaultPlan::new().fail(Op::Get, Fault::Permanent).times(1).fail(Op::Get, Fault::Transient).times(1));
    storage.put(&key("a"), b"x").unwrap();
    assert_eq!(storage.get(&key("a")).unwrap_err().kind, ErrorKind::Permanent);
    assert_eq!(storage.get(&key("a")).unwrap_err().kind, ErrorKind::Transient);
    assert_eq!(storage.get(&key("a")).unwrap(), b"x");
}

#[test]
#[should_panic(expected = "cannot apply to get")]
fn torn_write_on_a_read_is_a_test_bug() {
    let _ = FaultPlan::new().fail(Op::Get, Fault::TornWrite);
}
