//! API latency benchmark (issue 3): `GET /v2/snapshots?per_page=200` against the real daemon,
//! with 10,000 snapshots in the catalog and 50 concurrent clients. Target: p99 < 50 ms.
//!
//! ```sh
//! cargo build --release -p drydock-cli
//! cargo run --release -p drydock-server --example api_latency -- [--clients 50] [--seconds 20]
//! ```
//!
//! What it does:
//! 1. Seeds a temporary data directory through the catalog's public API, as the daemon's own
//!    snapshot actions would: a few droplets, then per snapshot `start_action` with a pending
//!    image, `finish_image` with a copy in `local-1`, and `finish_action`.
//! 2. Starts `drydock serve` (the binary from `--bin`, `$DRYDOCK_BIN` or
//!    `target/release/drydock`) on a free port, with the rate limit raised out of the way, and
//!    waits for `/drydock/v1/health`.
//! 3. Measures TCP connect + TLS handshake on an idle daemon (sequential fresh connections).
//! 4. Sanity pass: every page once, sequentially; each must be 200 with `per_page` items (the
//!    last one the rest), `meta.total` must be the snapshot count, and no id may repeat.
//! 5. Load: `--clients` tasks, each on its own keep-alive HTTP/1.1 connection over TLS (trusting
//!    the daemon's self-signed `tls/cert.pem`), request random pages back to back (a closed
//!    loop: no think time) for `--warmup` seconds unrecorded, then `--seconds` recorded.
//!
//! The clients run on one thread of this process, on the same machine as the daemon: the CPU
//! time of both is printed so that a reader can tell which side was saturated.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drydock_catalog::{
    Catalog, Disk, DiskFormat, DropletStatus, ImageCopy, ImageType, NewAction, NewDroplet, NewImage, ResourceType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

