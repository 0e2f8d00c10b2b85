//! Live clones: a running (or paused) VM copied as it is at one moment,
//! without stopping it.
//!
//! libvirt's push-mode backup copies every disk a full copy would copy,
//! point-in-time (QEMU copies a block before the guest overwrites it). It
//! starts while the guest is paused (and its filesystems frozen when its
//! agent answers), and the UEFI variables and TPM state are copied in that
//! same pause; then the guest runs on while the backup copies.
//!
//! QEMU writes the copies by path, as another user, so a path it is given
//! must lead to the file vmclone made whoever tries to swap it: vmclone
//! creates each copy itself (`O_EXCL`, in an open folder) inside a private
//! folder of its own (`.vmclone-live-<clone uuid>`, root's, 0711) placed in
//! the nearest folder at or above the destination that only root controls,
//! on the destination's mount; the journal holds that folder. The finished
//! copy is then moved into the destination folder with
//! `renameat2(RENAME_NOREPLACE)` between the two open folders, so a link a
//! user put at the destination name fails the clone instead of being
//! followed. The journal records the backup job too, so a rollback (or the
//! next start after a crash) aborts it before removing the private folder.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use virt::domain::Domain;

use super::execute::Execution;
use super::plan::{DiskWork, Layer, StoragePlan};
use super::Consistency;
use crate::backup::{self, JobState, Target};
use crate::domain_xml::{self, Disk, DomainInfo, NewDisk};
use crate::error::{Error, Result};
use crate::journal::{Artifact, Entry, Made};
use crate::storage::copy::{punch_holes, set_owner_and_mode, start_writeback, Source};
use crate::storage::error::io_error;
use crate::storage::folder::{FileId, Folder};
use crate::storage::{image_lock, overlay};

/// The name of a live clone's private folders: `.vmclone-live-<clone uuid>`.
pub const STAGING_PREFIX: &str = ".vmclone-live-";
/// How often the backup job is asked how far it got.
const POLL: Duration = Duration::from_millis(100);
/// How long QEMU and libvirt may take to let go of a finished copy.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(30);

/// One disk the backup copies: into `path`, the destination's name in the
/// private folder `staging`, then moved to the plan's destination.
struct LiveCopy<'p> {
    layer: &'p Layer,
    disk: String,
    format: &'static str,
    staging: Arc<Folder>,
    path: PathBuf,
    file: File,
    id: FileId,
}

/// A private folder made for the copies, to remove once they moved out.
struct Staging {
    parent: Folder,
    folder: Arc<Folder>,
    mount: u64,
}

impl Execution<'_, '_> {
    /// Copies the running `source`'s disks, UEFI variables and TPM state as
    /// they are at one moment; the clone's disks, one per disk of the plan.
    pub(super) fn copy_live(
        &mut self,
        plan: &StoragePlan,
        source: &Domain,
        clone_uuid: &str,
    ) -> Result<Vec<Option<NewDisk>>> {
        let running = self.host.state(source)? == "running";
        let live_xml = self.host.live_xml(source)?;
        let live = domain_xml::parse(&live_xml)?;
        let (new_disks, chosen) = choose_disks(plan, self.info, &live)?;
        let skipped: Vec<&str> = live
            .disks
            .iter()
            .filter_map(|d| d.target_dev.as_deref())
            .filter(|dev| !chosen.iter().any(|(d, _)| d == dev))
            .collect();
        let staging_name = OsString::from(format!("{STAGING_PREFIX}{clone_uuid}"));
        let mut stagings = Vec::new();
        let mut copies = Vec::with_capacity(chosen.len());
        // The job's BytesTotal, set from the plan, counts these copies whole.
        for (disk, layer) in chosen {
            copies.push(self.make_copy(disk, layer, &staging_name, &mut stagings)?);
        }
        let targets: Vec<Target<'_>> = copies
            .iter()
            .map(|c| Target {
                disk: &c.disk,
                file: &c.path,
                format: c.format,
            })
            .collect();
        let xml = backup::push_xml(&targets, &skipped);

        let entry = self.journal.intend(Artifact::Backup {
            domain: self.info.uuid.clone(),
            staging: staging_name.clone(),
            was_running: running,
            frozen: false,
            paused: false,
            resumed: false,
        })?;
        self.check_cancel()?;
        self.pause("before-backup");
        self.check_cancel()?;
        let agent = running && domain_xml::guest_agent_connected(&live_xml);
        let id_before = source.id();
        self.take_the_moment(plan, source, &xml, running, agent, entry)?;
        self.journal.made(entry, Made::Resumed)?;
        self.pause("backup-running");
        let files: Vec<&File> = copies.iter().map(|c| &c.file).collect();
        self.follow_backup(source, id_before, &files)?;
        self.pause("before-move");
        for copy in copies {
            self.move_into_place(copy)?;
        }
        for s in stagings {
            s.parent.remove_tree(&staging_name, s.folder.id())?;
            s.parent.sync()?;
        }
        Ok(new_disks)
    }

