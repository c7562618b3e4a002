//! `drydock usage`: what the team's images take up per droplet, volume and region, what
//! deleting them would free, and what they cost a month (`GET /drydock/v1/usage`). Fields the
//! daemon leaves out print as empty cells.

use anyhow::Result;
use serde_json::Value;

use super::table::{Table, bytes, cell};
use super::{Client, field};
use crate::args::Cli;
use crate::client_args::UsageArgs;

pub fn run(cli: &Cli, client: &Client, args: &UsageArgs) -> Result<()> {
    let usage = field(client.get("/drydock/v1/usage")?, "usage")?;
    if cli.json {
        return crate::view::print_json(&usage);
    }
    let currency = usage["currency"].as_str().unwrap_or_default();
    resources_table(list(&usage["resources"]), currency).print()?;
    outln!("");
    regions_table(list(&usage["regions"]), currency).print()?;
    if args.images {
        outln!("");
        images_table(list(&usage["images"])).print()?;
    }
    outln!("");
    outln!("{}", totals(&usage["totals"], currency));
    Ok(())
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn resources_table(resources: &[Value], currency: &str) -> Table {
    let mut table =
        Table::new(&["Type", "ID", "Name", "Backups", "Snapshots", "Logical", "Stored", "Frees", "Monthly Cost"]);
    for r in resources {
        table.row(vec![
            cell(&r["resource_type"]),
            cell(&r["resource_id"]),
            cell(&r["name"]),
            cell(&r["backups"]),
            cell(&r["snapshots"]),
            bytes(&r["logical_bytes"]),
            bytes(&r["stored_bytes"]),
            bytes(&r["frees_bytes"]),
            money(&r["monthly_cost"], currency),
        ]);
    }
    table
}

fn regions_table(regions: &[Value], currency: &str) -> Table {
    let mut table = Table::new(&["Region", "Logical", "Stored", "Frees", "Monthly Cost"]);
    for r in regions {
        table.row(vec![
            cell(&r["region"]),
            bytes(&r["logical_bytes"]),
            bytes(&r["stored_bytes"]),
            bytes(&r["frees_bytes"]),
            money(&r["monthly_cost"], currency),
        ]);
    }
    table
}

/// Each copy of each image, and what deleting that copy frees at the next gc.
fn images_table(images: &[Value]) -> Table {
    let mut table =
        Table::new(&["Image ID", "Kind", "Resource Type", "Resource ID", "Region", "Logical", "Stored", "Frees"]);
    for i in images {
        table.row(vec![
            cell(&i["image_id"]),
            cell(&i["kind"]),
            cell(&i["resource_type"]),
            cell(&i["resource_id"]),
            cell(&i["region"]),
            bytes(&i["logical_bytes"]),
            bytes(&i["stored_bytes"]),
            bytes(&i["frees_bytes"]),
        ]);
    }
    table
}

/// "total: 12 images, 30.0 GiB logical, 4.2 GiB stored, deleting all frees 4.2 GiB, 0.13 USD a
/// month", leaving out what the daemon did not say.
fn totals(totals: &Value, currency: &str) -> String {
    let mut parts = Vec::new();
    if let Some(images) = totals["images"].as_u64() {
        parts.push(format!("{images} images"));
    }
    for (key, words) in [("logical_bytes", "logical"), ("stored_bytes", "stored")] {
        if totals[key].is_u64() {
            parts.push(format!("{} {words}", bytes(&totals[key])));
        }
    }
    if totals["frees_bytes"].is_u64() {
        parts.push(format!("deleting all frees {}", bytes(&totals["frees_bytes"])));
    }
    if totals["monthly_cost"].is_number() {
        parts.push(format!("{} a month", money(&totals["monthly_cost"], currency)));
    }
    format!("total: {}", parts.join(", "))
}

/// "0.13 USD"; cents, as a bill shows them.
fn money(value: &Value, currency: &str) -> String {
    match value.as_f64() {
        Some(amount) => format!("{amount:.2} {currency}").trim_end().to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{money, totals};

    #[test]
    fn totals_leave_out_what_is_missing() {
        let full = json!({"images": 3, "logical_bytes": 3u64 << 30, "stored_bytes": 1u64 << 30,
                          "frees_bytes": 512u64 << 20, "monthly_cost": 0.031});
        assert_eq!(
            totals(&full, "USD"),
            "total: 3 images, 3.0 GiB logical, 1.0 GiB stored, deleting all frees 512.0 MiB, 0.03 USD a month"
        );
        assert_eq!(totals(&json!({"stored_bytes": 1024}), "USD"), "total: 1.0 KiB stored");
    }

    #[test]
    fn money_is_in_cents_and_empty_when_missing() {
        assert_eq!(money(&json!(1.004), "USD"), "1.00 USD");
        assert_eq!(money(&json!(null), "USD"), "");
        assert_eq!(money(&json!(2), ""), "2.00");
    }
}