const USAGE: &str = "usage: api_latency [--clients N] [--seconds S] [--warmup S] [--snapshots N] [--per-page N]
                   [--droplets N] [--handshakes N] [--bin PATH] [--data-dir DIR] [--keep]

  --clients 50       concurrent clients, one keep-alive connection each
  --seconds 20       recorded duration of the load
  --warmup 3         unrecorded load before it
  --snapshots 10000  droplet snapshots seeded in the catalog
  --per-page 200     the page size asked for (the API's maximum is 200)
  --droplets 5       droplets the snapshots are spread over
  --handshakes 100   fresh connections timed before the load (0: skip)
  --bin PATH         the drydock binary (default: $DRYDOCK_BIN, else target/release/drydock)
  --data-dir DIR     use DIR instead of a temporary directory; an existing catalog there is
                     reused as it is (not seeded again) and the directory is kept
  --keep             keep the temporary data directory";

/// The daemon must print its address within this time (it creates a certificate and a
/// repository on first start).
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(60);
/// A request slower than this is counted as an error rather than waited for.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Response headers larger than this are refused: the daemon sends well under 1 KiB.
const HEADER_BYTES_MAX: usize = 16 << 10;
/// What every snapshot claims as its disk's size (10 GiB) and as what it stored (1 GiB).
const SNAPSHOT_SIZE_BYTES: u64 = 10 << 30;
const SNAPSHOT_STORED_BYTES: u64 = 1 << 30;
const REGION: &str = "local-1";

#[derive(Debug)]
struct Options {
    clients: usize,
    seconds: u64,
    warmup_secs: u64,
    snapshots: u64,
    per_page: u64,
    droplets: u64,
    handshakes: usize,
    bin: PathBuf,
    data_dir: Option<PathBuf>,
    keep: bool,
}

impl Options {
    fn parse() -> Result<Options> {
        // crates/server -> the workspace root.
        let workspace =
            Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crates/server has two parents");
        let default_bin = std::env::var_os("DRYDOCK_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target").join("release").join("drydock"));
        let mut options = Options {
            clients: 50,
            seconds: 20,
            warmup_secs: 3,
            snapshots: 10_000,
            per_page: 200,
            droplets: 5,
            handshakes: 100,
            bin: default_bin,
            data_dir: None,
            keep: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if flag == "--keep" {
                options.keep = true;
                continue;
            }
            if flag == "-h" || flag == "--help" {
                println!("{USAGE}");
                std::process::exit(0);
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            let number = || value.parse::<u64>().map_err(|_| format!("{flag} needs a number, not {value:?}"));
            match flag.as_str() {
                "--clients" => options.clients = number()? as usize,
                "--seconds" => options.seconds = number()?,
                "--warmup" => options.warmup_secs = number()?,
                "--snapshots" => options.snapshots = number()?,
                "--per-page" => options.per_page = number()?,
                "--droplets" => options.droplets = number()?,
                "--handshakes" => options.handshakes = number()? as usize,
                "--bin" => options.bin = PathBuf::from(&value),
                "--data-dir" => options.data_dir = Some(PathBuf::from(&value)),
                _ => return Err(format!("unknown flag {flag}\n{USAGE}").into()),
            }
        }
        if options.clients == 0 || options.seconds == 0 || options.droplets == 0 || options.snapshots == 0 {
            return Err("--clients, --seconds, --droplets and --snapshots must be at least 1".into());
        }
        if !(1..=200).contains(&options.per_page) {
            return Err("--per-page must be 1 to 200 (the API lowers larger values to 200)".into());
        }
        Ok(options)
    }

    fn pages(&self) -> u64 {
        self.snapshots.div_ceil(self.per_page)
    }
}

fn main() -> Result<()> {
    let options = Options::parse()?;
    if !options.bin.is_file() {
        return Err(format!(
            "no drydock binary at {}: run `cargo build --release -p drydock-cli` first, or pass --bin PATH",
            options.bin.display()
        )
        .into());
    }
    let mut temp = None;
    let data_dir = match &options.data_dir {
        Some(dir) => dir.clone(),
        None => {
            let dir = tempfile::Builder::new().prefix("drydock-api-latency-").tempdir()?;
            let path = dir.path().to_path_buf();
            temp = Some(dir);
            path
        }
    };
    println!("data directory: {}", data_dir.display());

    let token = prepare_catalog(&data_dir, &options)?;
    let config = data_dir.join("bench.toml");
    // The default limit (5,000 requests per token per hour) would answer 429 within a second.
    std::fs::write(&config, "rate_limit_per_hour = 4000000000\n")?;
    let daemon = Daemon::start(&options.bin, &data_dir, &config)?;
    println!("daemon: {} pid {} on https://{}", options.bin.display(), daemon.pid(), daemon.address);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outcome = runtime.block_on(measure(&options, &daemon, &data_dir, &token));
    drop(daemon);
    if let Some(temp) = temp.filter(|_| options.keep) {
        println!("kept {}", temp.keep().display());
    }
    outcome
}

/// Seeds the catalog unless it exists, and returns a new full-access token's secret.
fn prepare_catalog(data_dir: &Path, options: &Options) -> Result<String> {
    let path = data_dir.join("catalog.sqlite");
    let existed = path.exists();
    let catalog = Catalog::open(&path)?;
    let team = catalog.ensure_team("default")?;
    if existed {
        println!("catalog: reusing {} (not seeded)", path.display());
    } else {
        let started = Instant::now();
        seed(&catalog, team.id, options)?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "catalog: seeded {} droplets and {} snapshots in {secs:.1} s ({:.0} snapshots/s, 3 write transactions each)",
            options.droplets,
            options.snapshots,
            options.snapshots as f64 / secs
        );
    }
    Ok(catalog.create_token(team.id, "bench", &["*".into()])?.secret)
}

/// Droplets, then snapshots spread over them, recorded as the daemon's snapshot actions
/// record them.
fn seed(catalog: &Catalog, team: i64, options: &Options) -> Result<()> {
    let mut droplet_ids = Vec::new();
    for n in 0..options.droplets {
        let droplet = catalog.insert_droplet(
            team,
            &NewDroplet {
                name: format!("bench-{n}"),
                region: REGION.into(),
                disk: Disk {
                    path: format!("/var/lib/bench/disk-{n}.img"),
                    format: DiskFormat::Raw,
                    size_bytes: SNAPSHOT_SIZE_BYTES,
                },
                power: serde_json::json!({"driver": "none"}),
                status: DropletStatus::Active,
                size_slug: "registered".into(),
                memory_mb: 1024,
                vcpus: 1,
                tags: vec!["bench".into()],
                backups_enabled: false,
                backup_policy: None,
                backups_since: None,
                image_id: None,
            },
        )?;
        droplet_ids.push(droplet.id);
    }
    let mut random = SplitMix64(0x5eed);
    for n in 0..options.snapshots {
        let droplet = droplet_ids[(n % options.droplets) as usize].to_string();
        let name = format!("bench-{droplet}-snapshot-{n:05}");
        let action = NewAction {
            kind: "snapshot".into(),
            resource_type: ResourceType::Droplet,
            resource_id: droplet.clone(),
            region: REGION.into(),
            params: serde_json::json!({"name": name}),
        };
        let image = NewImage {
            name,
            kind: ImageType::Snapshot,
            resource_type: ResourceType::Droplet,
            resource_id: droplet,
            size_bytes: SNAPSHOT_SIZE_BYTES,
            tags: vec!["manual".into()],
            created_at: None,
        };
        let (action, image) = catalog.start_action(team, &action, Some(&image))?;
        let image = image.ok_or("start_action returned no image")?;
        let snapshot_id = (0..4).map(|_| format!("{:016x}", random.next())).collect::<String>();
        let copy = ImageCopy { region: REGION.into(), snapshot_id };
        catalog.finish_image(image.id, &copy, SNAPSHOT_SIZE_BYTES, SNAPSHOT_STORED_BYTES)?;
        catalog.finish_action(action.id, Ok(()))?;
    }
    Ok(())
}