    /// The empty copy of `layer`'s image, formatted, in the private folder
    /// on the destination's mount (made when it is the first there).
    fn make_copy<'p>(
        &mut self,
        disk: String,
        layer: &'p Layer,
        staging_name: &OsStr,
        stagings: &mut Vec<Staging>,
    ) -> Result<LiveCopy<'p>> {
        let format = match layer.format.as_str() {
            "raw" => "raw",
            "qcow2" => "qcow2",
            other => {
                return Err(Error::Storage(format!(
                    "The disk image {} is in the format “{other}”; a live copy is made as raw or qcow2 only. Shut the VM down to copy it as it is.",
                    layer.source.path().display()
                )))
            }
        };
        let dest = &layer.dst.folder;
        let mount = dest.mount_id()?;
        let staging = match stagings.iter().find(|s| s.mount == mount) {
            Some(s) => s.folder.clone(),
            None => {
                let s = self.make_staging(dest, mount, staging_name)?;
                let folder = s.folder.clone();
                stagings.push(s);
                folder
            }
        };
        let name = &layer.dst.name;
        let path = staging.join(name);
        let (file, id) = staging.create_file(name)?;
        let size = layer.guest_size()?;
        match format {
            "qcow2" => overlay::create_plain(&file, &path, size)?,
            _ => file
                .set_len(size)
                .map_err(|e| io_error("set the size of", &path, e))?,
        }
        Ok(LiveCopy {
            layer,
            disk,
            format,
            staging,
            path,
            file,
            id,
        })
    }

    /// Makes the private folder for copies bound for `dest` (on `mount`).
    fn make_staging(&mut self, dest: &Folder, mount: u64, name: &OsStr) -> Result<Staging> {
        let parent = staging_parent(dest, mount)?;
        let entry = self.journal.intend(Artifact::tree_in(&parent, name))?;
        let folder = match parent.make_dir(name) {
            Ok(f) => f,
            Err(e) => {
                self.journal.dropped(entry)?;
                return Err(e.into());
            }
        };
        self.journal.made(entry, Made::File(folder.id()))?;
        // QEMU runs as another user: it may pass through, but not list.
        let owner = rustix::process::geteuid().as_raw();
        set_owner_and_mode(folder.fd(), (owner, owner), 0o711, folder.path())?;
        parent.sync()?;
        Ok(Staging {
            parent,
            folder: Arc::new(folder),
            mount,
        })
    }

    /// Holds the guest still (frozen through its agent when it answers,
    /// paused when it runs), starts the backup and copies the UEFI
    /// variables and TPM state, then lets the guest go on.
    fn take_the_moment(
        &mut self,
        plan: &StoragePlan,
        source: &Domain,
        xml: &str,
        running: bool,
        agent: bool,
        entry: Entry,
    ) -> Result<()> {
        let journal = &mut self.journal;
        let record = |made| journal.made(entry, made).map_err(Error::from);
        let mut held = Held::begin(source, &self.info.name, running, agent, record)?;
        self.progress.set_consistency(match held.consistent {
            true => Consistency::Filesystem,
            false => Consistency::Crash,
        });
        let t0 = Instant::now();
        backup::begin(source, xml).map_err(|e| {
            Error::Libvirt(format!(
                "libvirt could not start the backup of “{}”: {}",
                self.info.name,
                e.message()
            ))
        })?;
        let began = t0.elapsed();
        self.pause("backup-started");
        if let Some(nvram) = &plan.nvram {
            if let Some((src, dst)) = &nvram.copy {
                self.copy(src, dst, None)?;
            }
        }
        if let Some(tpm) = &plan.tpm {
            self.copy_tree(&tpm.source, &tpm.dst)?;
        }
        let paused = held.release()?;
        tracing::info!(
            "“{}” was held still for {} ms (the backup took {} ms to start){}",
            self.info.name,
            paused.as_millis(),
            began.as_millis(),
            if running { "" } else { "; it stays paused" }
        );
        self.progress
            .paused_ms
            .store(paused.as_millis() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Follows the backup job to its end, publishing its progress and
    /// starting the writeback of what QEMU wrote into `files` (so the final
    /// fsync has little left); fails when it failed, was cancelled, or the
    /// source stopped.
    fn follow_backup(
        &self,
        source: &Domain,
        id_before: Option<u32>,
        files: &[&File],
    ) -> Result<()> {
        let base = self.progress.ctl.bytes_done();
        let stopped = || {
            Error::Libvirt(format!(
                "“{}” stopped while it was being copied, so the copy is incomplete; it was removed. Start the VM and clone it again (or clone it shut off).",
                self.info.name
            ))
        };
        loop {
            self.check_cancel()?;
            match backup::job(source) {
                Ok(JobState::Running { processed, total }) => {
                    if total > 0 {
                        self.progress
                            .bytes_total
                            .store(base + total, Ordering::Relaxed);
                    }
                    self.progress
                        .ctl
                        .bytes_done
                        .store(base + processed, Ordering::Relaxed);
                }
                Ok(JobState::None) => break,
                Err(_) if !source.is_active().unwrap_or(false) => return Err(stopped()),
                Err(e) => return Err(e.into()),
            }
            files.iter().for_each(|f| start_writeback(f, 0, 0));
            std::thread::sleep(POLL);
        }
        if !source.is_active().unwrap_or(false) || source.id() != id_before {
            return Err(stopped());
        }
        match backup::last_ended(source)? {
            Some(ended) if ended.backup && ended.success => {
                // The last poll may have come before the last bytes.
                let total = self.progress.bytes_total.load(Ordering::Relaxed);
                self.progress.ctl.bytes_done.store(total, Ordering::Relaxed);
                Ok(())
            }
            Some(ended) if ended.backup => Err(Error::Libvirt(format!(
                "The backup of “{}” failed: {}",
                self.info.name,
                ended.message.as_deref().unwrap_or("libvirt gave no reason")
            ))),
            _ => Err(Error::Libvirt(format!(
                "The backup of “{}” ended without libvirt recording that it completed (was libvirtd restarted?); the copy was removed. Try again.",
                self.info.name
            ))),
        }
    }

    /// Waits until QEMU and libvirt let go of the finished copy, makes it
    /// the source's (owner, mode) and sparse again, and moves it to its
    /// destination name, never over anything there.
    fn move_into_place(&mut self, copy: LiveCopy<'_>) -> Result<()> {
        let LiveCopy {
            layer,
            format,
            staging,
            path,
            file,
            id,
            ..
        } = copy;
        wait_released(&file, &path)?;
        if format == "raw" {
            punch_holes(&file, &path)?;
        }
        let source = &layer.source;
        set_owner_and_mode(
            &file,
            owner_when_shut_off(source),
            source.copy_mode(),
            &path,
        )?;
        file.sync_all().map_err(|e| io_error("sync", &path, e))?;
        let dst = &layer.dst;
        let entry = self
            .journal
            .intend(Artifact::file_in(&dst.folder, &dst.name))?;
        // Known before the move: a crash right after it still finds it ours.
        self.journal.made(entry, Made::File(id))?;
        if let Err(e) = dst.folder.move_in(&staging, &dst.name) {
            self.journal.dropped(entry)?;
            return Err(e.into());
        }
        self.made.push((dst.folder.clone(), dst.name.clone(), id));
        dst.folder.sync()?;
        staging.sync()?;
        tracing::info!(
            "copied {} live to {}",
            source.path().display(),
            dst.path().display()
        );
        self.host.refresh_pool_of(&dst.path());
        Ok(())
    }
}

/// A disk the backup copies: its target name (`vda`) and its image.
type Copied<'p> = (String, &'p Layer);

