//! Pack-sized objects to and from S3 next to a local directory: what a backup and a restore ask
//! of the storage. Writes MIB mebibytes of 8 MiB objects with several writers, reads them back
//! whole, then reads them as a restore does — 1 MiB ranged GETs, several at once — and prints
//! MB/s and requests per GiB for each.
//!
//! ```sh
//! eval $(scripts/s3-test-server start /tmp/s3)
//! cargo run --release -p drydock-storage --example s3_throughput [MIB]    # 1024 by default
//! scripts/s3-test-server stop /tmp/s3
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use drydock_storage::{Credentials, LocalStorage, ObjectKey, S3Config, S3Storage, Storage};

const OBJECT_BYTES: usize = 8 << 20;
const RANGE_BYTES: u64 = 1 << 20;
const THREADS: usize = 4;

fn main() {
    let mib: usize = std::env::args().nth(1).map_or(1024, |a| a.parse().expect("MIB: a number"));
    let objects = (mib << 20) / OBJECT_BYTES;
    let endpoint =
        std::env::var("DRYDOCK_TEST_S3_ENDPOINT").expect("DRYDOCK_TEST_S3_ENDPOINT (scripts/s3-test-server)");
    let credentials = Credentials {
        access_key_id: "drydock-test".into(),
        secret_access_key: "drydock-test-secret".into(),
        session_token: None,
    };
    let mut config = S3Config::new(&endpoint, "drydock-bench", credentials);
    config.prefix = format!("run-{}", std::process::id());
    let s3 = S3Storage::new(config).expect("configuration");
    s3.create_bucket().expect("bucket");
    let dir = tempfile::tempdir().expect("temporary directory");
    let local = LocalStorage::create(dir.path().join("repo")).expect("local storage");

    println!("{objects} objects of {} MiB, {THREADS} threads", OBJECT_BYTES >> 20);
    for (name, storage) in [("local", &local as &dyn Storage), ("s3 (SeaweedFS)", &s3 as &dyn Storage)] {
        run(name, storage, objects);
    }
}

fn run(name: &str, storage: &dyn Storage, objects: usize) {
    let keys: Vec<ObjectKey> =
        (0..objects).map(|i| ObjectKey::new(format!("packs/{:02x}/{i:08}", i % 256)).unwrap()).collect();
    let total = (objects * OBJECT_BYTES) as f64;
    let gib = total / f64::from(1u32 << 30);
    let requests = AtomicU64::new(0);

    let started = Instant::now();
    parallel(&keys, |i, key| {
        // Different bytes per object, incompressible enough for a storage that compresses.
        let data: Vec<u8> = (0..OBJECT_BYTES)
            .map(|b| (b as u32).wrapping_mul(2_654_435_761).wrapping_add(i as u32).to_le_bytes()[3])
            .collect();
        storage.put(key, &data).expect("put");
        requests.fetch_add(1, Ordering::Relaxed);
    });
    let put = started.elapsed().as_secs_f64();

    let started = Instant::now();
    parallel(&keys, |_, key| {
        assert_eq!(storage.get(key).expect("get").len(), OBJECT_BYTES);
    });
    let get = started.elapsed().as_secs_f64();

    let ranges: Vec<(ObjectKey, u64)> = keys
        .iter()
        .flat_map(|k| (0..OBJECT_BYTES as u64 / RANGE_BYTES).map(move |r| (k.clone(), r * RANGE_BYTES)))
        .collect();
    let started = Instant::now();
    parallel(&ranges, |_, (key, offset)| {
        assert_eq!(storage.get_range(key, *offset, RANGE_BYTES).expect("get_range").len() as u64, RANGE_BYTES);
    });
    let ranged = started.elapsed().as_secs_f64();
    let mb = |seconds: f64| total / seconds / 1e6;
    println!(
        "{name:>15}: put {:.0} MB/s, get {:.0} MB/s, 1 MiB ranged gets {:.0} MB/s; per GiB: {:.0} PUTs, {:.0} ranged GETs",
        mb(put),
        mb(get),
        mb(ranged),
        requests.load(Ordering::Relaxed) as f64 / gib,
        ranges.len() as f64 / gib
    );
}

/// Runs `work` on every item, THREADS at a time.
fn parallel<T: Sync>(items: &[T], work: impl Fn(usize, &T) + Sync) {
    let next = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(item) = items.get(i) else { break };
                    work(i, item);
                }
            });
        }
    });
}