/// `drydock serve` as a child process, stopped with SIGTERM when dropped.
struct Daemon {
    child: Child,
    address: SocketAddr,
}

impl Daemon {
    fn start(bin: &Path, data_dir: &Path, config: &Path) -> Result<Daemon> {
        let mut child = Command::new(bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--config")
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            .env("DRYDOCK_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        // The address is on the first line that names it; later lines are passed through so
        // that the pipe never fills.
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sender = Some(sender);
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                let address = line
                    .strip_prefix("drydock: serving the API on https://")
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse::<SocketAddr>().ok());
                match (address, sender.take()) {
                    (Some(address), Some(sender)) => drop(sender.send(address)),
                    (_, kept) => {
                        sender = kept;
                        eprintln!("daemon: {line}");
                    }
                }
            }
        });
        let mut daemon = Daemon { child, address: SocketAddr::from(([127, 0, 0, 1], 0)) };
        match receiver.recv_timeout(DAEMON_START_TIMEOUT) {
            Ok(address) => daemon.address = address,
            Err(_) => return Err("the daemon did not start listening (its stderr is above)".into()),
        }
        Ok(daemon)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// One keep-alive HTTP/1.1 connection over TLS: enough of a client for GET requests to a
/// daemon that always answers with `content-length`.
struct Connection {
    stream: TlsStream<TcpStream>,
    host: String,
    buffer: Vec<u8>,
}

struct Response {
    status: u16,
    body: Vec<u8>,
}

#[derive(Clone)]
struct Target {
    address: SocketAddr,
    tls: TlsConnector,
    token: Arc<str>,
}

impl Target {
    fn new(address: SocketAddr, cert: &Path, token: &str) -> Result<Target> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(cert).map_err(|e| format!("reading {}: {e}", cert.display()))? {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Target { address, tls: TlsConnector::from(Arc::new(config)), token: token.into() })
    }

    async fn connect(&self) -> Result<Connection> {
        let tcp = TcpStream::connect(self.address).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(self.address.ip().into());
        let stream = self.tls.connect(name, tcp).await?;
        Ok(Connection { stream, host: self.address.to_string(), buffer: Vec::with_capacity(64 << 10) })
    }
}

impl Connection {
    async fn get(&mut self, path: &str, token: &str) -> Result<Response> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\naccept: application/json\r\n\r\n",
            self.host
        );
        self.stream.write_all(request.as_bytes()).await?;
        self.stream.flush().await?;
        self.buffer.clear();
        let header_end = loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            if self.buffer.len() > HEADER_BYTES_MAX {
                return Err("response headers too large".into());
            }
            self.read_more().await?;
        };
        let head = std::str::from_utf8(&self.buffer[..header_end])?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or("malformed status line")?;
        let mut length = None;
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.trim().parse::<usize>()?);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err("chunked responses are not supported by this client".into());
                }
            }
        }
        let length = length.ok_or("response without content-length")?;
        while self.buffer.len() < header_end + length {
            self.read_more().await?;
        }
        Ok(Response { status, body: self.buffer[header_end..header_end + length].to_vec() })
    }

    async fn read_more(&mut self) -> Result<()> {
        let start = self.buffer.len();
        self.buffer.resize(start + (16 << 10), 0);
        let n = self.stream.read(&mut self.buffer[start..]).await?;
        self.buffer.truncate(start + n);
        if n == 0 {
            return Err("connection closed by the daemon".into());
        }
        Ok(())
    }
}

