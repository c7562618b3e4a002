//! What each kind of action does. Runs on a blocking thread; returns the reason on failure.
//!
//! Image-creating actions find their pending image in the action's `image_id` parameter: on
//! success they record its copy and make it available, on failure they discard it, so no
//! half-made image is ever listed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drydock_catalog::{Action, Disk, DiskFormat, Droplet, DropletStatus, Image, ImageCopy, ResourceType, Team};
use drydock_engine::backup::{BackupOptions, backup};
use drydock_engine::id::SnapshotId;
use drydock_engine::{CancelToken, Repository};
use drydock_power::{PowerConfig, PowerState};
use drydock_sources::ImageFile;

use crate::error::{Error, Result};
use crate::power::{current_status, driver};
use crate::progress::ActionProgress;
use crate::runner::Jobs;
use crate::tags::RepoTags;

pub fn run(jobs: &Jobs, action: &Action, cancel: &CancelToken) -> Result<()> {
    let catalog = jobs.catalog();
    let team = catalog.team(action.team_id)?;
    match (action.resource_type, action.kind.as_str()) {
        (ResourceType::Droplet, "snapshot") => {
            let droplet = droplet_of(jobs, action)?;
            let power_off = action.params.get("power_off").and_then(|v| v.as_bool()).unwrap_or(false);
            with_power_off(jobs, &droplet, power_off, || {
                take_image(jobs, &team, action, &droplet.disk, &droplet.region, cancel)
            })
        }
        (ResourceType::Droplet, "backup") => {
            let droplet = droplet_of(jobs, action)?;
            take_image(jobs, &team, action, &droplet.disk, &droplet.region, cancel)
        }
        (ResourceType::Volume, "snapshot" | "backup") => {
            let volume = catalog.volume(team.id, &action.resource_id)?;
            take_image(jobs, &team, action, &volume.disk, &volume.region, cancel)
        }
        (ResourceType::Droplet, "restore") => {
            let droplet = droplet_of(jobs, action)?;
            let image = image_param(jobs, action)?;
            // A disk must not change under a running machine: stop it if we can.
            with_power_off(jobs, &droplet, true, || {
                restore_image(jobs, action, &image, &droplet.disk, true, cancel).map(|_| ())
            })
        }
        (ResourceType::Droplet, "create") => {
            let droplet = droplet_of(jobs, action)?;
            let image = image_param(jobs, action)?;
            let size = restore_image(jobs, action, &image, &droplet.disk, false, cancel)?;
            catalog.set_droplet_disk_bytes(team.id, droplet.id, size)?;
            catalog.set_droplet_status(team.id, droplet.id, current_status(&droplet.power, &droplet.name))?;
            Ok(())
        }
        (ResourceType::Volume, "create") => {
            let volume = catalog.volume(team.id, &action.resource_id)?;
            let image = image_param(jobs, action)?;
            restore_image(jobs, action, &image, &volume.disk, false, cancel).map(|_| ())
        }
        (ResourceType::Image, "transfer") => transfer(jobs, action, cancel),
        (ResourceType::Droplet, kind @ ("power_off" | "power_on" | "shutdown" | "reboot" | "power_cycle")) => {
            let droplet = droplet_of(jobs, action)?;
            power(jobs, &droplet, kind)
        }
        (resource_type, kind) => Err(Error::Invalid(format!("drydock cannot run {kind} actions on a {resource_type}"))),
    }
}

/// The reason recorded for an action a stopped daemon left running.
pub fn interrupted_reason(action: &Action) -> String {
    let mut reason = format!(
        "interrupted: the daemon stopped while this {} action ran; nothing was recorded, run it again",
        action.kind
    );
    let powered_off = action.params.get("power_off").and_then(|v| v.as_bool()).unwrap_or(false);
    if action.resource_type == ResourceType::Droplet && (powered_off || action.kind == "restore") {
        reason.push_str(&format!("; droplet {} may still be powered off", action.resource_id));
    }
    if action.kind == "create" {
        // The restore wrote to a temporary name: nothing looks like a finished disk.
        reason.push_str("; no disk was left at the requested path");
    }
    reason
}

