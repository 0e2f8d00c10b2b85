//! One run of a clone's plan: every artifact written down in the journal
//! before it is made and identified right after, the source watched, the
//! domain defined last.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::identity::Identity;
use super::plan::{Dest, DiskWork, Layer, StoragePlan};
use super::{Phase, Progress};
use crate::domain_xml::{self, CloneEdits, DiskTarget, DomainInfo, NewDisk};
use crate::error::{Error, Result};
use crate::events::StartWatch;
use crate::failpoint;
use crate::host::Host;
use crate::journal::{Artifact, Journal, Made};
use crate::naming;
use crate::options::{CloneOptions, GuestIdentity};
use crate::storage::copy::{self, CopyHooks};
use crate::storage::error::FileError;
use crate::storage::folder::{FileId, Folder};
use crate::storage::{overlay, volume};

/// How the clone knows its source stayed shut off.
pub(super) struct Watch {
    pub(super) start: Option<Arc<StartWatch>>,
    /// The libvirt connection's generation when the watch began.
    pub(super) generation: u64,
}

impl Watch {
    fn source_started(&self) -> bool {
        self.start.as_ref().is_some_and(|w| w.started())
    }

    /// Whether the watch may have missed a start: the connection was made
    /// anew meanwhile.
    fn interrupted(&self, host: &Host) -> bool {
        host.generation() != self.generation
    }

    /// A cancel caused by the source starting is that, not a cancel.
    pub(super) fn explain(&self, e: Error, name: &str) -> Error {
        match self.source_started() {
            true => started_meanwhile(name),
            false => e,
        }
    }
}

fn started_meanwhile(name: &str) -> Error {
    Error::SourceNotShutOff(format!(
        "“{name}” was started while it was being cloned, so the copy may be inconsistent; it was removed. Shut the VM down and clone it again."
    ))
}

/// One execution of a plan, recording every artifact before making it.
pub(super) struct Execution<'a, 'j> {
    pub(super) host: &'a Host,
    pub(super) journal: &'a mut Journal<'j>,
    pub(super) progress: &'a Progress,
    pub(super) info: &'a DomainInfo,
    pub(super) watch: &'a Watch,
    /// `<state dir>/work`, for the scratch files of a customization.
    pub(super) work: &'a Folder,
    /// Every file made, to check before the define that it is still there.
    pub(super) made: Vec<(Arc<Folder>, std::ffi::OsString, FileId)>,
    /// A live clone's running (or paused) source.
    pub(super) live: Option<&'a virt::domain::Domain>,
}

/// Records a new file in the journal the moment it exists, and rebases a
/// copied qcow2 layer onto the copy below it.
struct Recorder<'r, 'j> {
    journal: &'r mut Journal<'j>,
    entry: crate::journal::Entry,
    path: PathBuf,
    id: Option<FileId>,
    rebase: Option<&'r (PathBuf, String)>,
}

impl CopyHooks for Recorder<'_, '_> {
    fn created(&mut self, id: FileId) -> Result<(), FileError> {
        self.id = Some(id);
        self.journal
            .made(self.entry, Made::File(id))
            .map_err(|e| journal_failed(&self.path, e))
    }

    fn copied(&mut self, file: &File) -> Result<(), FileError> {
        match self.rebase {
            Some((backing, format)) => {
                overlay::rebase(file, &self.path, backing, format).map_err(|e| FileError::Io {
                    op: "rebase",
                    path: self.path.clone(),
                    source: io::Error::other(e.to_string()),
                })
            }
            None => Ok(()),
        }
    }
}

fn journal_failed(path: &std::path::Path, e: crate::journal::JournalError) -> FileError {
    FileError::Io {
        op: "record in the clone journal",
        path: path.to_owned(),
        source: io::Error::other(e.to_string()),
    }
}

impl Execution<'_, '_> {
    pub(super) fn check_cancel(&self) -> Result<()> {
        match self.progress.ctl.is_cancelled() {
            true => Err(Error::Cancelled),
            false => Ok(()),
        }
    }

    pub(super) fn pause(&self, step: &str) {
        failpoint::step(step, &self.progress.ctl.cancelled);
    }

