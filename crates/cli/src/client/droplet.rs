//! `drydock droplet list|get|register|delete`.

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::table::{Table, bytes, cell};
use super::{Client, absolute, field, print, print_list};
use crate::args::Cli;
use crate::client_args::{DiskArgs, DropletCommand, PowerArgs};

pub fn run(cli: &Cli, client: &Client, command: &DropletCommand) -> Result<()> {
    match command {
        DropletCommand::List { tag } => {
            let query: Vec<_> = tag.iter().map(|t| ("tag_name", t.clone())).collect();
            print_list(cli, client.list("/v2/droplets", "droplets", &query)?, table)
        }
        DropletCommand::Get { id } => show(cli, &field(client.get(&format!("/v2/droplets/{id}"))?, "droplet")?),
        DropletCommand::Register(args) => {
            let mut body = json!({"name": args.name, "disk": disk(&args.disk)?, "tags": args.tags});
            if let Some(region) = &args.disk.region {
                body["region"] = region.clone().into();
            }
            if let Some(power) = power(&args.power)? {
                body["power"] = power;
            }
            show(cli, &field(client.post("/v2/droplets", &body)?, "droplet")?)
        }
        DropletCommand::Delete { id } => {
            client.delete(&format!("/v2/droplets/{id}"))?;
            if cli.json {
                outln!("{}", json!({"deleted": true, "id": id}));
            } else {
                eprintln!("drydock: droplet {id} deleted (its snapshots and backups remain)");
            }
            Ok(())
        }
    }
}

pub fn show(cli: &Cli, droplet: &Value) -> Result<()> {
    print(cli, droplet, || table(std::slice::from_ref(droplet)))
}

fn table(droplets: &[Value]) -> Table {
    let mut table = Table::new(&["ID", "Name", "Status", "Region", "Disk", "Path", "Power", "Locked", "Tags"]);
    for d in droplets {
        let disk = &d["drydock"]["disk"];
        table.row(vec![
            cell(&d["id"]),
            cell(&d["name"]),
            cell(&d["status"]),
            cell(&d["region"]["slug"]),
            bytes(&disk["size_bytes"]),
            cell(&disk["path"]),
            cell(&d["drydock"]["power"]["driver"]),
            cell(&d["locked"]),
            cell(&d["tags"]),
        ]);
    }
    table
}

/// The API's `disk` object.
pub fn disk(args: &DiskArgs) -> Result<Value> {
    let mut disk = json!({"path": absolute(&args.disk)?});
    if let Some(format) = &args.format {
        disk["format"] = format.clone().into();
    }
    Ok(disk)
}

fn power_commands_given(args: &PowerArgs) -> bool {
    [&args.power_on, &args.power_off, &args.power_status, &args.power_shutdown].iter().any(|c| c.is_some())
}

pub fn power_given(args: &PowerArgs) -> bool {
    args.power_driver.is_some() || args.qmp_socket.is_some() || power_commands_given(args)
}

/// The API's `power` object, or `None` for the daemon's default (no driver).
pub fn power(args: &PowerArgs) -> Result<Option<Value>> {
    let any_command = power_commands_given(args);
    let driver = match (&args.power_driver, any_command, &args.qmp_socket) {
        (Some(driver), _, _) => driver.as_str(),
        (None, true, _) => "command",
        (None, false, Some(_)) => "qemu",
        (None, false, None) => return Ok(None),
    };
    match driver {
        "command" => {
            if args.qmp_socket.is_some() {
                bail!("--qmp-socket is for the qemu power driver, not command");
            }
            let (Some(on), Some(off), Some(status)) = (&args.power_on, &args.power_off, &args.power_status) else {
                bail!("the command power driver needs --power-on, --power-off and --power-status");
            };
            let mut power = json!({"driver": "command", "on": on, "off": off, "status": status});
            if let Some(shutdown) = &args.power_shutdown {
                power["shutdown"] = shutdown.clone().into();
            }
            Ok(Some(power))
        }
        "qemu" => {
            if any_command {
                bail!("--power-on, --power-off, --power-status and --power-shutdown are for the command driver");
            }
            let Some(socket) = &args.qmp_socket else { bail!("the qemu power driver needs --qmp-socket") };
            Ok(Some(json!({"driver": "qemu", "socket": absolute(socket)?})))
        }
        _ => {
            if any_command || args.qmp_socket.is_some() {
                bail!("power commands and --qmp-socket need a power driver other than none");
            }
            Ok(Some(json!({"driver": "none"})))
        }
    }
}
