//! `drydock snapshot create|list|get|delete`.

use anyhow::{Result, bail};
use drydock_engine::CancelToken;
use serde_json::{Value, json};

use super::table::{Table, cell, gigabytes, time};
use super::{Client, action, field, print, print_list};
use crate::args::Cli;
use crate::client_args::SnapshotCommand;

pub fn run(cli: &Cli, client: &Client, command: &SnapshotCommand, cancel: &CancelToken) -> Result<()> {
    match command {
        SnapshotCommand::Create { droplet, name, power_off, wait } => {
            let mut body = json!({"type": "snapshot"});
            if let Some(name) = name {
                body["name"] = name.clone().into();
            }
            if *power_off {
                body["power_off"] = true.into();
            }
            let started = field(client.post(&format!("/v2/droplets/{droplet}/actions"), &body)?, "action")?;
            if !wait {
                return action::show(cli, &started);
            }
            action::wait(client, action::id_of(&started)?, cancel)?;
            let Some(image) = started["drydock"]["image_id"].as_i64() else {
                bail!("the daemon did not say which snapshot action {} makes", action::id_of(&started)?);
            };
            show(cli, &field(client.get(&format!("/v2/snapshots/{image}"))?, "snapshot")?)
        }
        SnapshotCommand::List { droplet: Some(droplet), .. } => {
            let mut snapshots = client.list(&format!("/v2/droplets/{droplet}/snapshots"), "snapshots", &[])?;
            // This list names no resource: it is the droplet's own.
            if !cli.json {
                for snapshot in &mut snapshots {
                    snapshot["resource_id"] = droplet.to_string().into();
                    snapshot["resource_type"] = "droplet".into();
                }
            }
            print_list(cli, snapshots, table)
        }
        SnapshotCommand::List { droplet: None, resource_type } => {
            let query: Vec<_> = resource_type.iter().map(|t| ("resource_type", t.clone())).collect();
            print_list(cli, client.list("/v2/snapshots", "snapshots", &query)?, table)
        }
        SnapshotCommand::Get { id } => show(cli, &field(client.get(&format!("/v2/snapshots/{id}"))?, "snapshot")?),
        SnapshotCommand::Delete { id } => {
            client.delete(&format!("/v2/snapshots/{id}"))?;
            if cli.json {
                outln!("{}", json!({"deleted": true, "id": id}));
            } else {
                eprintln!("drydock: snapshot {id} deleted");
            }
            Ok(())
        }
    }
}

pub fn show(cli: &Cli, snapshot: &Value) -> Result<()> {
    print(cli, snapshot, || table(std::slice::from_ref(snapshot)))
}

fn table(snapshots: &[Value]) -> Table {
    let mut table = Table::new(&[
        "ID",
        "Name",
        "Created At",
        "Regions",
        "Resource ID",
        "Resource Type",
        "Min Disk Size",
        "Size",
        "Tags",
    ]);
    for s in snapshots {
        table.row(vec![
            cell(&s["id"]),
            cell(&s["name"]),
            time(&s["created_at"]),
            cell(&s["regions"]),
            cell(&s["resource_id"]),
            cell(&s["resource_type"]),
            gigabytes(&s["min_disk_size"]),
            gigabytes(&s["size_gigabytes"]),
            cell(&s["tags"]),
        ]);
    }
    table
}
