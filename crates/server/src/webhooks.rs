//! Webhooks: each backup event the scheduler reports is POSTed as signed JSON to the configured
//! URLs, off the scheduler's path and retried, so a slow or broken receiver never delays a backup.
//!
//! ```toml
//! [[webhooks]]
//! url = "https://hooks.example.com/drydock"
//! secret_file = "/etc/drydock/webhook.secret"   # or: secret = "…"
//! events = ["backup.failed", "backup.missed"]    # default: all three
//! ```
//!
//! A delivery is `POST <url>` with the body
//! `{"id": "<uuid>", "event": "backup.failed", "created_at": "<RFC 3339>", "data": {…the event…}}`
//! and the headers `X-Drydock-Event`, `X-Drydock-Delivery` (the id, the same on every retry, so
//! a receiver can drop duplicates), `X-Drydock-Timestamp` (unix seconds when this attempt was
//! sent) and `X-Drydock-Signature: sha256=<hex>`, the HMAC-SHA256 with the shared secret of
//! `"<timestamp>.<body>"`. Signing the timestamp with the body stops replays: a receiver checks
//! the signature with [`verify_signature`] and refuses a timestamp more than a few minutes from
//! its own clock, so a captured request cannot be sent again later.
//!
//! Each URL has its own worker thread and bounded queue: an answer 2xx is delivered; a
//! connection error, 5xx or 429 is retried after 1 s, 2 s, 4 s, … ([`DeliverySettings`]); any
//! other answer (a redirect, a 4xx) is given up with a warning, since sending it again would get
//! the same answer. When a queue is full, new events for that URL are dropped with a warning.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use drydock_jobs::{BackupEvent, BackupEventKind, EventSink};
use ring::hmac;
use serde::{Deserialize, Serialize};
use ureq::Agent;
use ureq::http::Uri;

use crate::error::{Error, Result};

const EVENT_KINDS: [BackupEventKind; 3] =
    [BackupEventKind::Succeeded, BackupEventKind::Failed, BackupEventKind::Missed];
const SIGNATURE_PREFIX: &str = "sha256=";
const USER_AGENT: &str = concat!("drydock/", env!("CARGO_PKG_VERSION"));

/// One `[[webhooks]]` table of the configuration file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// A file holding the secret (trailing newline ignored); better than `secret` in the file.
    pub secret_file: Option<PathBuf>,
    pub secret: Option<String>,
    /// Event names to send; all three when left out.
    #[serde(default = "all_event_names")]
    pub events: Vec<String>,
}

fn all_event_names() -> Vec<String> {
    EVENT_KINDS.iter().map(|kind| kind.name().to_string()).collect()
}

/// The secret stays out of logs and error messages.
impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret_file", &self.secret_file)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("events", &self.events)
            .finish()
    }
}

impl WebhookConfig {
    /// Checks the URL, the event names and that one secret is given, without reading the secret
    /// file. The message names the webhook: `webhook https://x.example: events: unknown event …`.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let name = receiver_name(&self.url)?;
        let problem = |why: &str| Err(format!("webhook {name}: {why}"));
        match (&self.secret, &self.secret_file) {
            (None, None) => return problem("secret_file (or secret) is needed to sign deliveries"),
            (Some(_), Some(_)) => return problem("secret and secret_file are both set; keep one"),
            (Some(secret), None) if secret.is_empty() => return problem("secret is empty"),
            _ => {}
        }
        if self.events.is_empty() {
            return problem("events is empty; leave it out to send all events");
        }
        parse_events(&self.events).map_err(|why| format!("webhook {name}: {why}"))?;
        Ok(())
    }

    fn read_secret(&self) -> Result<Vec<u8>> {
        let Some(path) = &self.secret_file else {
            return Ok(self.secret.clone().unwrap_or_default().into_bytes());
        };
        let bytes =
            std::fs::read(path).map_err(|e| Error::io(format!("reading webhook secret file {}", path.display()), e))?;
        let secret = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let secret = secret.strip_suffix(b"\r").unwrap_or(secret);
        if secret.is_empty() {
            return Err(Error::Config(format!("webhook secret file {} is empty", path.display())));
        }
        Ok(secret.to_vec())
    }
}

