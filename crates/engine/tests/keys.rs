//! Key slots: several passphrases open one repository; removing or changing one never locks
//! the data away.

mod common;

use std::sync::Arc;

use common::*;
use drydock_engine::{Error, InitOptions, Repository};
use drydock_storage::{MemoryStorage, Storage};

const SECOND: &[u8] = b"second passphrase";

fn open(storage: &Arc<dyn Storage>, passphrase: &[u8]) -> drydock_engine::Result<Repository> {
    Repository::open(storage.clone(), Some(passphrase))
}

#[test]
fn added_key_opens_the_repository_alongside_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = memory_repo();
    let snapshot = backup_bytes(&repo, dir.path(), "disk", &pattern(3 * CHUNK_BYTES, 9, false));
    let added = repo.add_key(SECOND, TEST_KDF).unwrap();

    let keys = repo.list_keys().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k.current).count(), 1, "{keys:?}");
    assert!(keys.iter().any(|k| k.id == added && !k.current), "the new slot is not the one this handle opened");
    // Either passphrase reaches the same data; through the second, the second slot is current.
    let second = open(&storage, SECOND).unwrap();
    assert_eq!(restore_bytes(&second, &snapshot.id), pattern(3 * CHUNK_BYTES, 9, false));
    let current: Vec<_> = second.list_keys().unwrap().into_iter().filter(|k| k.current).map(|k| k.id).collect();
    assert_eq!(current, [added]);
    open(&storage, PASSPHRASE).unwrap();
    assert!(matches!(open(&storage, b"neither"), Err(Error::WrongPassphrase)));
}

#[test]
fn the_last_key_slot_cannot_be_removed() {
    let (storage, repo) = memory_repo();
    let added = repo.add_key(SECOND, TEST_KDF).unwrap();
    let first = repo.list_keys().unwrap().into_iter().find(|k| k.current).unwrap().id;

    assert!(matches!(repo.remove_key("ffffffffffff"), Err(Error::NotFound(_))));
    // A unique prefix names a slot; the passphrase of a removed slot opens nothing any more.
    assert_eq!(repo.remove_key(&added[..8]).unwrap(), added);
    assert!(matches!(open(&storage, SECOND), Err(Error::WrongPassphrase)));
    let error = repo.remove_key(&first).unwrap_err();
    assert!(matches!(&error, Error::InvalidInput(m) if m.contains("last")), "{error}");
    assert_eq!(repo.list_keys().unwrap().len(), 1);
    open(&storage, PASSPHRASE).unwrap();
}

#[test]
fn change_passphrase_replaces_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, mut repo) = memory_repo();
    let snapshot = backup_bytes(&repo, dir.path(), "disk", &pattern(2 * CHUNK_BYTES, 4, true));
    let new_slot = repo.change_passphrase(SECOND, TEST_KDF).unwrap();

    assert!(matches!(open(&storage, PASSPHRASE), Err(Error::WrongPassphrase)));
    let reopened = open(&storage, SECOND).unwrap();
    assert_eq!(restore_bytes(&reopened, &snapshot.id), pattern(2 * CHUNK_BYTES, 4, true));
    let keys = repo.list_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0].id.as_str(), keys[0].current), (new_slot.as_str(), true));
}

#[test]
fn unencrypted_repository_has_no_key_slots() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let options = InitOptions { kdf: TEST_KDF, chunk_size_bytes: CHUNK_BYTES as u32, ..InitOptions::unencrypted() };
    let mut repo = Repository::init(storage.clone(), options).unwrap();
    assert_eq!(count_under(storage.as_ref(), "keys/"), 0);

    let not_encrypted = |result: drydock_engine::Result<_>| match result {
        Err(Error::InvalidInput(message)) => assert!(message.contains("not encrypted"), "{message}"),
        Err(other) => panic!("expected a clear refusal, got {other}"),
        Ok(_) => panic!("an unencrypted repository has no key slots"),
    };
    not_encrypted(repo.list_keys().map(|_| ()));
    not_encrypted(repo.add_key(SECOND, TEST_KDF).map(|_| ()));
    not_encrypted(repo.remove_key("a").map(|_| ()));
    not_encrypted(repo.change_passphrase(SECOND, TEST_KDF).map(|_| ()));
    assert_eq!(count_under(storage.as_ref(), "keys/"), 0);
    // No passphrase needed, and any given is ignored.
    Repository::open(storage.clone(), None).unwrap();
    Repository::open(storage, Some(b"whatever")).unwrap();
}
