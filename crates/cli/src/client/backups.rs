//! `drydock droplet|volume enable-backups|disable-backups|backup-policy` and
//! `drydock droplet backups`. Backup settings are actions, as on DigitalOcean:
//! `POST /v2/droplets/{id}/actions` with `enable_backups`, `disable_backups` or
//! `change_backup_policy`, and the same on `/v2/volumes/{id}/actions` (a drydock extension).

use anyhow::Result;
use serde_json::{Value, json};

use super::table::{Table, cell, gigabytes, time};
use super::{Client, action, field, print, print_list};
use crate::args::Cli;
use crate::client_args::{DropletBackupCommand, VolumeBackupCommand};
use crate::policy_args;

pub fn droplet(cli: &Cli, client: &Client, command: &DropletBackupCommand) -> Result<()> {
    let actions = |id: &i64| format!("/v2/droplets/{id}/actions");
    match command {
        DropletBackupCommand::EnableBackups { id, policy } => {
            post(cli, client, &actions(id), "enable_backups", policy.to_json()?)
        }
        DropletBackupCommand::DisableBackups { id } => post(cli, client, &actions(id), "disable_backups", None),
        DropletBackupCommand::BackupPolicy { id, policy } => match policy.to_json()? {
            Some(policy) => post(cli, client, &actions(id), "change_backup_policy", Some(policy)),
            None => show_policy(cli, &field(client.get(&format!("/v2/droplets/{id}/backups/policy"))?, "policy")?),
        },
        DropletBackupCommand::Backups { id } => {
            print_list(cli, client.list(&format!("/v2/droplets/{id}/backups"), "backups", &[])?, backups_table)
        }
    }
}

pub fn volume(cli: &Cli, client: &Client, command: &VolumeBackupCommand) -> Result<()> {
    let actions = |id: &str| format!("/v2/volumes/{id}/actions");
    match command {
        VolumeBackupCommand::EnableBackups { id, policy } => {
            post(cli, client, &actions(id), "enable_backups", policy.to_json()?)
        }
        VolumeBackupCommand::DisableBackups { id } => post(cli, client, &actions(id), "disable_backups", None),
        VolumeBackupCommand::BackupPolicy { id, policy } => match policy.to_json()? {
            Some(policy) => post(cli, client, &actions(id), "change_backup_policy", Some(policy)),
            None => show_policy(cli, &volume_policy(&field(client.get(&format!("/v2/volumes/{id}"))?, "volume")?)),
        },
    }
}

/// Posts the action and prints it. The daemon applies backup settings at once, so the action
/// comes back completed (or the request fails with the reason).
fn post(cli: &Cli, client: &Client, path: &str, kind: &str, policy: Option<Value>) -> Result<()> {
    let mut body = json!({"type": kind});
    if let Some(policy) = policy {
        body["backup_policy"] = policy;
    }
    action::show(cli, &field(client.post(path, &body)?, "action")?)
}

/// A volume's backup settings in the shape of a droplet's `GET …/backups/policy` record.
fn volume_policy(volume: &Value) -> Value {
    let drydock = &volume["drydock"];
    let enabled = drydock["backups_enabled"].as_bool().unwrap_or(false);
    let mut record = json!({"volume_id": volume["id"], "backup_enabled": enabled});
    if enabled {
        record["backup_policy"] = drydock["backup_policy"].clone();
        record["next_backup_window"] = drydock["backups"]["next_window"].clone();
    }
    record
}

fn show_policy(cli: &Cli, record: &Value) -> Result<()> {
    print(cli, record, || {
        let mut table = Table::new(&["Enabled", "Schedule", "Keeps", "Replicates To", "Next Window"]);
        let policy = &record["backup_policy"];
        let described =
            |describe: fn(&Value) -> String| if policy.is_object() { describe(policy) } else { String::new() };
        table.row(vec![
            cell(&record["backup_enabled"]),
            described(policy_args::schedule),
            described(policy_args::keeps),
            cell(&policy["replication_regions"]),
            time(&record["next_backup_window"]["start"]),
        ]);
        table
    })
}

fn backups_table(backups: &[Value]) -> Table {
    let mut table = Table::new(&["ID", "Name", "Created At", "Min Disk Size", "Size", "Tags"]);
    for b in backups {
        // Retention tags (daily, weekly, …) when the daemon gives them.
        let tags = if b["tags"].is_null() { &b["drydock"]["tags"] } else { &b["tags"] };
        table.row(vec![
            cell(&b["id"]),
            cell(&b["name"]),
            time(&b["created_at"]),
            gigabytes(&b["min_disk_size"]),
            gigabytes(&b["size_gigabytes"]),
            cell(tags),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::volume_policy;

    #[test]
    fn a_volume_policy_reads_like_a_droplet_policy() {
        let policy = json!({"plan": "daily", "hour": 4});
        let window = json!({"start": "2026-11-23T04:00:00Z", "end": "2026-11-23T08:00:00Z"});
        let backups = json!({"status": "pending", "next_window": window});
        let volume =
            json!({"id": "abc", "drydock": {"backups_enabled": true, "backup_policy": policy, "backups": backups}});
        let expected =
            json!({"volume_id": "abc", "backup_enabled": true, "backup_policy": policy, "next_backup_window": window});
        assert_eq!(volume_policy(&volume), expected);
        let off = json!({"id": "abc", "drydock": {"backups_enabled": false, "backup_policy": policy}});
        assert_eq!(volume_policy(&off), json!({"volume_id": "abc", "backup_enabled": false}));
    }
}
