//! The clone engine: checks a request, plans the clone's identity and
//! storage, creates everything under a journal, and defines the new domain
//! last. Any failure or cancel rolls back all that the clone created; a
//! clone whose definition is committed is never touched again.
//! Everything here blocks: run it in `spawn_blocking`.

pub mod checks;
mod customize;
mod execute;
pub mod identity;
mod live;
pub mod plan;
pub mod report;
pub mod reserve;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::domain_xml;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::guest;
use crate::host::Host;
use crate::journal::{Artifact, Journal, JournalDir};
use crate::naming;
use crate::options::{CloneOptions, GuestIdentity, StorageMode};
use crate::storage::copy::CopyControl;
use execute::{Execution, Watch};
use plan::{DiskWork, Planner};
use reserve::{live_key, name_key, path_key, volume_key, Reservation, Reservations};

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

/// How consistent a live clone's disks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Not a live clone (or not known yet).
    None = 0,
    /// The guest agent froze the filesystems for the moment of the copy.
    Filesystem = 1,
    /// As after a power cut: what the guest had written at that moment.
    Crash = 2,
}

impl Consistency {
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::None => "",
            Consistency::Filesystem => "filesystem",
            Consistency::Crash => "crash",
        }
    }
}

/// Progress shared with the job that watches the clone.
#[derive(Clone, Default)]
pub struct Progress {
    pub ctl: CopyControl,
    pub bytes_total: Arc<AtomicU64>,
    phase: Arc<AtomicU8>,
    consistency: Arc<AtomicU8>,
    /// How long a live clone kept the guest paused.
    pub paused_ms: Arc<AtomicU64>,
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

    pub fn consistency(&self) -> Consistency {
        match self.consistency.load(Ordering::Relaxed) {
            1 => Consistency::Filesystem,
            2 => Consistency::Crash,
            _ => Consistency::None,
        }
    }

    pub fn set_consistency(&self, c: Consistency) {
        self.consistency.store(c as u8, Ordering::Relaxed);
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
        check_guest_tools(opts)?;
        names.iter().try_for_each(|n| self.check_name(n))
    }

    /// Everything a clone does before it makes anything: every check, its
    /// identity and its storage plan (sources opened; locked against QEMU
    /// writers unless `dry_run`), under `reservation`.
    fn prepare(
        &self,
        req: &CloneRequest,
        reservations: &Reservations,
        reservation: &mut Reservation,
        dry_run: bool,
    ) -> Result<Prepared> {
        naming::validate_vm_name(&req.new_name)?;
        if !reservation.take(name_key(&req.new_name)) {
            return Err(name_busy(&req.new_name));
        }
        if self.host.name_taken(&req.new_name) {
            return Err(name_exists(&req.new_name));
        }
        let dom = self.host.lookup(&req.source)?;
        let xml = self.host.inactive_xml(&dom)?;
        let info = domain_xml::parse(&xml)?;
        let opts = &req.options;
        let live = self.copies_live(&dom, &info.name, opts)?;
        if live && !reservation.take(live_key(&info.uuid)) {
            return Err(Error::Libvirt(format!(
                "“{}” is being copied live by another clone already; libvirt runs one backup of a VM at a time. Try again when it has finished.",
                info.name
            )));
        }
        if opts.storage == StorageMode::Linked && !info.is_template {
            return Err(Error::NotATemplate(format!(
                "“{}” is not a template, so a linked clone of it could break when it changes. Convert it to a template first (ConvertToTemplate), or make a full copy (storage “copy”).",
                info.name
            )));
        }
        checks::check(&info, opts)?;
        if opts.guest_identity == GuestIdentity::Reset {
            // Refused now, not after the copies (a live clone resets after them).
            crate::guest::installed()?;
        }
        check_guest_tools(opts)?;
        let id = identity::choose(
            &self.host,
            reservations,
            reservation,
            &info,
            opts.uuid.as_deref(),
            opts.mac_addresses.as_deref(),
        )?;
        let mut plan = Planner {
            host: &self.host,
            reservations,
            reservation,
            info: &info,
            new_name: &req.new_name,
            new_uuid: &id.uuid,
            target_dir: opts.target_dir.as_deref(),
            mode: opts.storage,
            live,
            dry_run,
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
        Ok(Prepared {
            dom,
            xml,
            info,
            id,
            plan,
            live,
        })
    }

    /// What the clone `req` would make, checked exactly as the clone checks
    /// it, without making anything.
    pub fn plan_clone(&self, req: &CloneRequest) -> Result<report::PlanReport> {
        // Any reader may plan: a plan must never make a real clone's name,
        // paths or MACs look taken.
        let reservations = self.reservations.dry_run();
        let mut reservation = reservations.start();
        let p = self.prepare(req, &reservations, &mut reservation, true)?;
        failpoint::step("dry-run-planned", &AtomicBool::new(false));
        let mut report = report::PlanReport::of(&self.host, &p.info, &p.plan, &req.options)?;
        if p.live {
            report.consistency = match self.host.guest_agent_connected(&p.dom) {
                true => Consistency::Filesystem,
                false => Consistency::Crash,
            };
        }
        Ok(report)
    }

    /// Makes the whole clone. Returns once the domain is defined and its
    /// storage is complete.
    pub fn clone_vm(&self, req: &CloneRequest, progress: &Progress) -> Result<CloneOutcome> {
        let mut reservation = self.reservations.start();
        let Prepared {
            dom,
            xml,
            info,
            id,
            plan,
            live,
        } = self.prepare(req, &self.reservations, &mut reservation, false)?;
        // Better refused now than after copying most of it.
        plan.check_space(&self.host)?;
        let opts = &req.options;
        // From here on a start of the source stops the clone; the images
        // are locked against QEMU writers already. Check once more, now
        // that nothing can slip between the check and the watch. (A live
        // clone's source runs, and is resumed by the clone itself.)
        let watch = Watch {
            start: match live {
                true => None,
                false => self
                    .host
                    .watch_starts(&info.uuid, progress.ctl.cancelled.clone()),
            },
            generation: self.host.generation(),
        };
        if !live {
            self.host.ensure_shut_off(&dom, &info.name)?;
        }
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
            work: self.journals.work(),
            made: Vec::new(),
            live: live.then_some(&dom),
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

    /// Whether the clone copies its source live: asked for, and the source
    /// runs or is paused. Without `live` the source must be shut off.
    fn copies_live(
        &self,
        dom: &virt::domain::Domain,
        name: &str,
        opts: &CloneOptions,
    ) -> Result<bool> {
        match self.host.state(dom)? {
            "running" | "paused" if opts.live => Ok(true),
            state @ ("running" | "paused") => Err(Error::SourceNotShutOff(format!(
                "“{name}” is {state}. Shut it down first, or clone it as it runs with the option “live” (vmclonectl clone --live); vmclone never stops a VM for you."
            ))),
            _ => {
                self.host.ensure_shut_off(dom, name)?;
                Ok(false)
            }
        }
    }
}

/// A clone checked and planned, nothing made yet.
struct Prepared {
    dom: virt::domain::Domain,
    xml: String,
    info: domain_xml::DomainInfo,
    id: identity::Identity,
    plan: plan::StoragePlan,
    /// The source runs (or is paused) and is copied live.
    live: bool,
}

/// A reset needs libguestfs: without it the clone is refused at once.
fn check_guest_tools(opts: &CloneOptions) -> Result<()> {
    match opts.guest_identity {
        GuestIdentity::Keep => Ok(()),
        GuestIdentity::Reset => guest::installed().map(|_| ()).map_err(Error::from),
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
