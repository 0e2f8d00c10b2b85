//! The clone engine: checks a request, plans the clone's identity and
//! storage, creates everything under a journal, and defines the new domain
//! last. Any failure or cancel rolls back all that the clone created.
//! Everything here blocks: run it in `spawn_blocking`.

pub mod identity;
pub mod plan;
pub mod reserve;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::domain_xml::{self, CloneEdits, DiskSource, DiskTarget, DomainInfo, NewDisk};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::journal::{Artifact, Journal};
use crate::naming;
use crate::options::{CloneOptions, StorageMode};
use crate::storage::copy::{self, CopyControl, CopyError};
use crate::storage::{overlay, set_owner_and_mode, volume};
use identity::Identity;
use plan::{DiskOp, Planner, StoragePlan};
use reserve::{name_key, Reservations};

pub struct CloneRequest {
    pub source: String,
    pub new_name: String,
    pub options: CloneOptions,
}

/// Progress shared with the job that watches the clone.
#[derive(Clone, Default)]
pub struct Progress {
    pub ctl: CopyControl,
    pub bytes_total: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
pub struct CloneOutcome {
    pub source_uuid: String,
    pub uuid: String,
    pub name: String,
}

pub struct Engine {
    host: Arc<Host>,
    state_dir: PathBuf,
    reservations: Reservations,
}

impl Engine {
    pub fn new(host: Arc<Host>, state_dir: PathBuf) -> Engine {
        Engine {
            host,
            state_dir,
            reservations: Reservations::default(),
        }
    }

    pub fn host(&self) -> &Host {
        &self.host
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
    /// least one name, each valid, free and given once, and no option that
    /// identifies a single VM shared by several.
    pub fn check_batch(&self, source: &str, names: &[String], opts: &CloneOptions) -> Result<()> {
        if names.is_empty() {
            return Err(Error::InvalidName(
                "Give at least one name for the clones.".into(),
            ));
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
        let id = identity::choose(
            &self.host,
            &self.reservations,
            &mut reservation,
            &info,
            opts.uuid.as_deref(),
            opts.mac_addresses.as_deref(),
        )?;
        let plan = Planner {
            host: &self.host,
            reservations: &self.reservations,
            reservation: &mut reservation,
            info: &info,
            new_name: &req.new_name,
            new_uuid: &id.uuid,
            target_dir: opts.target_dir.as_deref(),
            mode: opts.storage,
        }
        .plan()?;
        progress
            .bytes_total
            .store(bytes_to_move(&plan)?, Ordering::Relaxed);

        let mut journal = Journal::create(&self.state_dir, &id.uuid)?;
        let run = Execution {
            host: &self.host,
            journal: &mut journal,
            progress,
            info: &info,
        };
        // A panic must not skip the rollback.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run.execute(&plan, &xml, &req.new_name, &id, opts)
        }))
        .unwrap_or_else(|_| Err(Error::Libvirt("internal error: the clone panicked".into())));
        match result {
            Ok(()) => {
                journal.commit();
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
                journal.roll_back(&self.host);
                Err(e)
            }
        }
    }
}

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

/// The bytes the plan moves, for progress: allocated data, not apparent size.
fn bytes_to_move(plan: &StoragePlan) -> Result<u64> {
    let mut total = 0;
    for op in &plan.disks {
        total += match op {
            DiskOp::CopyFile { src, .. } => copy::allocated_bytes(src)?,
            DiskOp::CloneVolume { source, .. } => source.info()?.allocation,
            DiskOp::Keep | DiskOp::Overlay { .. } => 0,
        };
    }
    if let Some((src, _)) = &plan.nvram {
        if src.exists() {
            total += copy::allocated_bytes(src)?;
        }
    }
    Ok(total)
}

/// One execution of a plan, recording every artifact before making it.
struct Execution<'a> {
    host: &'a Host,
    journal: &'a mut Journal,
    progress: &'a Progress,
    info: &'a DomainInfo,
}