/// Removes what a restore a stopped daemon left running wrote beside its target (the partial
/// disk, as large as the image) and in the scratch directory (qcow2 conversions). Partial files
/// of processes still alive are left alone: a `drydock image restore` may be writing one.
/// Failures are logged, not returned: the leftovers waste space but mislead no one.
pub fn remove_leftovers(jobs: &Jobs, action: &Action) {
    if let Ok(entries) = std::fs::read_dir(&jobs.settings().scratch_dir) {
        let prefix = format!("action-{}-", action.id);
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                remove_logged(&entry.path());
            }
        }
    }
    if !matches!(action.kind.as_str(), "create" | "restore") {
        return;
    }
    let disk = match action.resource_type {
        ResourceType::Droplet => droplet_of(jobs, action).map(|d| d.disk.path),
        ResourceType::Volume => {
            jobs.catalog().volume(action.team_id, &action.resource_id).map(|v| v.disk.path).map_err(Error::from)
        }
        ResourceType::Image => return,
    };
    let Ok(disk) = disk else { return };
    let disk = PathBuf::from(disk);
    let (Some(dir), Some(name)) = (disk.parent(), disk.file_name()) else { return };
    let prefix = format!("{}{}", name.to_string_lossy(), drydock_sources::PARTIAL_MARK);
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_string_lossy().strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            remove_logged(&entry.path());
        }
    }
}

fn remove_logged(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!("removed {}, left by an interrupted action", path.display()),
        Err(e) => tracing::warn!("cannot remove {}, left by an interrupted action: {e}", path.display()),
    }
}

fn droplet_of(jobs: &Jobs, action: &Action) -> Result<Droplet> {
    let id =
        action.resource_id.parse().map_err(|_| Error::Invalid(format!("bad droplet id {}", action.resource_id)))?;
    Ok(jobs.catalog().droplet(action.team_id, id)?)
}

fn image_param(jobs: &Jobs, action: &Action) -> Result<Image> {
    let id = action
        .params
        .get("image_id")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| Error::Invalid(format!("action {} names no image", action.id)))?;
    Ok(jobs.catalog().image(action.team_id, id)?)
}

/// How long a graceful shutdown may take before the machine is powered off hard.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

/// Runs `work` with the machine off when `wanted` and the driver can switch it, and switches it
/// back on afterwards if it was on, whether `work` succeeded or not.
fn with_power_off<T>(jobs: &Jobs, droplet: &Droplet, wanted: bool, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let (config, driver) = driver(&droplet.power, &droplet.name)?;
    let switch = wanted && config != PowerConfig::None && driver.status()? == PowerState::On;
    if switch {
        if driver.shutdown().and_then(|()| driver.wait_for(PowerState::Off, SHUTDOWN_GRACE)).is_err() {
            driver.power_off()?;
        }
        jobs.catalog().set_droplet_status(droplet.team_id, droplet.id, DropletStatus::Off)?;
    }
    let result = work();
    if switch {
        driver.power_on()?;
        jobs.catalog().set_droplet_status(droplet.team_id, droplet.id, DropletStatus::Active)?;
    }
    result
}

fn power(jobs: &Jobs, droplet: &Droplet, kind: &str) -> Result<()> {
    let (_, driver) = driver(&droplet.power, &droplet.name)?;
    match kind {
        "power_off" => driver.power_off()?,
        "power_on" => driver.power_on()?,
        "shutdown" => driver.shutdown()?,
        "reboot" => driver.reboot()?,
        _ => driver.power_cycle()?,
    }
    let status = match driver.status()? {
        PowerState::On => DropletStatus::Active,
        PowerState::Off => DropletStatus::Off,
    };
    jobs.catalog().set_droplet_status(droplet.team_id, droplet.id, status)?;
    Ok(())
}

