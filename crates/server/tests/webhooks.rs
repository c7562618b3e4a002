//! Webhooks against a real HTTP receiver on 127.0.0.1: signed, retried, filtered, never blocking.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drydock_catalog::ResourceType;
use drydock_jobs::{BackupEvent, BackupEventKind, EventSink};
use drydock_server::{DeliverySettings, WebhookConfig, Webhooks, verify_signature};
use serde_json::Value;

const SECRET: &str = "receiver-secret";
const FLUSH_TIMEOUT: Duration = Duration::from_secs(20);

/// One request as the receiver saw it; header names lowercased.
struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// A minimal HTTP/1.1 server: answers the n-th request with `statuses[n]` (200 once they run
/// out), one request per connection. With `hold`, it waits for a message before each answer.
struct TestReceiver {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl TestReceiver {
    fn start(statuses: &[u16], hold: Option<mpsc::Receiver<()>>) -> TestReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/drydock", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let statuses = statuses.to_vec();
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let request = read_request(&stream);
                if let Some(hold) = &hold {
                    let _ = hold.recv();
                }
                let mut seen = seen.lock().unwrap();
                let status = statuses.get(seen.len()).copied().unwrap_or(200);
                seen.push(request);
                drop(seen);
                let answer = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        TestReceiver { url, requests }
    }

    fn config(&self, events: &[&str]) -> WebhookConfig {
        WebhookConfig {
            url: self.url.clone(),
            secret_file: None,
            secret: Some(SECRET.into()),
            events: events.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn requests(&self) -> std::sync::MutexGuard<'_, Vec<Request>> {
        self.requests.lock().unwrap()
    }
}

fn read_request(stream: &TcpStream) -> Request {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap().to_string(), parts.next().unwrap().to_string());
    let mut headers = HashMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let Some((name, value)) = line.trim_end().split_once(':') else { break };
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let length: usize = headers["content-length"].parse().unwrap();
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    Request { method, path, headers, body }
}

fn fast_retries(attempts_max: u32) -> DeliverySettings {
    DeliverySettings { attempts_max, retry_delay_base: Duration::from_millis(20), ..DeliverySettings::default() }
}

fn event(kind: BackupEventKind) -> BackupEvent {
    BackupEvent {
        kind,
        team_id: 1,
        resource_type: ResourceType::Droplet,
        resource_id: "12".into(),
        resource_name: "web-1 \"prod\"".into(),
        window_start: "2026-03-01T04:00:00Z".into(),
        window_end: "2026-03-01T08:00:00Z".into(),
        at: "2026-03-01T04:31:07Z".into(),
        attempts: 1,
        action_id: Some(40),
        image_id: Some(7),
        size_bytes: Some(1 << 30),
        duration_secs: Some(12.5),
        tags: vec!["daily".into()],
        error: None,
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn a_failed_attempt_is_retried_and_every_attempt_is_signed() {
    let receiver = TestReceiver::start(&[500], None);
    let webhooks = Webhooks::start_with(&[receiver.config(&["backup.succeeded"])], fast_retries(6)).unwrap();
    webhooks.send(event(BackupEventKind::Succeeded));
    assert!(webhooks.flush(FLUSH_TIMEOUT));

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "one refused attempt, one delivered");
    for request in requests.iter() {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/hooks/drydock"));
        assert_eq!(request.header("content-type"), "application/json");
        assert!(request.header("user-agent").starts_with("drydock/"), "{}", request.header("user-agent"));
        assert_eq!(request.header("x-drydock-event"), "backup.succeeded");
        let timestamp = request.header("x-drydock-timestamp");
        assert!((unix_now() - timestamp.parse::<i64>().unwrap()).abs() < 60);
        let signature = request.header("x-drydock-signature");
        assert!(verify_signature(SECRET.as_bytes(), timestamp, &request.body, signature), "{signature}");
        assert!(!verify_signature(b"wrong", timestamp, &request.body, signature));

        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["id"], request.header("x-drydock-delivery"));
        assert_eq!(body["event"], "backup.succeeded");
        assert!(body["created_at"].as_str().unwrap().ends_with('Z'), "{}", body["created_at"]);
        assert_eq!(body["data"]["kind"], "succeeded");
        assert_eq!(body["data"]["resource_type"], "droplet");
        assert_eq!(body["data"]["resource_name"], "web-1 \"prod\"");
        assert_eq!(body["data"]["size_bytes"], 1u64 << 30);
        assert_eq!(body["data"]["tags"], serde_json::json!(["daily"]));
    }
    assert_eq!(requests[0].body, requests[1].body, "a retry sends the same delivery");
    assert_eq!(requests[0].header("x-drydock-delivery").len(), 36, "a uuid");
}

