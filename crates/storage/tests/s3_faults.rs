//! Multipart uploads cut off part-way, against the SeaweedFS that `scripts/test` starts
//! (`DRYDOCK_TEST_S3_ENDPOINT`): the connections go through a proxy in this file that cuts them
//! all once enough bytes went up, while the server itself stays up. A failed put must leave no
//! object, and no pending upload whenever the abort can get through.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use drydock_storage::{Credentials, ErrorKind, ObjectKey, S3Config, S3Storage, Storage};

const BUCKET: &str = "drydock-tests";
/// Above the 6 MiB threshold set below: five parts of at most 5 MiB.
const OBJECT_BYTES: usize = 23 << 20;
/// The cut comes in the middle of the parts, well after the upload was started.
const CUT_AFTER_BYTES: u64 = 12 << 20;

fn endpoint() -> String {
    std::env::var("DRYDOCK_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("DRYDOCK_TEST_S3_ENDPOINT is not set: run the S3 tests with scripts/test (see tests/s3.rs)")
    })
}

/// A multipart-sized configuration under a prefix of its own, on the server itself.
fn direct_config(test: &str) -> S3Config {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let credentials = Credentials {
        access_key_id: "drydock-test".into(),
        secret_access_key: "drydock-test-secret".into(),
        session_token: None,
    };
    let mut config = S3Config::new(&endpoint(), BUCKET, credentials);
    config.prefix = format!("{test}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    config.multipart_threshold = 6 << 20;
    config.part_size = 5 << 20;
    S3Storage::new(config.clone()).unwrap().create_bucket().unwrap_or_else(|e| panic!("{e}"));
    config
}

/// A TCP proxy to the S3 server. Once `cut_after_bytes` went from clients to the server, it
/// shuts down every connection open then and refuses new ones for `down_for`; after that it
/// forwards again. SigV4 signs the Host header, and the proxy's address differs from the
/// server's, but SeaweedFS checks the signature against what it receives: the same host.
struct CuttingProxy {
    address: SocketAddr,
    cut: Arc<AtomicBool>,
}

impl CuttingProxy {
    fn start(cut_after_bytes: u64, down_for: Duration) -> CuttingProxy {
        let upstream: SocketAddr = endpoint().trim_start_matches("http://").parse().expect("endpoint is ip:port");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let cut_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
        let sent = Arc::new(AtomicU64::new(0));
        let flag = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let down = cut_at.lock().unwrap().is_some_and(|at| at.elapsed() < down_for);
                if down {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                let opened_before_cut = !flag.load(Ordering::SeqCst);
                let (flag, cut_at, sent) = (flag.clone(), cut_at.clone(), sent.clone());
                let (client_out, server_in) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pipe(server_in, client_out, None));
                std::thread::spawn(move || {
                    let watch = |n: u64| {
                        let total = sent.fetch_add(n, Ordering::SeqCst) + n;
                        if total >= cut_after_bytes && !flag.swap(true, Ordering::SeqCst) {
                            *cut_at.lock().unwrap() = Some(Instant::now());
                        }
                        opened_before_cut && flag.load(Ordering::SeqCst)
                    };
                    pipe(client, server, Some(&watch));
                });
            }
        });
        CuttingProxy { address, cut }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// Copies `from` to `to` until either end closes, or until `cut` (told each count of bytes)
/// says to cut: then both connections are shut down.
fn pipe(mut from: TcpStream, mut to: TcpStream, cut: Option<&dyn Fn(u64) -> bool>) {
    let mut buffer = vec![0; 64 << 10];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if cut.is_some_and(|cut| cut(n as u64)) || to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

fn pattern(length: usize) -> Vec<u8> {
    (0..length).map(|i| (i as u8).wrapping_mul(37) ^ (i >> 11) as u8).collect()
}

fn put_through(proxy: &CuttingProxy, config: &S3Config, key: &ObjectKey) -> drydock_storage::Error {
    let mut through = config.clone();
    through.endpoint = proxy.endpoint();
    let error = S3Storage::new(through).unwrap().put(key, &pattern(OBJECT_BYTES)).unwrap_err();
    assert!(proxy.cut.load(Ordering::SeqCst), "the proxy never cut: {error}");
    error
}

#[test]
fn an_upload_cut_off_part_way_leaves_no_object_and_no_pending_upload() {
    let config = direct_config("cut");
    let proxy = CuttingProxy::start(CUT_AFTER_BYTES, Duration::ZERO);
    let key = ObjectKey::new("packs/cd/cut").unwrap();
    let error = put_through(&proxy, &config, &key);
    assert_eq!(error.kind, ErrorKind::Transient, "{error}");
    assert!(error.to_string().contains("packs/cd/cut") && !error.to_string().contains('\n'), "{error}");

    let direct = S3Storage::new(config).unwrap();
    assert_eq!(direct.stat(&key).unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(direct.pending_uploads().unwrap(), [], "the failed upload was aborted");
}

#[test]
fn an_upload_whose_abort_cannot_get_through_is_listed_and_can_be_aborted_later() {
    let config = direct_config("stranded");
    // Down for longer than the abort's retries (0.2 + 0.4 s).
    let proxy = CuttingProxy::start(CUT_AFTER_BYTES, Duration::from_secs(3));
    let key = ObjectKey::new("packs/ef/stranded").unwrap();
    assert_eq!(put_through(&proxy, &config, &key).kind, ErrorKind::Transient);

    let direct = S3Storage::new(config.clone()).unwrap();
    assert_eq!(direct.stat(&key).unwrap_err().kind, ErrorKind::NotFound, "an upload never completed is invisible");
    let pending = direct.pending_uploads().unwrap();
    let name = format!("{}/packs/ef/stranded", config.prefix);
    assert_eq!(pending.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), [name.as_str()]);
    direct.abort_upload(&pending[0].name, &pending[0].upload_id).unwrap();
    assert_eq!(direct.pending_uploads().unwrap(), []);
    // Aborting it again is not an error: it is gone, as asked.
    direct.abort_upload(&pending[0].name, &pending[0].upload_id).unwrap();
}
