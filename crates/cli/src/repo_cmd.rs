//! `drydock repo …`

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use drydock_engine::config::{self, Encryption};
use drydock_engine::keys::KdfParams;
use drydock_engine::verify::{Subset, VerifyOptions};
use drydock_engine::{CancelToken, InitOptions, NoProgress, Repository};
use drydock_storage::LocalStorage;
use serde_json::json;

use crate::args::{Cli, InitArgs, KeyCommand, RepoCommand, VerifyArgs};
use crate::progress::Bar;
use crate::view::{bytes, print_json};
use crate::{passphrase, size};

pub fn run(cli: &Cli, command: &RepoCommand, cancel: &CancelToken) -> Result<ExitCode> {
    match command {
        RepoCommand::Init(args) => init(cli, args),
        RepoCommand::Info => info(cli),
        RepoCommand::Key(command) => key(cli, command),
        RepoCommand::Verify(args) => verify(cli, args, cancel),
        RepoCommand::Gc => gc(cli, cancel),
    }
}

fn init(cli: &Cli, args: &InitArgs) -> Result<ExitCode> {
    let path = crate::repo_path(cli)?;
    let mut options = if args.no_encryption {
        InitOptions::unencrypted()
    } else {
        InitOptions::encrypted(passphrase::new(cli.password_file.as_deref(), passphrase::PASSWORD_ENV)?)
    };
    if let Some(text) = &args.chunk_size {
        options.chunk_size_bytes = u32::try_from(size::parse(text)?).context("chunk size is too large")?;
    }
    if let Some(text) = &args.pack_size {
        options.pack_size_bytes_target = u32::try_from(size::parse(text)?).context("pack size is too large")?;
    }
    if let Some(level) = args.compression_level {
        options.compression_level = level;
    }
    let storage = crate::create_storage(path)?;
    // A repository goes into a new or empty directory; an existing repository is reported as such.
    let not_empty = std::fs::read_dir(path)?.next().is_some();
    if not_empty && matches!(drydock_engine::probe(storage.as_ref()), Err(drydock_engine::Error::NotARepository(_))) {
        bail!("{} exists and is not empty; a repository needs an empty or new directory", path.display());
    }
    let repo = Repository::init(storage, options)?;
    let config = repo.config();
    if cli.json {
        print_json(&json!({
            "path": path,
            "repository_id": config.repository_id,
            "encryption": config.encryption,
            "chunk_size_bytes": config.chunk_size_bytes,
            "compression_level": config.compression_level,
            "pack_size_bytes_target": config.pack_size_bytes_target,
        }))?;
    } else {
        outln!("created repository {} at {}", config.repository_id, path.display());
        if config.encryption == Encryption::None {
            outln!("warning: this repository is NOT encrypted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn info(cli: &Cli) -> Result<ExitCode> {
    let repo = crate::open_repo(cli)?;
    let stats = repo.stats()?;
    let config = repo.config();
    if cli.json {
        print_json(&json!({ "config": config_view(config), "stats": stats }))?;
    } else {
        outln!("repository   {}", config.repository_id);
        outln!("created      {}", config.created_at);
        outln!("encryption   {}", serde_json::to_string(&config.encryption)?.trim_matches('"'));
        outln!("chunk size   {}", bytes(config.chunk_size_bytes as u64));
        outln!("compression  zstd level {}", config.compression_level);
        outln!("snapshots    {}", stats.snapshots);
        outln!("packs        {} ({})", stats.packs, bytes(stats.pack_bytes));
        outln!("chunks       {}", stats.chunks);
        outln!("index files  {}", stats.index_files);
        outln!("key slots    {}", stats.key_slots);
    }
    Ok(ExitCode::SUCCESS)
}

fn config_view(config: &config::RepoConfig) -> serde_json::Value {
    json!({
        "repository_id": config.repository_id,
        "created_at": config.created_at,
        "encryption": config.encryption,
        "chunk_size_bytes": config.chunk_size_bytes,
        "pack_size_bytes_target": config.pack_size_bytes_target,
        "compression_level": config.compression_level,
        "lease_ttl_secs": config.lease_ttl_secs,
    })
}

fn key(cli: &Cli, command: &KeyCommand) -> Result<ExitCode> {
    let mut repo = crate::open_repo(cli)?;
    match command {
        KeyCommand::Add(args) => {
            let new = passphrase::new(args.new_password_file.as_deref(), passphrase::NEW_PASSWORD_ENV)?;
            let id = repo.add_key(&new, KdfParams::default())?;
            if cli.json { print_json(&json!({ "id": id }))? } else { outln!("added key slot {id}") }
        }
        KeyCommand::List => {
            let slots = repo.list_keys()?;
            if cli.json {
                print_json(&slots)?;
            } else {
                for slot in slots {
                    let marker = if slot.current { "*" } else { " " };
                    outln!("{marker} {}  {}  {}@{}", slot.id, slot.created_at, slot.username, slot.hostname);
                }
            }
        }
        KeyCommand::Remove { id } => {
            let removed = repo.remove_key(id)?;
            if cli.json { print_json(&json!({ "removed": removed }))? } else { outln!("removed key slot {removed}") }
        }
        KeyCommand::Passwd(args) => {
            let new = passphrase::new(args.new_password_file.as_deref(), passphrase::NEW_PASSWORD_ENV)?;
            let id = repo.change_passphrase(&new, KdfParams::default())?;
            if cli.json { print_json(&json!({ "id": id }))? } else { outln!("passphrase changed (key slot {id})") }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(cli: &Cli, args: &VerifyArgs, cancel: &CancelToken) -> Result<ExitCode> {
    let repo = crate::open_repo(cli)?;
    let read_data = match (&args.read_data_subset, args.read_data) {
        (Some(text), _) => Some(Subset::parse(text)?),
        (None, true) => Some(Subset::All),
        (None, false) => None,
    };
    let bar = Bar::bytes("verify");
    let json = cli.json;
    let report = drydock_engine::verify::verify(
        &repo,
        &VerifyOptions { read_data },
        &|problem| {
            if !json {
                let snapshots = if problem.snapshots.is_empty() {
                    String::new()
                } else {
                    format!(" (affects {})", problem.snapshots.join(", "))
                };
                eprintln!("damaged: {}: {}{snapshots}", problem.object, problem.message);
            }
        },
        &bar,
        cancel,
    )?;
    bar.finish();
    if json {
        print_json(&report)?;
    } else {
        outln!(
            "checked {} snapshots, {} index files, {} packs; read {} packs ({}, {} chunks); {} problems",
            report.snapshots_checked,
            report.index_files_checked,
            report.packs_checked,
            report.packs_read,
            bytes(report.bytes_read),
            report.chunks_read,
            report.problems.len()
        );
    }
    Ok(if report.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(crate::EXIT_DAMAGE_FOUND) })
}

/// Temporary files older than this are left by dead writers (see `gc`).
const TEMP_FILE_AGE_MIN: std::time::Duration = std::time::Duration::from_secs(3600);

fn gc(cli: &Cli, cancel: &CancelToken) -> Result<ExitCode> {
    let repo = crate::open_repo(cli)?;
    let report = drydock_engine::gc::gc(&repo, &NoProgress, cancel)?;
    // A writer killed mid-put leaves a temporary file beside its object. Storing one object takes
    // seconds, so one untouched for an hour belongs to a dead writer.
    let temp_files_removed = LocalStorage::open(crate::repo_path(cli)?)?.remove_stale_temp_files(TEMP_FILE_AGE_MIN)?;
    if cli.json {
        let mut value = serde_json::to_value(&report)?;
        value["temp_files_removed"] = temp_files_removed.into();
        print_json(&value)?;
    } else {
        outln!(
            "deleted {} packs ({}), repacked {}, rewrote {} index files; {} plans swept, {} waiting for running backups; {} stale temporary files removed",
            report.packs_deleted,
            bytes(report.bytes_freed),
            report.packs_repacked,
            report.index_files_rewritten,
            report.plans_swept,
            report.plans_waiting,
            temp_files_removed
        );
    }
    Ok(ExitCode::SUCCESS)
}
