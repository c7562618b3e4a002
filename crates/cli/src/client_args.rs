//! The command line of the client verbs: `drydock droplet|snapshot|action|restore|volume|usage …`
//! talk to a running daemon over its API, as doctl talks to DigitalOcean.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand};

use crate::policy_args::PolicyArgs;

/// Where the daemon is and how to prove who we are. Flags win over the environment, which wins
/// over the configuration file ($XDG_CONFIG_HOME/drydock/client.toml).
#[derive(Debug, Args, Clone, Default)]
pub struct ApiArgs {
    /// The daemon's address [default: https://127.0.0.1:8443].
    #[arg(long, global = true, env = "DRYDOCK_API_URL", value_name = "URL")]
    pub api_url: Option<String>,
    /// API token (also read from DIGITALOCEAN_ACCESS_TOKEN).
    #[arg(long, global = true, env = "DRYDOCK_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Trust this PEM certificate: the daemon's self-signed one is DATA_DIR/tls/cert.pem.
    #[arg(long, global = true, env = "DRYDOCK_CACERT", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

/// A group of verbs and the connection settings they share.
#[derive(Debug, Args)]
pub struct Remote<C: Subcommand> {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: C,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register, list, show and delete droplets: the machines the daemon protects; set their backups.
    Droplet(Remote<DropletVerbs>),
    /// Take, list and delete snapshots through the daemon.
    Snapshot(Remote<SnapshotCommand>),
    /// Show an action, or wait for it to finish.
    Action(Remote<ActionCommand>),
    /// Restore a droplet from one of its snapshots, or create a new droplet from an image.
    Restore(Box<RestoreArgs>),
    /// Register, list, show, delete and snapshot volumes; set their backups.
    Volume(Remote<VolumeVerbs>),
    /// What the images take up, per droplet, volume and region, and what that costs a month.
    Usage(UsageArgs),
}

/// The droplet verbs: the machine's own, then its backups'.
#[derive(Debug, Subcommand)]
pub enum DropletVerbs {
    #[command(flatten)]
    Machine(DropletCommand),
    #[command(flatten)]
    Backups(DropletBackupCommand),
}

/// The volume verbs: the disk's own, then its backups'.
#[derive(Debug, Subcommand)]
pub enum VolumeVerbs {
    #[command(flatten)]
    Disk(VolumeCommand),
    #[command(flatten)]
    Backups(VolumeBackupCommand),
}

#[derive(Debug, Subcommand)]
pub enum DropletBackupCommand {
    /// Back the droplet up on a schedule (without policy flags: the policy it had, or daily).
    EnableBackups {
        id: i64,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Stop the droplet's scheduled backups (those taken stay until deleted).
    DisableBackups { id: i64 },
    /// Show the droplet's backup policy, or change it with policy flags.
    BackupPolicy {
        id: i64,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// List the droplet's backups (all pages).
    Backups { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum VolumeBackupCommand {
    /// Back the volume up on a schedule (without policy flags: the policy it had, or daily).
    EnableBackups {
        id: String,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Stop the volume's scheduled backups (those taken stay until deleted).
    DisableBackups { id: String },
    /// Show the volume's backup policy, or change it with policy flags.
    BackupPolicy {
        id: String,
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Also list every image and what deleting it would free.
    #[arg(long)]
    pub images: bool,
}

#[derive(Debug, Subcommand)]
pub enum DropletCommand {
    /// List droplets (all pages).
    List {
        /// Only droplets with this tag.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Show one droplet.
    Get { id: i64 },
    /// Register a machine by its disk (which must exist, inside the daemon's disk roots).
    Register(Box<RegisterArgs>),
    /// Forget a droplet (its snapshots and backups stay).
    Delete { id: i64 },
}

#[derive(Debug, Args)]
pub struct DiskArgs {
    /// The disk: an image file or a block device.
    #[arg(long, value_name = "PATH")]
    pub disk: PathBuf,
    /// Disk format.
    #[arg(long, value_parser = ["raw", "qcow2"])]
    pub format: Option<String>,
    /// Region (one of the daemon's repositories) [default: the daemon's first].
    #[arg(long)]
    pub region: Option<String>,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    pub name: String,
    #[command(flatten)]
    pub disk: DiskArgs,
    #[command(flatten)]
    pub power: PowerArgs,
    /// Tag the droplet (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
}

/// How the daemon switches the machine on and off. Without a driver, snapshots are taken live.
#[derive(Debug, Args)]
pub struct PowerArgs {
    /// Power driver [default: command when --power-on is given, qemu with --qmp-socket, else none].
    #[arg(long, value_parser = ["none", "command", "qemu"])]
    pub power_driver: Option<String>,
    /// command driver: shell command that switches the machine on.
    #[arg(long, value_name = "CMD")]
    pub power_on: Option<String>,
    /// command driver: shell command that switches the machine off at once.
    #[arg(long, value_name = "CMD")]
    pub power_off: Option<String>,
    /// command driver: shell command that exits 0 when the machine is on, 1 when it is off.
    #[arg(long, value_name = "CMD")]
    pub power_status: Option<String>,
    /// command driver: shell command that asks the guest to shut down cleanly.
    #[arg(long, value_name = "CMD")]
    pub power_shutdown: Option<String>,
    /// qemu driver: the QMP unix socket of the QEMU process.
    #[arg(long, value_name = "PATH")]
    pub qmp_socket: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Snapshot a droplet.
    Create {
        droplet: i64,
        /// Snapshot name [default: the droplet's name and the time].
        #[arg(long)]
        name: Option<String>,
        /// Power the droplet off for the snapshot and on again afterwards.
        #[arg(long)]
        power_off: bool,
        /// Wait until the snapshot is stored, then print it instead of the action.
        #[arg(long)]
        wait: bool,
    },
    /// List snapshots (all pages).
    List {
        /// Only the snapshots of this droplet.
        #[arg(long, value_name = "ID", conflicts_with = "resource_type")]
        droplet: Option<i64>,
        /// Only snapshots of droplets or of volumes.
        #[arg(long, value_parser = ["droplet", "volume"])]
        resource_type: Option<String>,
    },
    /// Show one snapshot.
    Get {
        /// A number for droplet snapshots, a UUID for volume snapshots.
        id: String,
    },
    /// Delete a snapshot.
    Delete {
        /// A number for droplet snapshots, a UUID for volume snapshots.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ActionCommand {
    /// Show an action and its progress.
    Get { id: i64 },
    /// Wait until an action completes; fails if it errored.
    Wait { id: i64 },
}

/// `restore DROPLET --image IMAGE` writes the image back over the droplet's disk;
/// `restore --image IMAGE --new-droplet NAME --disk PATH` creates a droplet from it.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["droplet", "new_droplet"])))]
pub struct RestoreArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The droplet to restore in place.
    pub droplet: Option<i64>,
    /// The snapshot or backup to restore.
    #[arg(long, value_name = "ID")]
    pub image: i64,
    /// Create a new droplet with this name instead (needs --disk).
    #[arg(long, value_name = "NAME", requires = "disk")]
    pub new_droplet: Option<String>,
    /// Where the new droplet's disk goes (must not exist yet).
    #[arg(long, value_name = "PATH", requires = "new_droplet")]
    pub disk: Option<PathBuf>,
    /// Disk format of the new droplet.
    #[arg(long, value_parser = ["raw", "qcow2"], requires = "new_droplet")]
    pub format: Option<String>,
    /// Region of the new droplet.
    #[arg(long, requires = "new_droplet")]
    pub region: Option<String>,
    #[command(flatten)]
    pub power: PowerArgs,
    /// Wait until the restore is done.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// List volumes (all pages).
    List,
    /// Show one volume.
    Get { id: String },
    /// Register a volume by its disk (which must exist, inside the daemon's disk roots).
    Register {
        /// Lowercase letters, digits and '-'.
        name: String,
        #[command(flatten)]
        disk: DiskArgs,
        /// A description.
        #[arg(long)]
        description: Option<String>,
        /// Tag the volume (repeatable).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
    },
    /// Forget a volume (its snapshots stay).
    Delete { id: String },
    /// Snapshot a volume and print the snapshot.
    Snapshot {
        id: String,
        /// Snapshot name.
        #[arg(long)]
        name: String,
    },
}