    pub(super) fn execute(
        mut self,
        plan: &StoragePlan,
        xml: &str,
        new_name: &str,
        id: &Identity,
        opts: &CloneOptions,
    ) -> Result<()> {
        // A reset recognises and changes the guest before anything is copied
        // from a shut-off source; a live copy is changed once it is made (the
        // running source's images move on meanwhile).
        let reset = opts.guest_identity == GuestIdentity::Reset;
        let host_name = naming::host_name(new_name, &id.uuid);
        let customized = match (reset, self.live) {
            (true, None) => {
                self.progress.set_phase(Phase::Customizing);
                let c = self.customize_source(plan, &id.uuid, &host_name)?;
                self.progress.set_phase(Phase::Copying);
                Some(c)
            }
            _ => None,
        };
        let new_disks = match self.live {
            Some(source) => self.copy_live(plan, source, &id.uuid)?,
            None => self.copy_shut_off(plan)?,
        };
        self.check_cancel()?;
        let customized = match (reset, self.live) {
            (true, Some(_)) => {
                self.progress.set_phase(Phase::Customizing);
                Some(self.customize_copies(plan, &id.uuid, &host_name)?)
            }
            _ => customized,
        };
        if let Some(c) = customized {
            self.progress.set_phase(Phase::Customizing);
            self.apply_customization(plan, c)?;
        }
        let nvram = plan.nvram.as_ref().map(|n| n.path.clone());
        let edits = CloneEdits {
            new_name,
            new_uuid: &id.uuid,
            new_genid: &id.genid,
            macs: &id.macs,
            disks: &new_disks,
            nvram: nvram.as_deref(),
            vcpus: opts.vcpus,
            memory_kib: opts.memory_mib.map(|m| m * 1024),
        };
        let new_xml = domain_xml::rewrite(xml, &edits)?;
        self.progress.set_phase(Phase::Defining);
        self.check_still_ours()?;
        // A live copy is complete once its backup is: the source may do as it likes.
        if self.live.is_none() {
            self.check_source()?;
        }
        self.pause("before-define");
        self.check_cancel()?;
        self.define(&new_xml, new_name, &id.uuid)?;
        self.pause("after-define");
        Ok(())
    }

    /// Copies the shut-off source's disks, UEFI variables and TPM state; the
    /// clone's disks, one per disk of the plan.
    fn copy_shut_off(&mut self, plan: &StoragePlan) -> Result<Vec<Option<NewDisk>>> {
        let mut new_disks = Vec::with_capacity(plan.disks.len());
        let disks = plan
            .disks
            .iter()
            .zip(&plan.decision.disks)
            .zip(&self.info.disks);
        for (i, ((work, decision), disk)) in disks.enumerate() {
            self.check_cancel()?;
            self.pause(&format!("before-disk-{i}"));
            self.check_cancel()?;
            new_disks.push(self.make_disk(work, decision.new_disk(disk))?);
        }
        if let Some(nvram) = &plan.nvram {
            self.pause("before-nvram");
            if let Some((source, dst)) = &nvram.copy {
                self.copy(source, dst, None)?;
            }
        }
        if let Some(tpm) = &plan.tpm {
            self.check_cancel()?;
            self.pause("before-tpm");
            self.copy_tree(&tpm.source, &tpm.dst)?;
        }
        Ok(new_disks)
    }

    /// Every file made is still the one under its name: nobody moved or
    /// replaced it (the domain is about to point at those names).
    fn check_still_ours(&self) -> Result<()> {
        for (folder, name, id) in &self.made {
            let found = folder.lookup(name)?;
            if found.map(|e| e.id) != Some(*id) {
                return Err(FileError::Replaced {
                    path: folder.join(name),
                }
                .into());
            }
        }
        Ok(())
    }

