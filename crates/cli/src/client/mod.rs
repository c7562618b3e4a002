//! The client side of the daemon's API: one HTTP client ([`Client`]) and one module per verb
//! group. Commands are thin: build a request, call, print.

mod action;
mod backups;
mod droplet;
mod restore;
mod settings;
mod snapshot;
pub(crate) mod table;
mod usage;
mod volume;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use drydock_engine::CancelToken;
use serde_json::Value;
use ureq::Agent;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::args::Cli;
use crate::client_args::{ApiArgs, ClientCommand, DropletVerbs, VolumeVerbs};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A volume snapshot request is answered when the snapshot is done, up to 60 s later.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The API's largest page: fewer round trips when a list is followed to its end.
const PER_PAGE: u64 = 200;
/// Bound on the pages one list may take (a million items at `PER_PAGE`).
const PAGES_MAX: u64 = 5_000;
/// Error bodies that are not the API's JSON are quoted up to this length.
const QUOTED_BODY_CHARS_MAX: usize = 200;

pub fn run(cli: &Cli, command: &ClientCommand, cancel: &CancelToken) -> Result<ExitCode> {
    match command {
        ClientCommand::Droplet(remote) => match &remote.command {
            DropletVerbs::Machine(command) => droplet::run(cli, &Client::connect(&remote.api)?, command),
            DropletVerbs::Backups(command) => backups::droplet(cli, &Client::connect(&remote.api)?, command),
        },
        ClientCommand::Snapshot(remote) => snapshot::run(cli, &Client::connect(&remote.api)?, &remote.command, cancel),
        ClientCommand::Action(remote) => action::run(cli, &Client::connect(&remote.api)?, &remote.command, cancel),
        ClientCommand::Restore(args) => restore::run(cli, &Client::connect(&args.api)?, args, cancel),
        ClientCommand::Volume(remote) => match &remote.command {
            VolumeVerbs::Disk(command) => volume::run(cli, &Client::connect(&remote.api)?, command),
            VolumeVerbs::Backups(command) => backups::volume(cli, &Client::connect(&remote.api)?, command),
        },
        ClientCommand::Usage(args) => usage::run(cli, &Client::connect(&args.api)?, args),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// Talks to one daemon with one token.
pub struct Client {
    agent: Agent,
    base_url: String,
    authorization: String,
}

enum Method<'a> {
    Get(&'a [(&'a str, String)]),
    Post(&'a Value),
    Delete,
}

