//! `drydock retention simulate`: which backups a policy would leave after N days, why each is
//! kept, and what they would cost. Computed here with the daemon's own rules (the
//! `drydock_schedule` crate), so no daemon is needed; `--json` prints what
//! `POST /drydock/v1/retention/simulate` answers.

use std::process::ExitCode;

use anyhow::{Result, bail};
use drydock_schedule::Policy;
use drydock_schedule::cost::{self, Prices};
use drydock_schedule::simulate::{self, Simulation};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::args::{Cli, RetentionCommand, SimulateArgs};
use crate::client::table::Table;
use crate::policy_args;

/// Where in each window a simulated backup is taken follows from this key, as a resource's id
/// does in the daemon. The API's simulator uses the same key, so both give the same times.
const SIMULATION_KEY: &str = "simulation";
/// A pebibyte: beyond it the estimate's bytes would no longer be exact.
const DATA_GIB_MAX: f64 = (1u64 << 20) as f64;
const GIB: f64 = (1u64 << 30) as f64;
const LOCAL_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S %Z";

pub fn run(cli: &Cli, command: &RetentionCommand) -> Result<ExitCode> {
    match command {
        RetentionCommand::Simulate(args) => simulate(cli, args)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn simulate(cli: &Cli, args: &SimulateArgs) -> Result<()> {
    let policy = Policy::from_json(&args.policy.to_json()?.unwrap_or(Value::Null))?;
    let start = match &args.start {
        Some(text) => parse_start(text)?,
        None => Timestamp::now(),
    };
    if !(1..=simulate::DAYS_MAX).contains(&args.days) {
        bail!("--days must be 1 to {}, not {}", simulate::DAYS_MAX, args.days);
    }
    if !(0.0..=DATA_GIB_MAX).contains(&args.data_gib) {
        bail!("--data-gib must be 0 to {DATA_GIB_MAX}, not {}", args.data_gib);
    }
    if !(0.0..=100.0).contains(&args.change_percent) {
        bail!("--change-percent must be 0 to 100, not {}", args.change_percent);
    }
    let data_bytes = (args.data_gib * GIB).round() as u64;
    let change = args.change_percent / 100.0;
    let prices = Prices::default();

    let simulation = simulate::simulate(&policy, SIMULATION_KEY, start, args.days)?;
    let estimate = cost::estimate(&policy, &simulation, data_bytes, change, &prices);
    let estimate = json!({
        "data_bytes": data_bytes,
        "change_per_backup": change,
        "stored_bytes": estimate.stored_bytes,
        "monthly_cost": estimate.monthly_cost,
        "currency": prices.currency,
    });
    if cli.json {
        let answer = json!({"policy": policy.to_json(), "simulation": simulation.to_json(), "estimate": estimate});
        return crate::view::print_json(&answer);
    }
    table(&policy, &simulation).print()?;
    summarize(&policy, &simulation, start, args, &estimate)
}

/// An RFC 3339 time, or a date meaning its midnight UTC.
fn parse_start(text: &str) -> Result<Timestamp> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    if let Ok(midnight) = text.parse::<Date>().and_then(|date| date.to_zoned(TimeZone::UTC)) {
        return Ok(midnight.timestamp());
    }
    bail!("--start must be an RFC 3339 time (2026-01-01T00:00:00Z) or a date (2026-01-01), not {text:?}")
}

/// The backups left at the end, oldest first, in the policy's local time.
fn table(policy: &Policy, simulation: &Simulation) -> Table {
    let mut table = Table::new(&["Taken At", "Tags", "Kept Because"]);
    for backup in &simulation.backups {
        let local = backup.taken_at.to_zoned(policy.tz.clone());
        let tags: Vec<&str> = backup.tags.iter().map(|tag| tag.as_str()).collect();
        let reasons: Vec<String> = backup.reasons.iter().map(ToString::to_string).collect();
        table.row(vec![local.strftime(LOCAL_TIME_FORMAT).to_string(), tags.join(","), reasons.join(", ")]);
    }
    table
}

/// The policy in words, what happened, and what it costs.
fn summarize(
    policy: &Policy,
    simulation: &Simulation,
    start: Timestamp,
    args: &SimulateArgs,
    estimate: &Value,
) -> Result<()> {
    let json = policy.to_json();
    let start = start.to_zoned(policy.tz.clone()).strftime(LOCAL_TIME_FORMAT).to_string();
    let (taken, pruned, kept) = (simulation.taken, simulation.pruned, simulation.backups.len());
    let bytes = |key: &str| estimate[key].as_u64().map(crate::view::bytes).unwrap_or_default();
    let (days, change_percent) = (args.days, args.change_percent);
    let monthly_cost = estimate["monthly_cost"].as_f64().unwrap_or(0.0);
    let currency = estimate["currency"].as_str().unwrap_or_default();
    outln!("");
    outln!("{}; keeps {}", policy_args::schedule(&json), policy_args::keeps(&json));
    outln!("{days} days from {start}: {taken} taken, {pruned} pruned, {kept} kept");
    outln!(
        "about {} stored for {} of data changing {change_percent}% per backup: {monthly_cost:.2} {currency} a month \
         at DigitalOcean's prices",
        bytes("stored_bytes"),
        bytes("data_bytes"),
    );
    Ok(())
}