impl Execution<'_> {
    fn check_cancel(&self) -> Result<()> {
        match self.progress.ctl.is_cancelled() {
            true => Err(Error::Cancelled),
            false => Ok(()),
        }
    }

    /// Records `artifact`, then makes it. Every maker leaves nothing behind
    /// when it fails (or found the thing already there, not ours), so a
    /// failure takes the artifact out of the journal again.
    fn create<T>(&mut self, artifact: Artifact, make: impl FnOnce() -> Result<T>) -> Result<T> {
        self.journal.record(artifact)?;
        let made = make();
        if made.is_err() {
            self.journal.forget_last()?;
        }
        made
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
        for (op, disk) in plan.disks.iter().zip(&self.info.disks) {
            self.check_cancel()?;
            new_disks.push(self.make_disk(op, &disk.source)?);
        }
        if let Some((src, dst)) = &plan.nvram {
            if src.exists() {
                self.copy_file(src, dst)?;
            }
        }
        if let Some((src, dst)) = &plan.tpm {
            self.check_cancel()?;
            let ctl = &self.progress.ctl;
            self.create(Artifact::Tree(dst.clone()), || {
                copy::copy_tree(src, dst, ctl).map_err(|e| match e {
                    CopyError::Cancelled => Error::Cancelled,
                    CopyError::Exists { path } => Error::Storage(format!(
                        "TPM state already exists at {}; vmclone never overwrites it. Remove it if it is left over, then try again.",
                        path.display()
                    )),
                    other => Error::Storage(format!("Copying the TPM state {}: {other}", src.display())),
                })
            })?;
        }
        self.check_cancel()?;
        let edits = CloneEdits {
            new_name,
            new_uuid: &id.uuid,
            new_genid: &id.genid,
            macs: &id.macs,
            disks: &new_disks,
            nvram: plan.nvram.as_ref().map(|(_, dst)| dst.as_path()),
            vcpus: opts.vcpus,
            memory_kib: opts.memory_mib.map(|m| m * 1024),
        };
        let new_xml = domain_xml::rewrite(xml, &edits)?;
        // Someone may have started the source while we copied: such a copy is torn.
        let source = self.host.lookup(&self.info.uuid)?;
        self.host.ensure_shut_off(&source, &self.info.name).map_err(|_| {
            Error::SourceNotShutOff(format!(
                "“{}” was started while it was being cloned, so the copy may be inconsistent; it was removed. Shut the VM down and clone it again.",
                self.info.name
            ))
        })?;
        let host = self.host;
        self.create(
            Artifact::Domain {
                uuid: id.uuid.clone(),
            },
            || host.define(&new_xml).map(drop),
        )
    }

    fn copy_file(&mut self, src: &Path, dst: &Path) -> Result<()> {
        let ctl = &self.progress.ctl;
        let method = self.create(Artifact::File(dst.to_path_buf()), || {
            copy::copy_file(src, dst, ctl).map_err(|e| match e {
                CopyError::Exists { path } => Error::Storage(format!(
                    "{} appeared while the clone was being made; vmclone never overwrites a file. Try again.",
                    path.display()
                )),
                other => other.into(),
            })
        })?;
        tracing::info!("copied {} to {} ({method:?})", src.display(), dst.display());
        Ok(())
    }

    fn make_disk(&mut self, op: &DiskOp, source: &DiskSource) -> Result<Option<NewDisk>> {
        let new = match op {
            DiskOp::Keep => return Ok(None),
            DiskOp::CopyFile { src, dst, volume } => {
                self.copy_file(src, dst)?;
                if self.info.is_template {
                    // The template's images are read-only; its full copies are ordinary disks.
                    add_owner_write(dst, src)?;
                }
                self.host.refresh_pool_of(dst);
                let target = match volume {
                    Some((pool, volume)) => DiskTarget::Volume {
                        pool: pool.clone(),
                        volume: volume.clone(),
                    },
                    None => DiskTarget::File(dst.clone()),
                };
                NewDisk {
                    target,
                    driver_type: None,
                    overlay: false,
                }
            }
            DiskOp::CloneVolume {
                source: vol,
                pool,
                new_name,
                format,
                by_name,
            } => {
                let artifact = Artifact::Volume {
                    pool: pool.clone(),
                    name: new_name.clone(),
                };
                let made = self.create(artifact, || {
                    let pool_obj = vol.lookup_storage_pool()?;
                    volume::clone_volume(&pool_obj, vol, new_name, format.as_deref()).map_err(|e| {
                        Error::Storage(format!(
                            "libvirt could not copy volume “{}” in pool “{pool}”: {}",
                            vol.name().unwrap_or_default(),
                            e.message()
                        ))
                    })
                })?;
                self.progress.ctl.bytes_done.fetch_add(
                    vol.info().map(|i| i.allocation).unwrap_or(0),
                    Ordering::Relaxed,
                );
                let target = if *by_name {
                    DiskTarget::Volume {
                        pool: pool.clone(),
                        volume: new_name.clone(),
                    }
                } else {
                    let path = PathBuf::from(made.path()?);
                    match source {
                        DiskSource::Block(_) => DiskTarget::Block(path),
                        _ => DiskTarget::File(path),
                    }
                };
                NewDisk {
                    target,
                    driver_type: None,
                    overlay: false,
                }
            }
            DiskOp::Overlay {
                backing,
                backing_format,
                dst,
            } => {
                self.create(Artifact::File(dst.clone()), || {
                    Ok(overlay::create(dst, backing, backing_format)?)
                })?;
                add_owner_write(dst, backing)?;
                self.host.refresh_pool_of(dst);
                NewDisk {
                    target: DiskTarget::File(dst.clone()),
                    driver_type: Some("qcow2".into()),
                    overlay: true,
                }
            }
        };
        Ok(Some(new))
    }
}

/// Gives `path` the owner and group of `like` and its mode plus owner write:
/// copies and overlays of a template's read-only images are writable disks.
fn add_owner_write(path: &Path, like: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    like.metadata()
        .and_then(|m| set_owner_and_mode(path, like, (m.permissions().mode() & 0o7777) | 0o200))
        .map_err(|e| {
            Error::Storage(format!(
                "Setting the owner and mode of {}: {e}",
                path.display()
            ))
        })
}
