//! `drydock restore DROPLET --image ID` (in place) and
//! `drydock restore --image ID --new-droplet NAME --disk PATH` (a new droplet from the image).

use anyhow::{Result, bail};
use drydock_engine::CancelToken;
use serde_json::json;

use super::{Client, action, droplet, field};
use crate::args::Cli;
use crate::client_args::{DiskArgs, RestoreArgs};

pub fn run(cli: &Cli, client: &Client, args: &RestoreArgs, cancel: &CancelToken) -> Result<()> {
    match (&args.droplet, &args.new_droplet, &args.disk) {
        (Some(id), None, _) => in_place(cli, client, *id, args, cancel),
        (None, Some(name), Some(disk)) => {
            let disk = DiskArgs { disk: disk.clone(), format: args.format.clone(), region: args.region.clone() };
            new_droplet(cli, client, name, &disk, args, cancel)
        }
        _ => bail!("give either a droplet to restore in place, or --new-droplet NAME --disk PATH"),
    }
}

fn in_place(cli: &Cli, client: &Client, id: i64, args: &RestoreArgs, cancel: &CancelToken) -> Result<()> {
    if droplet::power_given(&args.power) {
        bail!("power settings are for --new-droplet: a droplet restored in place keeps its own");
    }
    let body = json!({"type": "restore", "image": args.image});
    let started = field(client.post(&format!("/v2/droplets/{id}/actions"), &body)?, "action")?;
    let action = if args.wait { action::wait(client, action::id_of(&started)?, cancel)? } else { started };
    action::show(cli, &action)
}

fn new_droplet(
    cli: &Cli,
    client: &Client,
    name: &str,
    disk: &DiskArgs,
    args: &RestoreArgs,
    cancel: &CancelToken,
) -> Result<()> {
    let mut body = json!({"name": name, "image": args.image, "disk": droplet::disk(disk)?});
    if let Some(region) = &disk.region {
        body["region"] = region.clone().into();
    }
    if let Some(power) = droplet::power(&args.power)? {
        body["power"] = power;
    }
    let answer = client.post("/v2/droplets", &body)?;
    let created = field(answer.clone(), "droplet")?;
    let action_id = answer["links"]["actions"][0]["id"].as_i64();
    let droplet_id = created["id"].as_i64();
    match (args.wait, action_id, droplet_id) {
        (true, Some(action_id), Some(droplet_id)) => {
            action::wait(client, action_id, cancel)?;
            droplet::show(cli, &field(client.get(&format!("/v2/droplets/{droplet_id}"))?, "droplet")?)
        }
        (true, _, _) => bail!("the daemon's answer names no action to wait for"),
        (false, _, _) => {
            if let Some(action_id) = action_id {
                eprintln!("drydock: restoring in action {action_id} (`drydock action wait {action_id}` waits for it)");
            }
            droplet::show(cli, &created)
        }
    }
}
