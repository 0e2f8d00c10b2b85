//! The clone engine: checks a request, plans the clone's identity and
//! storage, creates everything under a journal, and defines the new domain
//! last. Any failure or cancel rolls back all that the clone created; a
//! clone whose definition is committed is never touched again.
//! Everything here blocks: run it in `spawn_blocking`.

pub mod checks;
pub mod identity;
pub mod plan;
pub mod reserve;

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::domain_xml::{self, CloneEdits, DiskTarget, DomainInfo, NewDisk};
use crate::error::{Error, Result};
use crate::events::StartWatch;
use crate::failpoint;
use crate::host::Host;
use crate::journal::{Artifact, Journal, JournalDir, Made};
use crate::naming;
use crate::options::{CloneOptions, StorageMode};
use crate::storage::copy::{self, CopyControl, CopyHooks};
use crate::storage::error::FileError;
use crate::storage::folder::{FileId, Folder};
use crate::storage::{overlay, volume};
use identity::Identity;
use plan::{Dest, DiskWork, Layer, Planner, StoragePlan};
use reserve::{name_key, path_key, volume_key, Reservation, Reservations};

pub struct CloneRequest {
    pub source: String,
    pub new_name: String,
    pub options: CloneOptions,
}

/// What a running clone is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Copying = 0,
    Customizing = 1,
    Defining = 2,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Copying => "copying",
            Phase::Customizing => "customizing",
            Phase::Defining => "defining",
        }
    }
}

/// Progress shared with the job that watches the clone.
#[derive(Clone, Default)]
pub struct Progress {
    pub ctl: CopyControl,
    pub bytes_total: Arc<AtomicU64>,
    phase: Arc<AtomicU8>,
}

impl Progress {
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            1 => Phase::Customizing,
            2 => Phase::Defining,
            _ => Phase::Copying,
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone)]
pub struct CloneOutcome {
    pub source_uuid: String,
    pub uuid: String,
    pub name: String,
}

pub struct Engine {
    host: Arc<Host>,
    journals: JournalDir,
    reservations: Reservations,
    /// Paths and volumes that journals of failed rollbacks still hold.
    held: Mutex<Reservation>,
}

