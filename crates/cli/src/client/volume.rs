//! `drydock volume list|get|register|delete|snapshot`.

use anyhow::Result;
use serde_json::{Value, json};

use super::table::{Table, bytes, cell};
use super::{Client, droplet, field, print, print_list, snapshot};
use crate::args::Cli;
use crate::client_args::VolumeCommand;

pub fn run(cli: &Cli, client: &Client, command: &VolumeCommand) -> Result<()> {
    match command {
        VolumeCommand::List => print_list(cli, client.list("/v2/volumes", "volumes", &[])?, table),
        VolumeCommand::Get { id } => show(cli, &field(client.get(&format!("/v2/volumes/{id}"))?, "volume")?),
        VolumeCommand::Register { name, disk, description, tags } => {
            let mut body = json!({"name": name, "disk": droplet::disk(disk)?, "tags": tags});
            if let Some(region) = &disk.region {
                body["region"] = region.clone().into();
            }
            if let Some(description) = description {
                body["description"] = description.clone().into();
            }
            show(cli, &field(client.post("/v2/volumes", &body)?, "volume")?)
        }
        VolumeCommand::Delete { id } => {
            client.delete(&format!("/v2/volumes/{id}"))?;
            if cli.json {
                outln!("{}", json!({"deleted": true, "id": id}));
            } else {
                eprintln!("drydock: volume {id} deleted (its snapshots remain)");
            }
            Ok(())
        }
        VolumeCommand::Snapshot { id, name } => {
            // The daemon answers when the snapshot is stored (or after a minute, still running).
            let answer = client.post(&format!("/v2/volumes/{id}/snapshots"), &json!({"name": name}))?;
            snapshot::show(cli, &field(answer, "snapshot")?)
        }
    }
}

fn show(cli: &Cli, volume: &Value) -> Result<()> {
    print(cli, volume, || table(std::slice::from_ref(volume)))
}

fn table(volumes: &[Value]) -> Table {
    let mut table = Table::new(&["ID", "Name", "Size", "Region", "Path", "Droplet IDs", "Tags"]);
    for v in volumes {
        let disk = &v["drydock"]["disk"];
        table.row(vec![
            cell(&v["id"]),
            cell(&v["name"]),
            bytes(&disk["size_bytes"]),
            cell(&v["region"]["slug"]),
            cell(&disk["path"]),
            cell(&v["droplet_ids"]),
            cell(&v["tags"]),
        ]);
    }
    table
}
