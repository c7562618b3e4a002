//! `drydock action get|wait`, and waiting for the actions other verbs start.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Result, bail};
use drydock_engine::CancelToken;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::table::{Table, cell, time};
use super::{Client, field, print};
use crate::args::Cli;
use crate::client_args::ActionCommand;

/// How often a running action is polled: quick enough for small snapshots, a trickle of
/// requests for long ones.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

pub fn run(cli: &Cli, client: &Client, command: &ActionCommand, cancel: &CancelToken) -> Result<()> {
    let action = match command {
        ActionCommand::Get { id } => get(client, *id)?,
        ActionCommand::Wait { id } => wait(client, *id, cancel)?,
    };
    show(cli, &action)
}

pub fn show(cli: &Cli, action: &Value) -> Result<()> {
    print(cli, action, || table(action))
}

fn table(a: &Value) -> Table {
    let mut table = Table::new(&[
        "ID",
        "Status",
        "Type",
        "Started At",
        "Completed At",
        "Resource ID",
        "Resource Type",
        "Region",
        "Progress",
        "Error",
    ]);
    table.row(vec![
        cell(&a["id"]),
        cell(&a["status"]),
        cell(&a["type"]),
        time(&a["started_at"]),
        time(&a["completed_at"]),
        cell(&a["drydock"]["resource_id"]),
        cell(&a["resource_type"]),
        cell(&a["region_slug"]),
        format!("{}%", cell(&a["drydock"]["progress"]["percent"])),
        cell(&a["drydock"]["error"]),
    ]);
    table
}

fn get(client: &Client, id: i64) -> Result<Value> {
    field(client.get(&format!("/v2/actions/{id}"))?, "action")
}

/// The id of an action as the API gives it.
pub fn id_of(action: &Value) -> Result<i64> {
    match action["id"].as_i64() {
        Some(id) => Ok(id),
        None => bail!("the daemon's answer names no action id"),
    }
}

/// Polls the action until it completes, with a progress bar when standard error is a
/// terminal. An errored action is an error carrying the daemon's reason.
pub fn wait(client: &Client, id: i64, cancel: &CancelToken) -> Result<Value> {
    let bar = Bar::new(id);
    loop {
        let action = get(client, id)?;
        let kind = cell(&action["type"]);
        match action["status"].as_str() {
            Some("completed") => {
                bar.finish();
                return Ok(action);
            }
            Some("errored") => {
                bar.finish();
                let reason = action["drydock"]["error"].as_str().unwrap_or("no reason given");
                bail!("action {id} ({kind}) errored: {reason}");
            }
            _ => bar.show(&kind, &action["drydock"]["progress"]),
        }
        if cancel.is_cancelled() {
            bar.finish();
            bail!("stopped waiting; action {id} goes on in the daemon (`drydock action wait {id}` waits again)");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Bytes done of bytes total, on standard error when it is a terminal.
struct Bar(Option<ProgressBar>);

impl Bar {
    fn new(id: i64) -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let template =
            format!("action {id} {{msg}} {{bar:30}} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} eta {{eta}}");
        bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
        Bar(Some(bar))
    }

    fn show(&self, kind: &str, progress: &Value) {
        if let Some(bar) = &self.0 {
            bar.set_message(kind.to_string());
            bar.set_length(progress["bytes_total"].as_u64().unwrap_or(0));
            bar.set_position(progress["bytes_done"].as_u64().unwrap_or(0));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