    /// The source stayed shut off for the whole run.
    fn check_source(&self) -> Result<()> {
        // The lookup first: it reconnects when libvirtd went away, which the
        // generation check below must then see (events may have been missed).
        let source = self.host.lookup(&self.info.uuid);
        if self.watch.source_started() {
            return Err(started_meanwhile(&self.info.name));
        }
        if self.watch.interrupted(self.host) {
            return Err(Error::Libvirt(format!(
                "The connection to libvirtd was lost while “{}” was being cloned, so vmclone cannot be sure it stayed shut off; the copy was removed. Try again.",
                self.info.name
            )));
        }
        self.host
            .ensure_shut_off(&source?, &self.info.name)
            .map_err(|_| started_meanwhile(&self.info.name))
    }

    fn define(&mut self, xml: &str, name: &str, uuid: &str) -> Result<()> {
        let entry = self.journal.intend(Artifact::Domain {
            uuid: uuid.to_owned(),
        })?;
        match self.host.define(xml, name, uuid) {
            Ok(_) => Ok(self.journal.made(entry, Made::Domain)?),
            Err(failure) => {
                if !failure.may_exist {
                    self.journal.dropped(entry)?;
                }
                Err(failure.error)
            }
        }
    }

    /// Copies `source` to `dst` under the journal; `rebase` points a copied
    /// qcow2 layer at the copy of its backing image.
    pub(super) fn copy(
        &mut self,
        source: &copy::Source,
        dst: &Dest,
        rebase: Option<&(PathBuf, String)>,
    ) -> Result<()> {
        let artifact = Artifact::file_in(&dst.folder, &dst.name);
        let method = self.recorded(
            artifact,
            dst,
            rebase,
            |ctl, rec| copy::copy_file(source, &dst.folder, &dst.name, ctl, rec),
            Error::from,
        )?;
        tracing::info!(
            "copied {} to {} ({method:?})",
            source.path().display(),
            dst.path().display()
        );
        self.host.refresh_pool_of(&dst.path());
        Ok(())
    }

    pub(super) fn copy_tree(&mut self, source: &Folder, dst: &Dest) -> Result<()> {
        let artifact = Artifact::tree_in(&dst.folder, &dst.name);
        self.recorded(
            artifact,
            dst,
            None,
            |ctl, rec| copy::copy_tree(source, &dst.folder, &dst.name, ctl, rec),
            |e| tpm_error(e, source),
        )
    }

    /// Runs `make`, a copy into `dst` that reports what it made through the
    /// recorder, under the journal entry `artifact`: what it made is kept for
    /// the rollback, and a failure that made nothing drops the entry.
    fn recorded<T>(
        &mut self,
        artifact: Artifact,
        dst: &Dest,
        rebase: Option<&(PathBuf, String)>,
        make: impl FnOnce(&copy::CopyControl, &mut Recorder) -> std::result::Result<T, FileError>,
        fail: impl FnOnce(FileError) -> Error,
    ) -> Result<T> {
        let entry = self.journal.intend(artifact)?;
        let progress = self.progress;
        let mut rec = Recorder {
            journal: self.journal,
            entry,
            path: dst.path(),
            id: None,
            rebase,
        };
        let result = make(&progress.ctl, &mut rec);
        match (result, rec.id) {
            (Ok(made), Some(id)) => {
                self.made.push((dst.folder.clone(), dst.name.clone(), id));
                Ok(made)
            }
            (Ok(_), None) => unreachable!("a copy reports the file or folder it made"),
            (Err(e), None) => {
                // Nothing was made (the name was taken, or the folder refused).
                self.journal.dropped(entry)?;
                Err(fail(e))
            }
            (Err(e), Some(_)) => Err(fail(e)),
        }
    }