impl Engine {
    /// The engine on `host`, with its journals in `journals`; `left` is what
    /// earlier rollbacks could not remove (no new clone may take it).
    pub fn new(host: Arc<Host>, journals: JournalDir, left: &[Artifact]) -> Engine {
        let reservations = Reservations::default();
        let engine = Engine {
            host,
            journals,
            held: Mutex::new(reservations.start()),
            reservations,
        };
        engine.hold(left);
        engine
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Keeps what a rollback left from being taken by a new clone.
    fn hold(&self, left: &[Artifact]) {
        let mut held = self.held.lock().expect("held lock");
        for artifact in left {
            if let Some(path) = artifact.path() {
                held.take(path_key(&path));
            }
            if let Artifact::Volume { pool, name, .. } = artifact {
                held.take(volume_key(pool, name));
            }
        }
    }

    /// Whether `name` may be given to a new clone now.
    pub fn check_name(&self, name: &str) -> Result<()> {
        naming::validate_vm_name(name)?;
        if self.host.name_taken(name) {
            return Err(name_exists(name));
        }
        if self.reservations.is_held(&name_key(name)) {
            return Err(name_busy(name));
        }
        Ok(())
    }

    /// Checks a batch of clones of `source` before any of them starts: at
    /// least one name and at most [`MAX_BATCH`], each valid, free and given
    /// once, and no option that identifies a single VM shared by several.
    pub fn check_batch(&self, source: &str, names: &[String], opts: &CloneOptions) -> Result<()> {
        if names.is_empty() {
            return Err(Error::InvalidName(
                "Give at least one name for the clones.".into(),
            ));
        }
        if names.len() > MAX_BATCH {
            return Err(Error::InvalidName(format!(
                "{} names were given; one call makes at most {MAX_BATCH} clones. Split the batch.",
                names.len()
            )));
        }
        if names.len() > 1 && (opts.uuid.is_some() || opts.mac_addresses.is_some()) {
            return Err(Error::InvalidOption(
                "Options “uuid” and “mac-addresses” identify one VM; they cannot be shared by several clones.".into(),
            ));
        }
        let mut seen = HashSet::new();
        for name in names {
            if !seen.insert(name.as_str()) {
                return Err(Error::InvalidName(format!(
                    "The name “{name}” is given twice; each clone needs its own name."
                )));
            }
        }
        self.host.lookup(source)?;
        names.iter().try_for_each(|n| self.check_name(n))
    }

    /// Makes the whole clone. Returns once the domain is defined and its
    /// storage is complete.
    pub fn clone_vm(&self, req: &CloneRequest, progress: &Progress) -> Result<CloneOutcome> {
        naming::validate_vm_name(&req.new_name)?;
        let mut reservation = self.reservations.start();
        if !reservation.take(name_key(&req.new_name)) {
            return Err(name_busy(&req.new_name));
        }
        if self.host.name_taken(&req.new_name) {
            return Err(name_exists(&req.new_name));
        }
        let dom = self.host.lookup(&req.source)?;
        let xml = self.host.inactive_xml(&dom)?;
        let info = domain_xml::parse(&xml)?;
        self.host.ensure_shut_off(&dom, &info.name)?;
        let opts = &req.options;
        if opts.storage == StorageMode::Linked && !info.is_template {
            return Err(Error::NotATemplate(format!(
                "“{}” is not a template, so a linked clone of it could break when it changes. Convert it to a template first (ConvertToTemplate), or make a full copy (storage “copy”).",
                info.name
            )));
        }
        checks::check(&info, opts)?;
        let id = identity::choose(
            &self.host,
            &self.reservations,
            &mut reservation,
            &info,
            opts.uuid.as_deref(),
            opts.mac_addresses.as_deref(),
        )?;
        let mut plan = Planner {
            host: &self.host,
            reservations: &self.reservations,
            reservation: &mut reservation,
            info: &info,
            new_name: &req.new_name,
            new_uuid: &id.uuid,
            target_dir: opts.target_dir.as_deref(),
            mode: opts.storage,
            live: false,
        }
        .plan()?;
        if info.is_template {
            for work in &mut plan.disks {
                if let DiskWork::Copy { layers, .. } = work {
                    layers
                        .iter_mut()
                        .for_each(|l| l.source.make_copies_writable());
                }
            }
        }
        // From here on a start of the source stops the clone; the images
        // are locked against QEMU writers already. Check once more, now
        // that nothing can slip between the check and the watch.
        let watch = Watch {
            start: self
                .host
                .watch_starts(&info.uuid, progress.ctl.cancelled.clone()),
            generation: self.host.generation(),
        };
        self.host.ensure_shut_off(&dom, &info.name)?;
        progress
            .bytes_total
            .store(plan.bytes_to_copy()?, Ordering::Relaxed);

        let mut journal = Journal::create(&self.journals, &id.uuid)?;
        failpoint::step("after-journal", &progress.ctl.cancelled);
        let run = Execution {
            host: &self.host,
            journal: &mut journal,
            progress,
            info: &info,
            watch: &watch,
            made: Vec::new(),
        };
        // A panic must not skip the rollback.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run.execute(&plan, &xml, &req.new_name, &id, opts)
        }))
        .unwrap_or_else(|_| Err(Error::Libvirt("internal error: the clone panicked".into())))
        .map_err(|e| watch.explain(e, &info.name));
        let result = result.and_then(|()| {
            journal.commit().map_err(|e| {
                Error::Storage(format!(
                    "The clone was defined, but the journal could not record it as complete ({e}), so it was removed again. Free space in the state folder and try again."
                ))
            })
        });
        match result {
            Ok(()) => {
                failpoint::step("after-commit", &progress.ctl.cancelled);
                tracing::info!("cloned “{}” to “{}” ({})", info.name, req.new_name, id.uuid);
                Ok(CloneOutcome {
                    source_uuid: info.uuid.clone(),
                    uuid: id.uuid,
                    name: req.new_name.clone(),
                })
            }
            Err(e) => {
                tracing::warn!(
                    "clone of “{}” to “{}” failed: {e}; rolling back",
                    info.name,
                    req.new_name
                );
                let left = journal.roll_back(&self.host);
                self.hold(&left);
                Err(e)
            }
        }
    }
}

/// At most this many names in one `CloneVms`.
pub const MAX_BATCH: usize = 100;

fn name_exists(name: &str) -> Error {
    Error::NameExists(format!(
        "A VM named “{name}” already exists. Choose another name."
    ))
}

fn name_busy(name: &str) -> Error {
    Error::NameExists(format!(
        "Another clone named “{name}” is being made right now. Choose another name."
    ))
}