/// The clone's disks, one per disk of the plan, and the disks the backup
/// copies: every disk a full copy would copy.
fn choose_disks<'p>(
    plan: &'p StoragePlan,
    info: &DomainInfo,
    live: &DomainInfo,
) -> Result<(Vec<Option<NewDisk>>, Vec<Copied<'p>>)> {
    let mut new_disks = Vec::with_capacity(plan.disks.len());
    let mut chosen = Vec::new();
    let disks = plan.disks.iter().zip(&plan.decision.disks).zip(&info.disks);
    for ((work, decision), disk) in disks {
        let layer =
            match work {
                DiskWork::Share => {
                    new_disks.push(None);
                    continue;
                }
                DiskWork::Copy { layers } => &layers[0],
                DiskWork::CloneVolume { .. } => {
                    unreachable!("the planner refuses a live clone of a volume libvirt copies")
                }
                DiskWork::Overlay { .. } => return Err(Error::InvalidOption(
                    "A live clone is a full copy; linked clones are made of shut-off templates."
                        .into(),
                )),
            };
        chosen.push((running_disk(info, disk, live)?, layer));
        new_disks.push(Some(NewDisk {
            // The copy stands on nothing: libvirt reads it anew.
            overlay: true,
            ..decision
                .new_disk(disk)
                .expect("a file copy has a planned target")
        }));
    }
    Ok((new_disks, chosen))
}