/// `scheme://host[:port]` of a webhook URL: enough to tell receivers apart in logs, without
/// the path or query, which often carry a token (Slack-style URLs).
fn receiver_name(url: &str) -> std::result::Result<String, String> {
    let bad = |why: &str| format!("webhook url {url:?} {why}");
    let uri = url.parse::<Uri>().map_err(|_| bad("is not a URL"))?;
    let scheme = uri.scheme_str().unwrap_or_default();
    if scheme != "http" && scheme != "https" {
        return Err(bad("must start with http:// or https://"));
    }
    let host = uri.host().filter(|host| !host.is_empty()).ok_or_else(|| bad("names no host"))?;
    Ok(match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

fn parse_events(names: &[String]) -> std::result::Result<Vec<BackupEventKind>, String> {
    names
        .iter()
        .map(|name| {
            EVENT_KINDS.into_iter().find(|kind| kind.name() == name).ok_or_else(|| {
                format!("events: unknown event {name:?}; use backup.succeeded, backup.failed or backup.missed")
            })
        })
        .collect()
}

/// How hard deliveries are tried. The defaults suit a daemon; tests shorten the delays.
#[derive(Clone, Debug)]
pub struct DeliverySettings {
    /// Attempts per delivery, the first included.
    pub attempts_max: u32,
    /// The wait before the second attempt; it doubles before each further one.
    pub retry_delay_base: Duration,
    /// Deliveries waiting per URL; more are dropped.
    pub queue_depth: usize,
    pub connect_timeout: Duration,
    /// For one attempt, from connecting to reading the answer's status.
    pub request_timeout: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            attempts_max: 6,
            retry_delay_base: Duration::from_secs(1),
            queue_depth: 1000,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
        }
    }
}

impl DeliverySettings {
    /// The wait before `attempt` (2, 3, …): base × 2^(attempt − 2).
    fn delay_before(&self, attempt: u32) -> Duration {
        self.retry_delay_base.saturating_mul(1 << attempt.saturating_sub(2).min(16))
    }
}

/// The webhooks of a daemon: an [`EventSink`] that queues each event for every URL that wants it.
pub struct Webhooks {
    endpoints: Vec<Endpoint>,
    pending: Arc<Pending>,
    queue_depth: usize,
}

/// A configured URL as the sending side sees it.
struct Endpoint {
    name: String,
    events: Vec<BackupEventKind>,
    queue: SyncSender<Delivery>,
}

/// One event on its way to one URL.
struct Delivery {
    id: String,
    event: &'static str,
    body: Arc<[u8]>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    event: &'static str,
    created_at: String,
    data: &'a BackupEvent,
}

impl Webhooks {
    /// Checks the configuration, reads the secrets and starts one delivery thread per URL.
    /// Dropping the result lets the threads finish their queues and end.
    pub fn start(webhooks: &[WebhookConfig]) -> Result<Webhooks> {
        Webhooks::start_with(webhooks, DeliverySettings::default())
    }

    pub fn start_with(webhooks: &[WebhookConfig], settings: DeliverySettings) -> Result<Webhooks> {
        for webhook in webhooks {
            webhook.validate().map_err(Error::Config)?;
        }
        let pending = Arc::new(Pending::default());
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            // A redirected POST may become a GET elsewhere: the URL should be the final one.
            .max_redirects(0)
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_global(Some(settings.request_timeout))
            .user_agent(USER_AGENT)
            .build()
            .into();
        let mut endpoints = Vec::new();
        for (index, webhook) in webhooks.iter().enumerate() {
            let name = receiver_name(&webhook.url).map_err(Error::Config)?;
            let (queue, deliveries) = std::sync::mpsc::sync_channel(settings.queue_depth.max(1));
            let worker = Worker {
                name: name.clone(),
                url: webhook.url.clone(),
                key: hmac::Key::new(hmac::HMAC_SHA256, &webhook.read_secret()?),
                agent: agent.clone(),
                settings: settings.clone(),
                pending: pending.clone(),
            };
            std::thread::Builder::new()
                .name(format!("webhook-{index}"))
                .spawn(move || worker.run(deliveries))
                .map_err(|e| Error::io(format!("starting the delivery thread for webhook {name}"), e))?;
            endpoints.push(Endpoint { name, events: parse_events(&webhook.events).map_err(Error::Config)?, queue });
        }
        Ok(Webhooks { endpoints, pending, queue_depth: settings.queue_depth })
    }

    /// Waits until every queued delivery has been delivered or given up, at most `timeout`;
    /// false if some were still under way (for a graceful shutdown, and tests).
    pub fn flush(&self, timeout: Duration) -> bool {
        self.pending.wait_idle(timeout)
    }
}