/// How the clone knows its source stayed shut off.
struct Watch {
    start: Option<Arc<StartWatch>>,
    /// The libvirt connection's generation when the watch began.
    generation: u64,
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
    fn explain(&self, e: Error, name: &str) -> Error {
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
struct Execution<'a, 'j> {
    host: &'a Host,
    journal: &'a mut Journal<'j>,
    progress: &'a Progress,
    info: &'a DomainInfo,
    watch: &'a Watch,
    /// Every file made, to check before the define that it is still there.
    made: Vec<(Arc<Folder>, std::ffi::OsString, FileId)>,
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
    fn check_cancel(&self) -> Result<()> {
        match self.progress.ctl.is_cancelled() {
            true => Err(Error::Cancelled),
            false => Ok(()),
        }
    }

    fn pause(&self, step: &str) {
        failpoint::step(step, &self.progress.ctl.cancelled);
    }

    fn execute(
        mut self,
        plan: &StoragePlan,
        xml: &str,
        new_name: &str,
        id: &Identity,
        opts: &CloneOptions,
    ) -> Result<()> {
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
            if let Some(source) = &nvram.source {
                self.copy(source, &nvram.dst, None)?;
            }
        }
        if let Some(tpm) = &plan.tpm {
            self.check_cancel()?;
            self.pause("before-tpm");
            self.copy_tree(&tpm.source, &tpm.dst)?;
        }
        self.check_cancel()?;
        let nvram = plan.nvram.as_ref().map(|n| n.dst.path());
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
        self.check_source()?;
        self.pause("before-define");
        self.check_cancel()?;
        self.define(&new_xml, new_name, &id.uuid)?;
        self.pause("after-define");
        Ok(())
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
        if self.watch.source_started() {
            return Err(started_meanwhile(&self.info.name));
        }
        if self.watch.interrupted(self.host) {
            return Err(Error::Libvirt(format!(
                "The connection to libvirtd was lost while “{}” was being cloned, so vmclone cannot be sure it stayed shut off; the copy was removed. Try again.",
                self.info.name
            )));
        }
        let source = self.host.lookup(&self.info.uuid)?;
        self.host
            .ensure_shut_off(&source, &self.info.name)
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
    fn copy(
        &mut self,
        source: &copy::Source,
        dst: &Dest,
        rebase: Option<&(PathBuf, String)>,
    ) -> Result<()> {
        let path = dst.path();
        let entry = self.journal.intend(Artifact::File {
            folder: dst.folder.path().to_owned(),
            folder_id: dst.folder.id(),
            name: dst.name.clone(),
            id: None,
        })?;
        let mut rec = Recorder {
            journal: self.journal,
            entry,
            path: path.clone(),
            id: None,
            rebase,
        };
        let result = copy::copy_file(source, &dst.folder, &dst.name, &self.progress.ctl, &mut rec);
        let made = rec.id;
        match (result, made) {
            (Ok(method), Some(id)) => {
                self.made.push((dst.folder.clone(), dst.name.clone(), id));
                tracing::info!(
                    "copied {} to {} ({method:?})",
                    source.path().display(),
                    path.display()
                );
                self.host.refresh_pool_of(&path);
                Ok(())
            }
            (Ok(_), None) => unreachable!("a copy reports the file it made"),
            (Err(e), None) => {
                // Nothing was made (the name was taken, or the folder refused).
                self.journal.dropped(entry)?;
                Err(e.into())
            }
            (Err(e), Some(_)) => Err(e.into()),
        }
    }

    fn copy_tree(&mut self, source: &Folder, dst: &Dest) -> Result<()> {
        let entry = self.journal.intend(Artifact::Tree {
            folder: dst.folder.path().to_owned(),
            folder_id: dst.folder.id(),
            name: dst.name.clone(),
            id: None,
        })?;
        let mut rec = Recorder {
            journal: self.journal,
            entry,
            path: dst.path(),
            id: None,
            rebase: None,
        };
        let result = copy::copy_tree(source, &dst.folder, &dst.name, &self.progress.ctl, &mut rec);
        match (result, rec.id) {
            (Ok(()), Some(id)) => {
                self.made.push((dst.folder.clone(), dst.name.clone(), id));
                Ok(())
            }
            (Ok(()), None) => unreachable!("a tree copy reports the folder it made"),
            (Err(e), None) => {
                self.journal.dropped(entry)?;
                Err(tpm_error(e, source))
            }
            (Err(e), Some(_)) => Err(tpm_error(e, source)),
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
        let entry = self.journal.intend(Artifact::File {
            folder: dst.folder.path().to_owned(),
            folder_id: dst.folder.id(),
            name: dst.name.clone(),
            id: None,
        })?;
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
