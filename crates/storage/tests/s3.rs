//! [`S3Storage`] against a real S3 server: SeaweedFS on loopback, started by `scripts/test`
//! (`scripts/s3-test-server`), which names it in `DRYDOCK_TEST_S3_ENDPOINT`. Every test works
//! under prefixes of its own in one bucket, so tests run in parallel on one server.

use std::sync::atomic::{AtomicU32, Ordering};

use drydock_storage::{
    Credentials, ErrorKind, ObjectKey, Retry, RetryPolicy, S3Config, S3Storage, Storage, conformance,
};

/// The identity `scripts/s3-test-server` configures.
const ACCESS_KEY: &str = "drydock-test";
const SECRET_KEY: &str = "drydock-test-secret";

fn endpoint() -> String {
    std::env::var("DRYDOCK_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "DRYDOCK_TEST_S3_ENDPOINT is not set: the S3 tests need a SeaweedFS server. Run them with \
             scripts/test, or start one with `eval $(scripts/s3-test-server start /tmp/s3)`"
        )
    })
}

fn credentials() -> Credentials {
    Credentials { access_key_id: ACCESS_KEY.into(), secret_access_key: SECRET_KEY.into(), session_token: None }
}

/// The bucket every test shares: SeaweedFS gives each bucket volumes of its own, and a few
/// hundred buckets would exhaust them.
const BUCKET: &str = "drydock-tests";

/// A new, empty place in the test bucket: a prefix named after the test.
fn bucket(test: &str) -> S3Config {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let mut config = S3Config::new(&endpoint(), BUCKET, credentials());
    config.prefix = format!("{test}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    S3Storage::new(config.clone()).unwrap().create_bucket().unwrap_or_else(|e| panic!("{e}"));
    config
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(name).unwrap()
}

fn pattern(length: usize) -> Vec<u8> {
    (0..length).map(|i| (i as u8).wrapping_mul(31) ^ (i >> 9) as u8).collect()
}

#[test]
fn s3_storage_passes_the_conformance_suite() {
    conformance::run_all(&|| Box::new(S3Storage::new(bucket("conformance")).unwrap()));
}

#[test]
fn s3_storage_under_a_prefix_passes_the_conformance_suite() {
    conformance::run_all(&|| {
        let mut config = bucket("prefixed");
        config.prefix.push_str("/regions/nyc3");
        Box::new(S3Storage::new(config).unwrap())
    });
}

#[test]
fn a_large_object_goes_up_in_parts_and_reads_back_whole_and_in_ranges() {
    let mut config = bucket("multipart");
    config.multipart_threshold = 6 << 20;
    config.part_size = 5 << 20;
    let storage = S3Storage::new(config).unwrap();
    let data = pattern(23 << 20);
    storage.put(&key("packs/ab/big"), &data).unwrap();
    assert_eq!(storage.stat(&key("packs/ab/big")).unwrap().size_bytes, data.len() as u64);
    assert!(storage.get(&key("packs/ab/big")).unwrap() == data, "the whole object differs");
    // Across the boundary of parts 1 and 2, and the tail of the last part.
    let across = storage.get_range(&key("packs/ab/big"), (5 << 20) - 100, 200).unwrap();
    assert_eq!(across, data[(5 << 20) - 100..(5 << 20) + 100]);
    let tail = storage.get_range(&key("packs/ab/big"), (23 << 20) - 10, 10).unwrap();
    assert_eq!(tail, data[(23 << 20) - 10..]);
    assert_eq!(storage.get_range(&key("packs/ab/big"), (23 << 20) - 10, 11).unwrap_err().kind, ErrorKind::OutOfRange);
}

#[test]
fn listing_follows_continuation_tokens_past_a_thousand_keys() {
    let storage = S3Storage::new(bucket("listing")).unwrap();
    let threads = 8;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let storage = &storage;
            scope.spawn(move || {
                for i in (t..1100).step_by(threads) {
                    storage.put(&key(&format!("index/{i:05}")), &[i as u8]).unwrap();
                }
            });
        }
    });
    storage.put(&key("config"), b"c").unwrap();
    let mut listed = storage.list("index/").unwrap();
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(listed.len(), 1100);
    assert_eq!((listed[0].key.as_str(), listed[1099].key.as_str()), ("index/00000", "index/01099"));
    assert!(listed.iter().all(|o| o.size_bytes == 1));
}

#[test]
fn a_wrong_secret_is_a_permanent_error_naming_the_bucket() {
    let mut config = bucket("secret");
    config.credentials.secret_access_key = "not-the-secret".into();
    let storage = S3Storage::new(config).unwrap();
    let error = storage.get(&key("config")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Permanent, "{error}");
    let message = error.to_string();
    assert!(
        message.contains("HTTP 403") && message.contains("config") && message.contains("drydock-tests/secret-"),
        "{message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");
}

#[test]
fn an_unreachable_endpoint_is_transient_and_retried_then_reported() {
    // A port nothing listens on: bind one, then drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = S3Config::new(&format!("http://127.0.0.1:{port}"), "nowhere", credentials());
    let storage = S3Storage::new(config).unwrap();
    let error = storage.get(&key("config")).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Transient, "{error}");
    let retried = Retry::new(storage, RetryPolicy { attempts_max: 3, ..RetryPolicy::default() });
    let error = retried.put(&key("config"), b"x").unwrap_err();
    assert_eq!(error.kind, ErrorKind::Transient, "{error}");
    assert!(error.to_string().contains(&format!("127.0.0.1:{port}/nowhere")), "{error}");
}

#[test]
fn bad_configurations_are_refused_before_any_request() {
    let cases = [
        ("ftp://127.0.0.1:1", "bucket-ok", "", "http:// or https://"),
        ("http://127.0.0.1:1", "Bad_Bucket", "", "bucket name"),
        ("http://127.0.0.1:1", "bucket-ok", "/leading", "prefix"),
    ];
    for (endpoint, bucket, prefix, needle) in cases {
        let mut config = S3Config::new(endpoint, bucket, credentials());
        config.prefix = prefix.into();
        let error = S3Storage::new(config).unwrap_err().to_string();
        assert!(error.contains(needle), "{endpoint} {bucket} {prefix}: {error}");
    }
}