impl EventSink for Webhooks {
    fn send(&self, event: BackupEvent) {
        let wanted: Vec<&Endpoint> = self.endpoints.iter().filter(|e| e.events.contains(&event.kind)).collect();
        if wanted.is_empty() {
            return;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let name = event.kind.name();
        let envelope = Envelope { id: &id, event: name, created_at: now_rfc3339(), data: &event };
        let body: Arc<[u8]> = match serde_json::to_vec(&envelope) {
            Ok(body) => body.into(),
            Err(e) => {
                tracing::warn!("webhook event {name} {id} cannot be encoded, not sent: {e}");
                return;
            }
        };
        for endpoint in wanted {
            self.pending.add();
            let delivery = Delivery { id: id.clone(), event: name, body: body.clone() };
            match endpoint.queue.try_send(delivery) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.pending.done();
                    tracing::warn!(
                        "webhook {}: {} deliveries are waiting already; dropped {name} {id}",
                        endpoint.name,
                        self.queue_depth
                    );
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.pending.done();
                    tracing::warn!("webhook {}: its delivery thread has stopped; dropped {name} {id}", endpoint.name);
                }
            }
        }
    }
}

fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second()).unwrap_or(now).to_string()
}

/// The thread that delivers to one URL, one delivery at a time.
struct Worker {
    name: String,
    url: String,
    key: hmac::Key,
    agent: Agent,
    settings: DeliverySettings,
    pending: Arc<Pending>,
}

/// What one attempt's answer means.
#[derive(Debug, PartialEq)]
enum Verdict {
    Delivered,
    /// Worth another attempt: the receiver is down, overloaded or rate limiting.
    Retry(String),
    /// Another attempt would get the same answer.
    Refused(String),
}

fn verdict_for_status(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        429 | 500..=599 => Verdict::Retry(format!("answered {status}")),
        _ => Verdict::Refused(format!("answered {status}")),
    }
}

impl Worker {
    fn run(self, deliveries: Receiver<Delivery>) {
        for delivery in deliveries {
            self.deliver(&delivery);
            self.pending.done();
        }
    }

    fn deliver(&self, delivery: &Delivery) {
        let (name, event, id) = (&self.name, delivery.event, &delivery.id);
        let attempts_max = self.settings.attempts_max.max(1);
        for attempt in 1..=attempts_max {
            if attempt > 1 {
                std::thread::sleep(self.settings.delay_before(attempt));
            }
            match self.attempt(delivery) {
                Verdict::Delivered => {
                    tracing::debug!("webhook {name}: delivered {event} {id} (attempt {attempt})");
                    return;
                }
                Verdict::Refused(why) => {
                    tracing::warn!("webhook {name}: gave up on {event} {id}: {why}");
                    return;
                }
                Verdict::Retry(why) if attempt == attempts_max => {
                    tracing::warn!("webhook {name}: gave up on {event} {id} after {attempt} attempts: {why}");
                }
                Verdict::Retry(why) => {
                    let delay = self.settings.delay_before(attempt + 1);
                    tracing::info!(
                        "webhook {name}: attempt {attempt} of {event} {id} failed ({why}); retry in {delay:?}"
                    );
                }
            }
        }
    }

    fn attempt(&self, delivery: &Delivery) -> Verdict {
        let timestamp = jiff::Timestamp::now().as_second().to_string();
        let signature = sign(&self.key, &timestamp, &delivery.body);
        let answer = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("X-Drydock-Event", delivery.event)
            .header("X-Drydock-Delivery", &delivery.id)
            .header("X-Drydock-Timestamp", &timestamp)
            .header("X-Drydock-Signature", &signature)
            .send(&delivery.body[..]);
        match answer {
            Ok(response) => verdict_for_status(response.status().as_u16()),
            Err(e) => Verdict::Retry(e.to_string()),
        }
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `"<timestamp>.<body>"`.
fn sign(key: &hmac::Key, timestamp: &str, body: &[u8]) -> String {
    let tag = hmac::sign(key, &signed_message(timestamp, body));
    let hex: String = tag.as_ref().iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{SIGNATURE_PREFIX}{hex}")
}

fn signed_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    [timestamp.as_bytes(), b".", body].concat()
}

/// For receivers: whether `signature` (the `X-Drydock-Signature` header) was made with `secret`
/// over `timestamp` (the `X-Drydock-Timestamp` header, verbatim) and the raw request body. The
/// comparison takes constant time. A receiver should also refuse timestamps more than about five
/// minutes from its own clock, and ids (`X-Drydock-Delivery`) it has already handled.
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(tag) = signature.strip_prefix(SIGNATURE_PREFIX).and_then(decode_hex) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, &signed_message(timestamp, body), &tag).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    // Hex digits only: from_str_radix alone would also take a sign ("+f").
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

/// Deliveries queued or under way, so [`Webhooks::flush`] can wait for none.
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    idle: Condvar,
}