/// Backs a disk up into the region's repository as the action's pending image.
fn take_image(
    jobs: &Jobs,
    team: &Team,
    action: &Action,
    disk: &Disk,
    region: &str,
    cancel: &CancelToken,
) -> Result<()> {
    let image = image_param(jobs, action)?;
    let result = (|| {
        let repo = jobs.regions().repository(region).map_err(|e| e.context(format!("opening region {region}")))?;
        let path = jobs.disks().existing(&disk.path)?;
        let raw = RawView::of(jobs, action, &path, disk.format)?;
        let source = ImageFile::open(raw.path()).map_err(|e| Error::io(format!("opening disk {}", disk.path), e))?;
        let options = BackupOptions {
            name: format!("{}-{}", image.resource_type, image.resource_id),
            tags: RepoTags::of(team, &image).encode(),
        };
        let progress = ActionProgress::new(jobs.catalog(), action.id);
        let report = backup(&repo, &source, &options, &progress, cancel)
            .map_err(|e| Error::from(e).context(format!("backing up into region {region}")))?;
        let copy = ImageCopy { region: region.to_string(), snapshot_id: report.id.to_hex() };
        jobs.catalog().finish_image(image.id, &copy, report.meta.size_bytes, report.meta.stored_bytes)?;
        Ok(())
    })();
    if result.is_err() {
        jobs.catalog().discard_pending_image(image.id)?;
    }
    result
}

/// Restores an image onto a disk: over the existing one (`overwrite`), or as a new disk.
/// Returns the disk's size.
///
/// Each region holding a copy is tried in turn: one that cannot be reached, or whose copy turns
/// out damaged part-way, is reported in the log and the next one restores the whole disk again.
/// Only if every region fails does the restore fail, naming each region's reason.
fn restore_image(
    jobs: &Jobs,
    action: &Action,
    image: &Image,
    disk: &Disk,
    overwrite: bool,
    cancel: &CancelToken,
) -> Result<u64> {
    // A later attempt may overwrite what an earlier one wrote, never a file that was there.
    let existed = Path::new(&disk.path).exists();
    let mut failures = Vec::new();
    for copy in &image.copies {
        let overwrite = overwrite || (!failures.is_empty() && !existed);
        let attempt = snapshot_id(image, copy)
            .and_then(|id| Ok((jobs.regions().repository(&copy.region)?, id)))
            .and_then(|(repo, id)| restore_copy(jobs, action, &repo, &id, disk, overwrite, cancel));
        match attempt {
            Ok(size) => return Ok(size),
            Err(e) if cancel.is_cancelled() => return Err(e),
            Err(e) => {
                tracing::warn!("restoring image {} from region {}: {e}", image.id, copy.region);
                failures.push(e.context(format!("restoring from region {}", copy.region)));
            }
        }
    }
    // One copy: its own error, as before there were regions to fall back on.
    if failures.len() <= 1 {
        return Err(failures
            .pop()
            .unwrap_or_else(|| Error::Invalid(format!("image {} has no copy in any region", image.id))));
    }
    let reasons: Vec<String> = failures.iter().map(Error::to_string).collect();
    Err(Error::Invalid(format!("image {}: no region could restore it ({})", image.id, reasons.join("; "))))
}

fn restore_copy(
    jobs: &Jobs,
    action: &Action,
    repo: &Repository,
    id: &SnapshotId,
    disk: &Disk,
    overwrite: bool,
    cancel: &CancelToken,
) -> Result<u64> {
    let manifest = repo.load_snapshot(id)?;
    let path = PathBuf::from(&disk.path);
    let progress = ActionProgress::new(jobs.catalog(), action.id);
    let size = manifest.meta.size_bytes;
    match disk.format {
        DiskFormat::Raw => {
            let target = drydock_sources::open_target(&path, size, overwrite)
                .map_err(|e| Error::io(format!("opening disk {} for the restore", disk.path), e))?;
            drydock_engine::restore::restore(repo, id, &manifest, target, &progress, cancel)?;
        }
        DiskFormat::Qcow2 => {
            let scratch = scratch_path(jobs, action, "raw")?;
            let target = drydock_sources::open_target(&scratch, size, false)
                .map_err(|e| Error::io(format!("opening {}", scratch.display()), e))?;
            let restored = drydock_engine::restore::restore(repo, id, &manifest, target, &progress, cancel);
            let converted =
                restored.map_err(Error::from).and_then(|_| convert(&scratch, "raw", &path, "qcow2", overwrite));
            let _ = std::fs::remove_file(&scratch);
            converted?;
        }
    }
    Ok(size)
}