async fn measure(options: &Options, daemon: &Daemon, data_dir: &Path, token: &str) -> Result<()> {
    let target = Target::new(daemon.address, &data_dir.join("tls").join("cert.pem"), token)?;
    wait_healthy(&target).await?;
    println!("load average before the run: {}", load_average());

    if options.handshakes > 0 {
        let mut micros = Vec::with_capacity(options.handshakes);
        for _ in 0..options.handshakes {
            let started = Instant::now();
            let connection = target.connect().await?;
            micros.push(started.elapsed().as_micros() as u32);
            drop(connection);
        }
        let stats = Stats::new(micros);
        println!(
            "TLS: TCP connect + TLS 1.3 handshake on an idle daemon, {} sequential connections: p50 {} p99 {} max {}",
            options.handshakes,
            ms(stats.percentile(50.0)),
            ms(stats.percentile(99.0)),
            ms(stats.max())
        );
    }

    sanity_check(&target, options).await?;

    let cpu_before = (cpu_secs_self(), cpu_secs_of(daemon.pid()));
    let warmup = Duration::from_secs(options.warmup_secs);
    let recorded = Duration::from_secs(options.seconds);
    let started = Instant::now();
    let (record_from, stop_at) = (started + warmup, started + warmup + recorded);
    let mut clients = tokio::task::JoinSet::new();
    for n in 0..options.clients {
        let target = target.clone();
        let pages = options.pages();
        let per_page = options.per_page;
        clients.spawn(async move { client(target, n as u64, pages, per_page, record_from, stop_at).await });
    }
    let mut micros = Vec::new();
    let (mut errors, mut first_error) = (0u64, None);
    let mut handshakes = Vec::new();
    while let Some(joined) = clients.join_next().await {
        let report = joined?;
        micros.extend(report.micros);
        errors += report.errors;
        handshakes.push(report.handshake_micros);
        first_error = first_error.or(report.first_error);
    }
    let cpu_after = (cpu_secs_self(), cpu_secs_of(daemon.pid()));
    let elapsed = started.elapsed().as_secs_f64();

    let stats = Stats::new(micros);
    let handshakes = Stats::new(handshakes);
    println!(
        "load: {} clients x keep-alive HTTP/1.1 over TLS, GET /v2/snapshots?per_page={}&page=<random 1..{}>, {} s warm-up + {} s recorded",
        options.clients,
        options.per_page,
        options.pages(),
        options.warmup_secs,
        options.seconds
    );
    println!(
        "  handshakes of the {} connections (made at once): p50 {} max {}",
        options.clients,
        ms(handshakes.percentile(50.0)),
        ms(handshakes.max())
    );
    println!(
        "  requests: {} recorded, {:.0} requests/s, errors {errors}",
        stats.count(),
        stats.count() as f64 / recorded.as_secs_f64()
    );
    println!(
        "  latency: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})",
        ms(stats.percentile(50.0)),
        ms(stats.percentile(90.0)),
        ms(stats.percentile(99.0)),
        ms(stats.percentile(99.9)),
        ms(stats.max()),
        ms(stats.mean())
    );
    if let (Some(client_secs), Some(daemon_secs)) = (cpu_after.0.zip(cpu_before.0), cpu_after.1.zip(cpu_before.1)) {
        println!(
            "  CPU over the {elapsed:.0} s of load: daemon {:.1} s ({:.0}% of one core), clients {:.1} s ({:.0}%)",
            daemon_secs.0 - daemon_secs.1,
            100.0 * (daemon_secs.0 - daemon_secs.1) / elapsed,
            client_secs.0 - client_secs.1,
            100.0 * (client_secs.0 - client_secs.1) / elapsed
        );
    }
    println!("  load average after the run (this benchmark's threads included): {}", load_average());
    let verdict = if stats.percentile(99.0) < 50_000 && errors == 0 { "PASS" } else { "FAIL" };
    println!("target p99 < 50 ms: {verdict}");
    if let Some(error) = first_error {
        println!("first error: {error}");
    }
    Ok(())
}