/// The running domain's disk `disk` (its target name), which must be the
/// one its definition names: the copy is of what QEMU runs on.
fn running_disk(info: &DomainInfo, disk: &Disk, live: &DomainInfo) -> Result<String> {
    let dev = disk.target_dev.clone().ok_or_else(|| {
        Error::Storage(format!(
            "A disk of “{}” has no target name, so libvirt cannot copy it while the VM runs.",
            info.name
        ))
    })?;
    let running = live
        .disks
        .iter()
        .find(|d| d.target_dev.as_deref() == Some(dev.as_str()));
    match running {
        Some(d) if d.source == disk.source => Ok(dev),
        _ => Err(Error::Storage(format!(
            "The disk {dev} of “{}” is not the one the running VM uses (it was changed since the VM started), so a live copy would not match the clone's definition. Shut the VM down to clone it.",
            info.name
        ))),
    }
}

/// The attribute in which libvirt remembers an image's owner while it gives
/// the image to QEMU's user (`+UID:+GID`).
const REMEMBERED_OWNER: &str = "trusted.libvirt.security.dac";

/// The owner a running VM's image has when the VM is shut off, which its
/// copy gets: libvirt gives the image back to that owner when the VM stops.
fn owner_when_shut_off(source: &Source) -> (u32, u32) {
    let mut buf = [0u8; 64];
    rustix::fs::fgetxattr(source.file(), REMEMBERED_OWNER, &mut buf)
        .ok()
        .and_then(|n| remembered_owner(&buf[..n]))
        .unwrap_or_else(|| source.owner())
}

/// `+UID:+GID`, as libvirt's DAC driver writes it.
fn remembered_owner(label: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(label).ok()?.trim_end_matches('\0');
    let (uid, gid) = text.split_once(':')?;
    Some((
        uid.strip_prefix('+')?.parse().ok()?,
        gid.strip_prefix('+')?.parse().ok()?,
    ))
}

/// The folder for the private folder of copies bound for `dest`: the
/// nearest at or above it that only root controls, on `dest`'s mount (the
/// finished copies are renamed into `dest`).
fn staging_parent(dest: &Folder, mount: u64) -> Result<Folder> {
    for dir in dest.path().ancestors() {
        match Folder::open_root_controlled(dir) {
            Ok(f) if f.mount_id()? == mount => return Ok(f),
            Ok(_) => {}
            Err(e) => tracing::debug!("{}: not for a live copy: {e}", dir.display()),
        }
    }
    Err(Error::Storage(format!(
        "No folder at or above {} on its filesystem is controlled by root alone, so libvirt cannot be given a path there that nobody else could redirect. Choose another target-dir (a storage pool's folder) for the live clone.",
        dest.path().display()
    )))
}