fn snapshot_id(image: &Image, copy: &ImageCopy) -> Result<SnapshotId> {
    SnapshotId::from_hex(&copy.snapshot_id)
        .ok_or_else(|| Error::Invalid(format!("image {} has a malformed snapshot id in {}", image.id, copy.region)))
}

/// The first region holding a copy that opens, with the snapshot id there.
fn readable_copy(jobs: &Jobs, image: &Image) -> Result<(Arc<Repository>, SnapshotId)> {
    let mut last_error = None;
    for copy in &image.copies {
        let id = snapshot_id(image, copy)?;
        match jobs.regions().repository(&copy.region) {
            Ok(repo) => return Ok((repo, id)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| Error::Invalid(format!("image {} has no copy in any region", image.id))))
}

/// Copies an image to the action's region, or to every region of `params.regions` in turn (the
/// replication a backup policy asks for: one action, so that the image is locked once).
fn transfer(jobs: &Jobs, action: &Action, cancel: &CancelToken) -> Result<()> {
    let image_id: i64 =
        action.resource_id.parse().map_err(|_| Error::Invalid(format!("bad image id {}", action.resource_id)))?;
    let destinations: Vec<String> = match action.params.get("regions").and_then(|r| r.as_array()) {
        Some(regions) => regions.iter().filter_map(|r| r.as_str().map(str::to_string)).collect(),
        None => vec![action.region.clone()],
    };
    for destination in destinations {
        let image = jobs.catalog().image(action.team_id, image_id)?;
        if image.copies.iter().any(|c| c.region == destination) {
            continue;
        }
        let (source, id) = readable_copy(jobs, &image)?;
        let target =
            jobs.regions().repository(&destination).map_err(|e| e.context(format!("opening region {destination}")))?;
        let team = jobs.catalog().team(action.team_id)?;
        let options = BackupOptions {
            name: format!("{}-{}", image.resource_type, image.resource_id),
            tags: RepoTags::of(&team, &image).encode(),
        };
        let progress = ActionProgress::new(jobs.catalog(), action.id);
        let report = drydock_engine::copy::copy_snapshot(&source, &id, &target, &options, &progress, cancel)
            .map_err(|e| Error::from(e).context(format!("copying image {} to region {destination}", image.id)))?;
        let copy = ImageCopy { region: destination, snapshot_id: report.id.to_hex() };
        jobs.catalog().add_image_copy(image.id, &copy)?;
    }
    Ok(())
}

/// A raw view of a disk for reading: the disk itself, or a temporary raw conversion of a
/// qcow2 disk, removed on drop.
struct RawView {
    path: PathBuf,
    temporary: bool,
}

impl RawView {
    fn of(jobs: &Jobs, action: &Action, path: &Path, format: DiskFormat) -> Result<RawView> {
        match format {
            DiskFormat::Raw => Ok(RawView { path: path.to_path_buf(), temporary: false }),
            DiskFormat::Qcow2 => {
                let scratch = scratch_path(jobs, action, "raw")?;
                convert(path, "qcow2", &scratch, "raw", false)?;
                Ok(RawView { path: scratch, temporary: true })
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RawView {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn scratch_path(jobs: &Jobs, action: &Action, extension: &str) -> Result<PathBuf> {
    let dir = &jobs.settings().scratch_dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    Ok(dir.join(format!("action-{}-{}.{extension}", action.id, std::process::id())))
}

/// `qemu-img convert`, writing to a temporary name renamed into place at the end.
fn convert(from: &Path, from_format: &str, to: &Path, to_format: &str, overwrite: bool) -> Result<()> {
    if !overwrite && to.exists() {
        return Err(Error::Invalid(format!("{} already exists", to.display())));
    }
    let partial = to.with_extension("partial");
    let output = std::process::Command::new("qemu-img")
        .args(["convert", "-f", from_format, "-O", to_format])
        .arg(from)
        .arg(&partial)
        .output()
        .map_err(|e| Error::io("running qemu-img (install qemu-utils for qcow2 disks)", e))?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Error::Invalid(format!("converting {} to {to_format}: {}", from.display(), stderr.trim())));
    }
    std::fs::rename(&partial, to).map_err(|e| Error::io(format!("renaming {} into place", partial.display()), e))
}