async fn wait_healthy(target: &Target) -> Result<()> {
    let deadline = Instant::now() + DAEMON_START_TIMEOUT;
    loop {
        let outcome = async { target.connect().await?.get("/drydock/v1/health", "").await }.await;
        match outcome {
            Ok(response) if response.status == 200 => return Ok(()),
            _ if Instant::now() > deadline => return Err("the daemon never answered /drydock/v1/health".into()),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Every page once: status, item count, total, and no id twice.
async fn sanity_check(target: &Target, options: &Options) -> Result<()> {
    let mut connection = target.connect().await?;
    let mut seen = std::collections::HashSet::new();
    let started = Instant::now();
    for page in 1..=options.pages() {
        let path = format!("/v2/snapshots?per_page={}&page={page}", options.per_page);
        let response = connection.get(&path, &target.token).await?;
        if response.status != 200 {
            return Err(
                format!("{path}: status {}: {}", response.status, String::from_utf8_lossy(&response.body)).into()
            );
        }
        let body: serde_json::Value = serde_json::from_slice(&response.body)?;
        let items = body["snapshots"].as_array().ok_or(format!("{path}: no snapshots array"))?;
        let expected = options.per_page.min(options.snapshots - (page - 1) * options.per_page);
        if items.len() as u64 != expected {
            return Err(format!("{path}: {} snapshots, expected {expected}", items.len()).into());
        }
        if body["meta"]["total"].as_u64() != Some(options.snapshots) {
            return Err(
                format!("{path}: meta.total is {}, expected {}", body["meta"]["total"], options.snapshots).into()
            );
        }
        for item in items {
            let id = item["id"].as_str().ok_or(format!("{path}: a snapshot without a string id"))?;
            if !seen.insert(id.to_string()) {
                return Err(format!("{path}: snapshot {id} listed twice").into());
            }
        }
    }
    println!(
        "sanity: {} pages of {} read one by one in {:.2} s: all 200, {} distinct snapshots, meta.total {}",
        options.pages(),
        options.per_page,
        started.elapsed().as_secs_f64(),
        seen.len(),
        options.snapshots
    );
    Ok(())
}

struct ClientReport {
    micros: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    handshake_micros: u32,
}

/// One client: its own connection, random pages back to back until `stop_at`; latencies of
/// requests started from `record_from` on are kept. A failed request is counted, and the
/// client reconnects.
async fn client(
    target: Target,
    n: u64,
    pages: u64,
    per_page: u64,
    record_from: Instant,
    stop_at: Instant,
) -> ClientReport {
    let mut report = ClientReport { micros: Vec::new(), errors: 0, first_error: None, handshake_micros: 0 };
    let mut random = SplitMix64(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xbe9c);
    let mut connection: Option<Connection> = None;
    while Instant::now() < stop_at {
        let started = Instant::now();
        let recorded = started >= record_from;
        let outcome = async {
            if connection.is_none() {
                let connecting = Instant::now();
                connection = Some(target.connect().await?);
                if report.handshake_micros == 0 {
                    report.handshake_micros = connecting.elapsed().as_micros() as u32;
                }
            }
            let page = 1 + random.next() % pages;
            let path = format!("/v2/snapshots?per_page={per_page}&page={page}");
            let response = connection.as_mut().expect("connected above").get(&path, &target.token).await?;
            match response.status {
                200 => Ok(()),
                status => Err(BoxError::from(format!("{path}: status {status}"))),
            }
        };
        let outcome = match tokio::time::timeout(REQUEST_TIMEOUT, outcome).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}").into()),
        };
        let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
        match outcome {
            Ok(()) if recorded => report.micros.push(micros),
            Ok(()) => {}
            Err(e) => {
                connection = None;
                if recorded {
                    report.errors += 1;
                    report.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
    report
}

/// Latencies in microseconds, sorted.
struct Stats(Vec<u32>);

impl Stats {
    fn new(mut micros: Vec<u32>) -> Stats {
        micros.sort_unstable();
        Stats(micros)
    }

    fn count(&self) -> usize {
        self.0.len()
    }

    /// Nearest rank: the smallest value with at least `p`% of the values at or below it.
    fn percentile(&self, p: f64) -> u32 {
        if self.0.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    fn max(&self) -> u32 {
        self.0.last().copied().unwrap_or(0)
    }

    fn mean(&self) -> u32 {
        if self.0.is_empty() {
            return 0;
        }
        (self.0.iter().map(|&m| m as u64).sum::<u64>() / self.0.len() as u64) as u32
    }
}

fn ms(micros: u32) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg gives them.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// User + system CPU seconds of this process.
fn cpu_secs_self() -> Option<f64> {
    cpu_secs_of(std::process::id())
}

/// User + system CPU seconds of a process, from /proc/PID/stat (fields 14 and 15, in ticks).
fn cpu_secs_of(pid: u32) -> Option<f64> {
    let mut stat = String::new();
    std::fs::File::open(format!("/proc/{pid}/stat")).ok()?.read_to_string(&mut stat).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / per_sec.max(1) as f64)
}

/// A small deterministic generator: pages and snapshot ids need spread, not secrecy.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