impl Client {
    pub fn connect(args: &ApiArgs) -> Result<Client> {
        let settings = settings::resolve(args)?;
        let Some(token) = settings.token else {
            bail!(
                "no API token: pass --token or set DRYDOCK_TOKEN (on the daemon's machine, \
                 `drydock token create --scopes '*'` makes one)"
            );
        };
        let mut tls = TlsConfig::builder();
        if let Some(path) = &settings.cacert {
            tls = tls.root_certs(RootCerts::new_with_certs(&read_certificates(path)?));
        }
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .user_agent(concat!("drydock-cli/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Client { agent, base_url: settings.api_url, authorization: format!("Bearer {token}") })
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.send(path, Method::Get(&[]))
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(path, Method::Post(body))
    }

    pub fn delete(&self, path: &str) -> Result<()> {
        self.send(path, Method::Delete).map(drop)
    }

    /// Every item of a paginated list, following pages until `meta.total` items are in.
    pub fn list(&self, path: &str, key: &str, query: &[(&str, String)]) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        for page in 1..=PAGES_MAX {
            let mut paged = query.to_vec();
            paged.push(("page", page.to_string()));
            paged.push(("per_page", PER_PAGE.to_string()));
            let mut body = self.send(path, Method::Get(&paged))?;
            let Value::Array(batch) = body[key].take() else {
                bail!("GET {path}: the answer holds no {key:?} list");
            };
            let total = body["meta"]["total"].as_u64().unwrap_or(0);
            let last_page = batch.is_empty() || body["links"]["pages"]["next"].is_null();
            items.extend(batch);
            if last_page || items.len() as u64 >= total {
                return Ok(items);
            }
        }
        bail!("GET {path}: more than {PAGES_MAX} pages")
    }

    fn send(&self, path: &str, method: Method) -> Result<Value> {
        let url = format!("{}{path}", self.base_url);
        let (verb, result) = match method {
            Method::Get(query) => (
                "GET",
                self.agent
                    .get(&url)
                    .header("Authorization", &self.authorization)
                    .query_pairs(query.iter().map(|(k, v)| (*k, v.as_str())))
                    .call(),
            ),
            Method::Post(body) => {
                ("POST", self.agent.post(&url).header("Authorization", &self.authorization).send_json(body))
            }
            Method::Delete => ("DELETE", self.agent.delete(&url).header("Authorization", &self.authorization).call()),
        };
        let mut response = result.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("{verb} {path}: reading the daemon's answer"))?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &text, verb, path));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{verb} {path}: the daemon's answer is not JSON"))
    }

    fn transport_error(&self, e: ureq::Error) -> anyhow::Error {
        let text = e.to_string();
        let hint = if text.contains("certificate") || text.contains("Certificate") {
            ": pass --cacert with the daemon's certificate (DATA_DIR/tls/cert.pem)"
        } else if text.contains("protocol") && self.base_url.starts_with("http://") {
            ": the daemon speaks HTTPS unless it runs with --plain-http"
        } else if text.contains("refused") {
            ": is `drydock serve` running there? (--api-url or DRYDOCK_API_URL)"
        } else {
            ""
        };
        anyhow!("cannot reach the daemon at {}: {text}{hint}", self.base_url)
    }
}

/// One line from the API's error body `{"id", "message", "request_id"}`.
fn api_error(status: u16, body: &str, verb: &str, path: &str) -> anyhow::Error {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let message = match parsed["message"].as_str() {
        Some(message) => message.trim_end_matches('.').to_string(),
        None if body.trim().is_empty() => "no explanation given".to_string(),
        None => body.trim().chars().take(QUOTED_BODY_CHARS_MAX).collect(),
    };
    let code = parsed["id"].as_str().map(|id| format!("{status} {id}")).unwrap_or_else(|| status.to_string());
    let hint = match status {
        401 => ": check the token (--token or DRYDOCK_TOKEN)",
        403 => ": the token lacks a scope (drydock token create --scopes …)",
        _ => "",
    };
    anyhow!("{message} ({code}, {verb} {path}){hint}")
}

fn read_certificates(path: &std::path::Path) -> Result<Vec<Certificate<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading the certificate {}", path.display()))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(certificate) =
            item.with_context(|| format!("{} is not a PEM file", path.display()))?
        {
            certificates.push(certificate);
        }
    }
    if certificates.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certificates)
}

/// `--json` prints the API's object (an array for lists); otherwise a table.
fn print(cli: &Cli, json: &Value, table: impl FnOnce() -> table::Table) -> Result<()> {
    if cli.json { crate::view::print_json(json) } else { table().print() }
}

/// A list: the array with `--json`, a table otherwise.
fn print_list(cli: &Cli, items: Vec<Value>, table: impl FnOnce(&[Value]) -> table::Table) -> Result<()> {
    if cli.json { crate::view::print_json(&items) } else { table(&items).print() }
}

/// Takes `key` out of an answer such as `{"droplet": {...}}`.
fn field(mut answer: Value, key: &str) -> Result<Value> {
    match answer[key].take() {
        Value::Null => bail!("the daemon's answer holds no {key:?}"),
        value => Ok(value),
    }
}

/// A path as the daemon should see it: absolute, as the daemon does not share our directory.
fn absolute(path: &std::path::Path) -> Result<String> {
    let absolute = std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    Ok(absolute.to_str().with_context(|| format!("{} is not valid UTF-8", path.display()))?.to_string())
}
