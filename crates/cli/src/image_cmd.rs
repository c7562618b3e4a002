//! `drydock image …`

use std::process::ExitCode;

use anyhow::{Context, Result};
use drydock_engine::backup::BackupOptions;
use drydock_engine::{CancelToken, Repository};
use drydock_sources::ImageFile;
use serde_json::json;

use crate::args::{BackupArgs, Cli, ImageCommand, RestoreArgs};
use crate::progress::Bar;
use crate::view::{self, SnapshotView, bytes, print_json};

pub fn run(cli: &Cli, command: &ImageCommand, cancel: &CancelToken) -> Result<ExitCode> {
    match command {
        ImageCommand::Backup(args) => backup(cli, args, cancel),
        ImageCommand::List => list(cli),
        ImageCommand::Restore(args) => restore(cli, args, cancel),
        ImageCommand::Forget { snapshots } => forget(cli, snapshots),
    }
}

fn backup(cli: &Cli, args: &BackupArgs, cancel: &CancelToken) -> Result<ExitCode> {
    // The source is checked before the repository, so a typo costs no passphrase prompt.
    let source = ImageFile::open(&args.path)?;
    let repo = crate::open_repo(cli)?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into()),
    };
    let bar = Bar::bytes("backup");
    let options = BackupOptions { name, tags: args.tags.clone() };
    let report = drydock_engine::backup::backup(&repo, &source, &options, &bar, cancel)?;
    bar.finish();
    if cli.json {
        print_json(&SnapshotView::new(&report.id, &report.meta))?;
    } else {
        let seconds = report.meta.duration_ms as f64 / 1000.0;
        outln!(
            "snapshot {} ({}) saved: {} in {seconds:.1}s ({}/s), {} new chunks, {} stored",
            report.id.short(),
            report.meta.name,
            bytes(report.meta.size_bytes),
            bytes((report.meta.size_bytes as f64 / seconds.max(0.001)) as u64),
            report.meta.chunks_new,
            bytes(report.meta.stored_bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn list(cli: &Cli) -> Result<ExitCode> {
    let repo = crate::open_repo(cli)?;
    // A damaged manifest must not hide the intact snapshots: list those, name the damaged ones.
    // Only the metadata part of each manifest is read; `repo verify` checks the rest.
    let (snapshots, damaged) = repo.load_snapshot_metas_lenient()?;
    if cli.json {
        let views: Vec<_> = snapshots.iter().map(|(id, meta)| SnapshotView::new(id, meta)).collect();
        print_json(&views)?;
    } else {
        outln!("{}", view::SNAPSHOT_HEADER);
        for (id, meta) in &snapshots {
            outln!("{}", view::snapshot_line(id, meta));
        }
    }
    for (_, error) in &damaged {
        eprintln!("drydock: {error}");
    }
    Ok(if damaged.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(crate::EXIT_DAMAGE_FOUND) })
}

fn restore(cli: &Cli, args: &RestoreArgs, cancel: &CancelToken) -> Result<ExitCode> {
    let repo = crate::open_repo(cli)?;
    let (id, manifest) = repo.find_snapshot(&args.snapshot)?;
    let target = drydock_sources::open_target(&args.target, manifest.meta.size_bytes, args.overwrite)?;
    let to_stdout = args.target.as_os_str() == "-";
    let bar = Bar::bytes("restore");
    let report = drydock_engine::restore::restore(&repo, &id, &manifest, target, &bar, cancel)
        .with_context(|| format!("restoring snapshot {} ({})", id.short(), manifest.meta.name))?;
    bar.finish();
    // With the image on standard output, the summary must not mix into it.
    if cli.json && !to_stdout {
        print_json(&json!({
            "snapshot": id.to_hex(),
            "name": manifest.meta.name,
            "target": args.target,
            "size_bytes": report.bytes_total,
            "bytes_written": report.bytes_written,
            "duration_ms": report.duration_ms,
        }))?;
    } else if !to_stdout {
        outln!(
            "restored snapshot {} ({}) to {}: {} ({} of data, the rest left sparse) in {:.1}s",
            id.short(),
            manifest.meta.name,
            args.target.display(),
            bytes(report.bytes_total),
            bytes(report.bytes_written),
            report.duration_ms as f64 / 1000.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn forget(cli: &Cli, wanted: &[String]) -> Result<ExitCode> {
    let repo: Repository = crate::open_repo(cli)?;
    // Resolve every name first: a typo in the third argument must not leave the first two gone.
    let resolved =
        wanted.iter().map(|w| repo.find_snapshot(w).map(|(id, m)| (id, m.meta))).collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<_> = resolved.iter().map(|(id, _)| *id).collect();
    drydock_engine::forget::forget(&repo, &ids)?;
    if cli.json {
        print_json(&json!({ "forgotten": ids.iter().map(|id| id.to_hex()).collect::<Vec<_>>() }))?;
    } else {
        for (id, meta) in &resolved {
            outln!("forgot snapshot {} ({})", id.short(), meta.name);
        }
        outln!("run `drydock repo gc` to free the space");
    }
    Ok(ExitCode::SUCCESS)
}
