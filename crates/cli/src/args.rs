//! The command line: these names are drydock's interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "drydock",
    version,
    about = "Incremental, deduplicated, encrypted backups of disk images and block devices"
)]
pub struct Cli {
    /// Repository directory.
    #[arg(long, global = true, env = "DRYDOCK_REPO", value_name = "PATH")]
    pub repo: Option<PathBuf>,

    /// Read the passphrase from this file (first line). Otherwise DRYDOCK_PASSWORD, or a prompt.
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Print one JSON object (an array for lists) instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, inspect, check and clean repositories.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Back up, list, restore and forget image snapshots.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Run the daemon: the DigitalOcean-compatible API over HTTPS.
    Serve(ServeArgs),
    /// Create, list and revoke API tokens, in the data directory (the daemon need not run).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check the daemon's catalog against its repositories, or rebuild it from them.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Try a backup policy before setting it: which backups it keeps, and what they cost.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// The daemon's clients: droplet, snapshot, action, restore, volume, usage.
    #[command(flatten)]
    Client(crate::client_args::ClientCommand),
}

/// Where the daemon's configuration and data are.
#[derive(Debug, Args, Clone)]
pub struct DaemonArgs {
    /// Configuration file (TOML).
    #[arg(long, env = "DRYDOCK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: catalog, certificate, default region [default: ./drydock-data].
    #[arg(long, env = "DRYDOCK_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The catalog's database: postgres://USER:PASSWORD@HOST:PORT/DB to share it between
    /// daemons [default: SQLite in the data directory].
    #[arg(long, env = "DRYDOCK_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// Address to listen on [default: 127.0.0.1:8443].
    #[arg(long, env = "DRYDOCK_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Serve plain HTTP instead of HTTPS (only behind a TLS-terminating proxy).
    #[arg(long)]
    pub plain_http: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown once).
    Create(TokenCreateArgs),
    /// List a team's tokens (not their secrets).
    List(TeamArgs),
    /// Revoke a token by id.
    Revoke {
        id: i64,
        #[command(flatten)]
        team: TeamArgs,
    },
}

#[derive(Debug, Args)]
pub struct TeamArgs {
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// The team (created if needed).
    #[arg(long, default_value = "default")]
    pub team: String,
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub team: TeamArgs,
    /// A name to recognise the token by.
    #[arg(long, default_value = "cli")]
    pub name: String,
    /// Scopes, comma-separated: `*` for full access, or e.g. droplet:read,droplet:update,image:create.
    #[arg(long, value_delimiter = ',', required = true)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Report snapshots present in the catalog or in a repository but not in the other.
    Check(DaemonArgs),
    /// Make the catalog agree with the repositories (stop the daemon first).
    Rebuild(DaemonArgs),
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Take a policy's backups from --start for --days and prune them as the daemon would
    /// (computed here: no daemon needed).
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// When the simulation starts: an RFC 3339 time, or a date meaning its midnight UTC [default: now].
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// How many days to simulate.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub days: u32,
    /// How much data is backed up, in GiB (for the cost estimate).
    #[arg(long, value_name = "GIB", default_value_t = 10.0)]
    pub data_gib: f64,
    /// How much of the data changes between two backups, in percent (for the cost estimate).
    #[arg(long, value_name = "PERCENT", default_value_t = 2.0)]
    pub change_percent: f64,
    // Last: the arguments after it would fall under its "Backup policy" heading in --help.
    #[command(flatten)]
    pub policy: crate::policy_args::PolicyArgs,
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a new repository.
    Init(InitArgs),
    /// Show the repository's settings and size.
    Info,
    /// Manage the passphrases (key slots) that open the repository.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Check the repository; with --read-data also read and authenticate stored data.
    Verify(VerifyArgs),
    /// Delete data no snapshot needs any more. Safe while backups run.
    Gc,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Chunk size (e.g. 512KiB, 1MiB). Fixed for the life of the repository.
    #[arg(long, value_name = "SIZE")]
    pub chunk_size: Option<String>,
    /// zstd level for data (1 = fastest).
    #[arg(long, value_name = "N")]
    pub compression_level: Option<i32>,
    /// Target size of pack files (e.g. 32MiB).
    #[arg(long, value_name = "SIZE")]
    pub pack_size: Option<String>,
    /// Create the repository WITHOUT encryption (data is still authenticated).
    #[arg(long)]
    pub no_encryption: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add a passphrase (from DRYDOCK_NEW_PASSWORD, --new-password-file or a prompt).
    Add(NewPasswordArgs),
    /// List key slots.
    List,
    /// Remove a key slot by id (or a unique prefix).
    Remove { id: String },
    /// Change the passphrase of the slot you opened the repository with.
    Passwd(NewPasswordArgs),
}

#[derive(Debug, Args)]
pub struct NewPasswordArgs {
    /// Read the new passphrase from this file (first line).
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Read and authenticate every stored chunk.
    #[arg(long)]
    pub read_data: bool,
    /// Read only a part of the data: N/T (e.g. 1/7, 2/7, …) or a percentage (e.g. 10%).
    #[arg(long, value_name = "N/T|P%", conflicts_with = "read_data")]
    pub read_data_subset: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Back up an image file or block device.
    Backup(BackupArgs),
    /// List snapshots, oldest first.
    List,
    /// Restore a snapshot to a file, a block device, or - for standard output.
    Restore(RestoreArgs),
    /// Delete snapshots (their data is freed by `repo gc`).
    Forget {
        /// Snapshot ids, unique id prefixes, or names.
        #[arg(required = true)]
        snapshots: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Image file or block device to back up.
    pub path: PathBuf,
    /// Snapshot name (default: the file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Snapshot id, unique id prefix, or name (the newest of that name).
    pub snapshot: String,
    /// Where to write: a new file, a block device (with --overwrite), or - for standard output.
    pub target: PathBuf,
    /// Replace an existing file or write over a block device.
    #[arg(long)]
    pub overwrite: bool,
}