impl Pending {
    fn add(&self) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }

    fn done(&self) {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.idle.notify_all();
        }
    }

    fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while *count > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            count = self.idle.wait_timeout(count, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: &str) -> WebhookConfig {
        WebhookConfig { url: url.into(), secret_file: None, secret: Some("s3cret".into()), events: all_event_names() }
    }

    fn problem(config: WebhookConfig) -> String {
        config.validate().unwrap_err()
    }

    #[test]
    fn a_table_without_events_sends_all_three() {
        let config: WebhookConfig = toml::from_str("url = \"https://x.example/h\"\nsecret = \"k\"\n").unwrap();
        assert_eq!(config.events, ["backup.succeeded", "backup.failed", "backup.missed"]);
        assert_eq!(config.validate(), Ok(()));
        let typo = toml::from_str::<WebhookConfig>("url = \"https://x.example\"\nsecret = \"k\"\nevent = []\n");
        assert!(typo.unwrap_err().to_string().contains("event"));
    }

    #[test]
    fn bad_webhooks_are_refused_with_the_webhook_and_field_named() {
        assert_eq!(
            problem(webhook("ftp://x.example")),
            "webhook url \"ftp://x.example\" must start with http:// or https://"
        );
        assert_eq!(problem(webhook("not a url")), "webhook url \"not a url\" is not a URL");
        assert!(problem(webhook("/relative")).contains("must start with http://"));
        let secretless = WebhookConfig { secret: None, ..webhook("https://x.example/h") };
        assert_eq!(
            problem(secretless),
            "webhook https://x.example: secret_file (or secret) is needed to sign deliveries"
        );
        let both = WebhookConfig { secret_file: Some("/s".into()), ..webhook("https://x.example") };
        assert!(problem(both).contains("keep one"));
        let unknown = WebhookConfig { events: vec!["backup.done".into()], ..webhook("https://x.example") };
        assert_eq!(
            problem(unknown),
            "webhook https://x.example: events: unknown event \"backup.done\"; \
             use backup.succeeded, backup.failed or backup.missed"
        );
        let none = WebhookConfig { events: vec![], ..webhook("https://x.example") };
        assert!(problem(none).contains("events is empty"));
    }

    #[test]
    fn logs_name_the_receiver_without_path_or_query() {
        assert_eq!(receiver_name("https://hooks.example/T0/B1/XYZ?token=1").unwrap(), "https://hooks.example");
        assert_eq!(receiver_name("http://127.0.0.1:9000/h").unwrap(), "http://127.0.0.1:9000");
    }

    #[test]
    fn the_secret_file_is_read_without_its_newline_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "abc\n").unwrap();
        let config = WebhookConfig { secret: None, secret_file: Some(path.clone()), ..webhook("https://x.example") };
        assert_eq!(config.read_secret().unwrap(), b"abc");
        std::fs::write(&path, "\n").unwrap();
        assert!(config.read_secret().unwrap_err().to_string().contains("is empty"));
        assert!(!format!("{:?}", webhook("https://x.example")).contains("s3cret"));
    }

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"key");
        let signature = sign(&key, "1700000000", b"{}");
        // HMAC-SHA256("key", "1700000000.{}"), computed independently with openssl.
        assert_eq!(signature, "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae");
        assert!(verify_signature(b"key", "1700000000", b"{}", &signature));
        assert!(!verify_signature(b"key", "1700000001", b"{}", &signature));
        assert!(!verify_signature(b"key", "1700000000", b"{ }", &signature));
        assert!(!verify_signature(b"other", "1700000000", b"{}", &signature));
        assert!(!verify_signature(b"key", "1700000000", b"{}", &signature["sha256=".len()..]));
        assert!(!verify_signature(b"key", "1700000000", b"{}", "sha256=zz"));
        assert_eq!(decode_hex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("+f"), None);
        assert_eq!(decode_hex("abc"), None);
    }

    #[test]
    fn server_errors_and_rate_limits_are_retried_other_answers_are_final() {
        assert_eq!(verdict_for_status(204), Verdict::Delivered);
        assert!(matches!(verdict_for_status(500), Verdict::Retry(_)));
        assert!(matches!(verdict_for_status(503), Verdict::Retry(_)));
        assert!(matches!(verdict_for_status(429), Verdict::Retry(_)));
        assert!(matches!(verdict_for_status(404), Verdict::Refused(_)));
        assert!(matches!(verdict_for_status(301), Verdict::Refused(_)));
    }

    #[test]
    fn retry_delays_double_from_the_base() {
        let settings = DeliverySettings::default();
        let delays: Vec<u64> = (2..=6).map(|attempt| settings.delay_before(attempt).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16]);
    }
}