/// Waits until no QEMU has the copy open for writing and libvirt has given
/// it back (its owner is ours again): QEMU closes it and libvirt restores
/// its owner only after the job has ended.
fn wait_released(file: &File, path: &std::path::Path) -> Result<()> {
    let ours = rustix::process::geteuid().as_raw();
    let deadline = Instant::now() + RELEASE_TIMEOUT;
    loop {
        let owner_back = rustix::fs::fstat(file)
            .map_err(|e| io_error("read", path, e))?
            .st_uid
            == ours;
        // No image locks on this filesystem: the owner alone tells.
        let written = image_lock::has_writer(file).unwrap_or(false);
        if owner_back && !written {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Libvirt(format!(
                "QEMU or libvirt still holds the finished copy {} after {} s; the clone was removed. Try again.",
                path.display(),
                RELEASE_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The guest held still for the moment of the copy: its filesystems frozen
/// (when its agent answers) and, when it ran, paused. Dropped without
/// [`Held::release`], it lets the guest go on all the same.
struct Held<'d> {
    dom: &'d Domain,
    name: &'d str,
    /// A freeze was asked for (it may have happened after libvirt gave up
    /// waiting): thaw.
    frozen: bool,
    /// The agent said it froze filesystems.
    consistent: bool,
    paused_at: Option<Instant>,
}

impl<'d> Held<'d> {
    /// `record` writes down (durably) what is done to the guest, for a
    /// recovery after a crash: a freeze before it is asked for, a pause once
    /// it is done.
    fn begin(
        dom: &'d Domain,
        name: &'d str,
        running: bool,
        agent: bool,
        mut record: impl FnMut(Made) -> Result<()>,
    ) -> Result<Held<'d>> {
        let mut held = Held {
            dom,
            name,
            frozen: false,
            consistent: false,
            paused_at: None,
        };
        if agent {
            record(Made::Frozen)?;
            held.frozen = true;
            match backup::freeze(dom) {
                Ok(n) if n > 0 => held.consistent = true,
                Ok(_) => tracing::info!("the guest agent of “{name}” froze no filesystem"),
                Err(e) => tracing::warn!(
                    "the guest agent of “{name}” did not freeze its filesystems ({}); the copy is crash-consistent",
                    e.message()
                ),
            }
        }
        if running {
            dom.suspend().map_err(|e| {
                Error::Libvirt(format!(
                    "libvirt could not pause “{name}” for the moment of the copy: {}",
                    e.message()
                ))
            })?;
            held.paused_at = Some(Instant::now());
            record(Made::Paused)?;
        }
        Ok(held)
    }

    /// Lets the guest go on; how long it was paused.
    fn release(&mut self) -> Result<Duration> {
        let paused = match self.paused_at.take() {
            Some(at) => {
                self.dom.resume().map_err(|e| {
                    Error::Libvirt(format!(
                        "libvirt could not resume “{}” after the moment of the copy: {}. Resume it (virsh resume).",
                        self.name,
                        e.message()
                    ))
                })?;
                at.elapsed()
            }
            None => Duration::ZERO,
        };
        self.thaw();
        Ok(paused)
    }

    fn thaw(&mut self) {
        if std::mem::take(&mut self.frozen) {
            if let Err(e) = backup::thaw(self.dom) {
                tracing::error!(
                    "the guest agent of “{}” did not thaw its filesystems: {}",
                    self.name,
                    e.message()
                );
            }
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.paused_at.take().is_some() {
            if let Err(e) = self.dom.resume() {
                tracing::error!("cannot resume “{}”: {}", self.name, e.message());
            }
        }
        self.thaw();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libvirts_remembered_owner_is_read() {
        assert_eq!(remembered_owner(b"+65534:+65534"), Some((65534, 65534)));
        assert_eq!(remembered_owner(b"+0:+107\0"), Some((0, 107)));
        assert_eq!(remembered_owner(b"qemu:qemu"), None);
        assert_eq!(remembered_owner(b"+1"), None);
    }
}