    /// Makes the clone's disk of `work`; `planned` is the disk as decided
    /// (None for a shared one, or a volume whose path libvirt chooses).
    fn make_disk(&mut self, work: &DiskWork, planned: Option<NewDisk>) -> Result<Option<NewDisk>> {
        let new = match work {
            DiskWork::Share => return Ok(None),
            DiskWork::Copy { layers } => {
                for Layer {
                    source,
                    dst,
                    rebase,
                    ..
                } in layers
                {
                    self.check_cancel()?;
                    self.copy(source, dst, rebase.as_ref())?;
                }
                NewDisk {
                    // A copied chain's copies are probed anew by libvirt.
                    overlay: layers.len() > 1,
                    ..planned.expect("a file copy has a planned target")
                }
            }
            DiskWork::CloneVolume {
                source,
                pool,
                new_name,
                format,
                by_name,
                is_block,
            } => {
                let path = self.clone_volume(source, pool, new_name, format.as_deref())?;
                let target = match (*by_name, *is_block) {
                    (true, _) => DiskTarget::Volume {
                        pool: pool.clone(),
                        volume: new_name.clone(),
                    },
                    (false, true) => DiskTarget::Block(path),
                    (false, false) => DiskTarget::File(path),
                };
                NewDisk {
                    target,
                    driver_type: None,
                    overlay: false,
                }
            }
            DiskWork::Overlay {
                backing,
                backing_format,
                virtual_size,
                owner,
                dst,
                ..
            } => {
                self.overlay(backing, backing_format, *virtual_size, *owner, dst)?;
                planned.expect("an overlay has a planned target")
            }
        };
        Ok(Some(new))
    }

    /// A new volume in `pool`, copied by libvirt; returns its path.
    fn clone_volume(
        &mut self,
        source: &virt::storage_vol::StorageVol,
        pool: &str,
        new_name: &str,
        format: Option<&str>,
    ) -> Result<PathBuf> {
        let entry = self.journal.intend(Artifact::Volume {
            pool: pool.to_owned(),
            name: new_name.to_owned(),
            key: None,
        })?;
        let made = source
            .lookup_storage_pool()
            .and_then(|p| volume::clone_volume(&p, source, new_name, format));
        let vol = match made {
            Ok(vol) => vol,
            Err(e) => {
                // Only "it exists already" proves nothing of ours was made.
                if volume::exists_error(&e) {
                    self.journal.dropped(entry)?;
                } else if let Some(key) = self.host.volume_key_after_failure(pool, new_name) {
                    // The call failed but the volume is there: its name was free
                    // and held by this clone, so it is ours, and the rollback
                    // (which deletes a volume only by its key) removes it.
                    self.journal.made(entry, Made::Volume(key))?;
                }
                return Err(Error::Storage(format!(
                    "libvirt could not copy volume “{}” in pool “{pool}”: {}",
                    source.name().unwrap_or_default(),
                    e.message()
                )));
            }
        };
        self.journal.made(entry, Made::Volume(vol.key()?))?;
        self.progress.ctl.bytes_done.fetch_add(
            source.info().map(|i| i.allocation).unwrap_or(0),
            Ordering::Relaxed,
        );
        Ok(PathBuf::from(vol.path()?))
    }

    /// A qcow2 overlay of `backing`, private to its owner (0600), synced
    /// with its folder.
    fn overlay(
        &mut self,
        backing: &std::path::Path,
        backing_format: &str,
        virtual_size: u64,
        owner: (u32, u32),
        dst: &Dest,
    ) -> Result<()> {
        let path = dst.path();
        let entry = self
            .journal
            .intend(Artifact::file_in(&dst.folder, &dst.name))?;
        let (file, id) = match dst.folder.create_file(&dst.name) {
            Ok(made) => made,
            Err(e) => {
                self.journal.dropped(entry)?;
                return Err(e.into());
            }
        };
        self.journal.made(entry, Made::File(id))?;
        self.made.push((dst.folder.clone(), dst.name.clone(), id));
        overlay::create(&file, &path, backing, backing_format, virtual_size)?;
        copy::set_owner_and_mode(&file, owner, 0o600, &path)?;
        file.sync_all()
            .map_err(|e| crate::storage::error::io_error("sync", &path, e))?;
        dst.folder.sync()?;
        self.host.refresh_pool_of(&path);
        Ok(())
    }
}

fn tpm_error(e: FileError, source: &Folder) -> Error {
    match e {
        FileError::Cancelled => Error::Cancelled,
        FileError::Exists { path } => Error::Storage(format!(
            "TPM state already exists at {}; vmclone never overwrites it. Remove it if it is left over, then try again.",
            path.display()
        )),
        other => Error::Storage(format!(
            "Copying the TPM state {}: {other}",
            source.path().display()
        )),
    }
}