#[test]
fn retries_stop_after_the_last_attempt() {
    let receiver = TestReceiver::start(&[503, 429, 500, 500], None);
    let webhooks = Webhooks::start_with(&[receiver.config(&["backup.failed"])], fast_retries(3)).unwrap();
    webhooks.send(event(BackupEventKind::Failed));
    assert!(webhooks.flush(FLUSH_TIMEOUT));
    assert_eq!(receiver.requests().len(), 3);
}

#[test]
fn a_client_error_is_not_retried() {
    let receiver = TestReceiver::start(&[404], None);
    let webhooks = Webhooks::start_with(&[receiver.config(&["backup.missed"])], fast_retries(6)).unwrap();
    webhooks.send(event(BackupEventKind::Missed));
    assert!(webhooks.flush(FLUSH_TIMEOUT));
    assert_eq!(receiver.requests().len(), 1);
}

#[test]
fn an_unreachable_receiver_is_given_up_on() {
    let closed_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = WebhookConfig {
        url: format!("http://127.0.0.1:{closed_port}/"),
        secret_file: None,
        secret: Some(SECRET.into()),
        events: vec!["backup.failed".into()],
    };
    let webhooks = Webhooks::start_with(&[config], fast_retries(3)).unwrap();
    webhooks.send(event(BackupEventKind::Failed));
    assert!(webhooks.flush(FLUSH_TIMEOUT));
}

#[test]
fn each_url_gets_only_the_events_it_asked_for() {
    let failures = TestReceiver::start(&[], None);
    let everything = TestReceiver::start(&[], None);
    // A `[[webhooks]]` table without `events` asks for all of them.
    let everything_config: WebhookConfig =
        toml::from_str(&format!("url = \"{}\"\nsecret = \"{SECRET}\"\n", everything.url)).unwrap();
    let configs = [failures.config(&["backup.failed", "backup.missed"]), everything_config];
    let webhooks = Webhooks::start_with(&configs, fast_retries(1)).unwrap();

    for kind in [BackupEventKind::Succeeded, BackupEventKind::Failed, BackupEventKind::Missed] {
        webhooks.send(event(kind));
    }
    assert!(webhooks.flush(FLUSH_TIMEOUT));
    let names = |receiver: &TestReceiver| -> Vec<String> {
        receiver.requests().iter().map(|r| r.header("x-drydock-event").to_string()).collect()
    };
    assert_eq!(names(&failures), ["backup.failed", "backup.missed"]);
    assert_eq!(names(&everything), ["backup.succeeded", "backup.failed", "backup.missed"]);
}

#[test]
fn a_stuck_receiver_never_blocks_the_sender() {
    let (release, hold) = mpsc::channel();
    let receiver = TestReceiver::start(&[], Some(hold));
    let settings = DeliverySettings { queue_depth: 1, ..fast_retries(1) };
    let webhooks = Webhooks::start_with(&[receiver.config(&["backup.succeeded"])], settings).unwrap();

    let started = Instant::now();
    for _ in 0..20 {
        webhooks.send(event(BackupEventKind::Succeeded));
    }
    assert!(started.elapsed() < Duration::from_secs(1), "send waited: {:?}", started.elapsed());
    assert!(!webhooks.flush(Duration::from_millis(50)), "the receiver holds the first delivery");
    for _ in 0..20 {
        let _ = release.send(());
    }
    assert!(webhooks.flush(FLUSH_TIMEOUT));
    // One in the worker's hands and one in the queue at most; the rest were dropped.
    let delivered = receiver.requests().len();
    assert!((1..=2).contains(&delivered), "{delivered} delivered");
}
