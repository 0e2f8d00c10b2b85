//! The storage plan of one clone, ready to run: the decision of
//! [`decide`] with every source opened (and locked against QEMU writers),
//! every destination folder opened, and the backing chains of qcow2 disks
//! found. Planning only reads, opens and reserves; nothing is created until
//! the plan runs, and nothing is looked up by path again after this.

pub mod decide;
pub mod destinations;
pub mod space;

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use virt::storage_vol::StorageVol;

use crate::clone::reserve::{path_key, volume_key, Reservation, Reservations};
use crate::domain_xml::{Disk, DomainInfo};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::options::StorageMode;
use crate::storage::copy::Source;
use crate::storage::error::FileError;
use crate::storage::folder::{self, FileId, Folder};
use crate::storage::{image_lock, qcow2, swtpm_state_dir};
use decide::{Decision, DiskDecision, Lookups, VolumeRef};
use destinations::Destination;

/// The deepest backing chain vmclone copies.
const MAX_CHAIN: usize = 16;

/// A file to make: `name` in `folder`.
#[derive(Debug, Clone)]
pub struct Dest {
    pub folder: Arc<Folder>,
    pub name: OsString,
}

impl Dest {
    pub fn path(&self) -> PathBuf {
        self.folder.join(&self.name)
    }
}

/// One image of a disk's chain to copy.
#[derive(Debug)]
pub struct Layer {
    pub source: Source,
    pub dst: Dest,
    /// The format of the image as libvirt or its overlay names it.
    pub format: String,
    /// The copy's new backing file (the copy of the next layer) and its format.
    pub rebase: Option<(PathBuf, String)>,
}

impl Layer {
    /// The size of the image as the guest sees it: what a live copy (QEMU's
    /// backup of the whole disk) writes and counts.
    pub fn guest_size(&self) -> Result<u64> {
        let source = &self.source;
        Ok(match self.format.as_str() {
            "qcow2" => match qcow2::read_header(source.file()) {
                Ok(Some(h)) => h.virtual_size,
                Ok(None) => source.len(),
                Err(e) => return Err(Error::Storage(format!("{}: {e}", source.path().display()))),
            },
            _ => source.len(),
        })
    }

    /// The bytes its copy moves: a live copy writes the disk whole, and
    /// stands on nothing below it.
    fn bytes_moved(&self, live: bool) -> Result<u64> {
        match live {
            true => self.guest_size(),
            false => Ok(self.source.allocated()?),
        }
    }
}

/// What happens to one disk, with everything opened.
#[derive(Debug)]
pub enum DiskWork {
    Share,
    /// Copy the disk image and every image it stands on (top first).
    Copy {
        layers: Vec<Layer>,
    },
    /// libvirt copies a pool volume that is not a plain file.
    CloneVolume {
        source: StorageVol,
        pool: String,
        new_name: String,
        format: Option<String>,
        by_name: bool,
        is_block: bool,
    },
    /// A new qcow2 overlay on a template's image.
    Overlay {
        backing: PathBuf,
        backing_format: String,
        virtual_size: u64,
        /// The backing image's owner, who owns the overlay too.
        owner: (u32, u32),
        dst: Dest,
        /// The template's image, open (and locked against writers).
        template: Box<Source>,
    },
}

#[derive(Debug)]
pub struct NvramWork {
    /// The clone's UEFI variables file, as its definition names it.
    pub path: PathBuf,
    /// The source file and where its copy goes; None when the source has no
    /// file yet (libvirt makes the clone's from the template at first start).
    pub copy: Option<(Source, Dest)>,
}

#[derive(Debug)]
pub struct TpmWork {
    pub source: Folder,
    pub dst: Dest,
}

#[derive(Debug)]
pub struct StoragePlan {
    pub decision: Decision,
    pub disks: Vec<DiskWork>,
    pub nvram: Option<NvramWork>,
    pub tpm: Option<TpmWork>,
    /// The running source is copied live: QEMU's backup writes the top
    /// image of each disk whole (see [`Layer::guest_size`]).
    pub live: bool,
}

impl StoragePlan {
    /// The bytes the plan moves, for progress: allocated data, not apparent
    /// size (a live copy: the disks whole, as QEMU's backup walks them).
    pub fn bytes_to_copy(&self) -> Result<u64> {
        let mut total = 0;
        for work in &self.disks {
            total += match work {
                DiskWork::Copy { layers, .. } => {
                    let mut n = 0;
                    for layer in self.copied_layers(layers) {
                        n += layer.bytes_moved(self.live)?;
                    }
                    n
                }
                DiskWork::CloneVolume { source, .. } => source.info()?.allocation,
                DiskWork::Share | DiskWork::Overlay { .. } => 0,
            };
        }
        if let Some((src, _)) = self.nvram.as_ref().and_then(|n| n.copy.as_ref()) {
            total += src.allocated()?;
        }
        Ok(total)
    }
}

impl StoragePlan {
    /// The layers of a disk's chain its copy reads: all of them, or only the
    /// top one for a live copy (QEMU flattens the chain into it).
    pub fn copied_layers<'l>(&self, layers: &'l [Layer]) -> &'l [Layer] {
        match self.live {
            true => &layers[..layers.len().min(1)],
            false => layers,
        }
    }

    /// The bytes `layer`'s copy writes.
    pub fn layer_bytes(&self, layer: &Layer) -> Result<u64> {
        layer.bytes_moved(self.live)
    }
}

pub struct Planner<'a> {
    pub host: &'a Host,
    pub reservations: &'a Reservations,
    pub reservation: &'a mut Reservation,
    pub info: &'a DomainInfo,
    pub new_name: &'a str,
    pub new_uuid: &'a str,
    pub target_dir: Option<&'a Path>,
    pub mode: StorageMode,
    /// The source is running and copied live: no locks against writers.
    pub live: bool,
    /// Only a plan is wanted: sources are checked for writers, not locked.
    pub dry_run: bool,
}

impl Planner<'_> {
    pub fn plan(self) -> Result<StoragePlan> {
        let mut lookups = HostLookups {
            host: self.host,
            reservations: self.reservations,
            reservation: self.reservation,
            folders: FolderCache::default(),
        };
        let mut allowed = None;
        let target = match self.target_dir {
            Some(dir) => {
                let found = allowed.insert(destinations::allowed(self.host, Some(self.info))?);
                let folder = destinations::choose(found, dir)?;
                lookups.folders.insert(folder.clone());
                Some(folder)
            }
            None => None,
        };
        let target_dir = target.as_ref().map(|f| f.path());
        let decision = decide::decide(
            self.info,
            self.new_name,
            target_dir,
            self.mode,
            &mut lookups,
        )?;
        let mut open = Opener {
            lookups,
            info: self.info,
            new_name: self.new_name,
            target_dir,
            live: self.live,
            dry_run: self.dry_run,
            seen: HashSet::new(),
            allowed,
        };
        let mut disks = Vec::with_capacity(decision.disks.len());
        for (d, disk) in decision.disks.iter().zip(&self.info.disks) {
            disks.push(open.disk(d, disk)?);
        }
        let nvram = match &decision.nvram {
            Some((src, dst)) => Some(NvramWork {
                path: dst.clone(),
                copy: match open.source(src, "UEFI variables file")? {
                    Some(source) => Some((source, open.dest(dst)?)),
                    None => None,
                },
            }),
            None => None,
        };
        let tpm = match self.info.tpm_emulator {
            true => open.tpm(self.new_uuid)?,
            false => None,
        };
        Ok(StoragePlan {
            decision,
            disks,
            nvram,
            tpm,
            live: self.live,
        })
    }
}

/// Opens what the decision names.
struct Opener<'a, 'r> {
    lookups: HostLookups<'a, 'r>,
    info: &'a DomainInfo,
    new_name: &'a str,
    target_dir: Option<&'a Path>,
    live: bool,
    dry_run: bool,
    /// Images already in a chain (a chain that loops is refused).
    seen: HashSet<FileId>,
    /// Where backing images may lie: the allowed destinations.
    allowed: Option<Vec<Destination>>,
}

impl Opener<'_, '_> {
    fn disk(&mut self, d: &DiskDecision, disk: &Disk) -> Result<DiskWork> {
        Ok(match d {
            DiskDecision::Share => DiskWork::Share,
            DiskDecision::CopyFile { src, dst, .. } => {
                let source = self
                    .source(src, "disk image")?
                    .ok_or_else(|| missing(src, "disk image", &self.info.name))?;
                let format = disk.driver_type.clone().unwrap_or_else(|| "raw".into());
                let dst = self.dest(dst)?;
                DiskWork::Copy {
                    layers: self.chain(source, dst, format)?,
                }
            }
            // QEMU's backup writes files; libvirt copies such volumes itself.
            DiskDecision::CloneVolume { pool, .. } if self.live => {
                return Err(Error::Storage(format!(
                    "A disk of “{}” is a volume of the pool “{pool}” that is not a plain file; vmclone copies such volumes only while the VM is shut off. Shut it down to clone it.",
                    self.info.name
                )))
            }
            DiskDecision::CloneVolume {
                pool,
                source,
                new_name,
                by_name,
            } => DiskWork::CloneVolume {
                source: self.lookups.host.volume(pool, source).map_err(|e| {
                    Error::Storage(format!(
                        "The disk volume “{source}” in pool “{pool}” cannot be found: {}",
                        e.message()
                    ))
                })?,
                pool: pool.clone(),
                new_name: new_name.clone(),
                format: disk.driver_type.clone(),
                by_name: *by_name,
                is_block: matches!(disk.source, crate::domain_xml::DiskSource::Block(_)),
            },
            DiskDecision::Overlay { backing, dst } => {
                let source = self.source(backing, "template image")?.ok_or_else(|| {
                    Error::Storage(format!(
                        "The template's disk image {} does not exist, so no linked clone can be made from it.",
                        backing.display()
                    ))
                })?;
                let virtual_size = match qcow2::read_header(source.file()) {
                    Ok(Some(h)) => h.virtual_size,
                    Ok(None) => source.len(),
                    Err(e) => return Err(Error::Storage(format!("{}: {e}", backing.display()))),
                };
                let backing_format = disk.driver_type.clone().unwrap_or_else(|| "raw".into());
                self.check_chain(&source, &backing_format)?;
                DiskWork::Overlay {
                    backing: backing.clone(),
                    backing_format,
                    virtual_size,
                    owner: source.owner(),
                    dst: self.dest(dst)?,
                    template: Box::new(source),
                }
            }
        })
    }

    /// The copy of `top` and, for a qcow2 image, of every image it stands on,
    /// each rebased onto the copy below it. Each layer's copy goes into
    /// `target-dir`, else beside its image, which [`Self::below`] has found
    /// in an allowed destination: never beside a file a header names.
    fn chain(&mut self, top: Source, top_dst: Dest, format: String) -> Result<Vec<Layer>> {
        let mut layers: Vec<Layer> = Vec::new();
        let mut current = (top, top_dst, format);
        loop {
            let (source, dst, format) = current;
            let Some((next, path, next_format)) = self.below(&source, &format, layers.len())?
            else {
                layers.push(Layer {
                    source,
                    dst,
                    format,
                    rebase: None,
                });
                return Ok(layers);
            };
            let next_dst = decide::free_copy_path(
                &mut self.lookups,
                &path,
                &self.info.name,
                self.new_name,
                self.target_dir,
            )?;
            let next_dst = self.dest(&next_dst)?;
            layers.push(Layer {
                source,
                dst,
                format,
                rebase: Some((next_dst.path(), next_format.clone())),
            });
            current = (next, next_dst, next_format);
        }
    }

    /// Checks the chain a template's image stands on by the rules of
    /// [`Self::below`]: a linked clone (and anything that opens its chain)
    /// reads every image of it.
    fn check_chain(&mut self, top: &Source, format: &str) -> Result<()> {
        let mut below = self.below(top, format, 0)?;
        let mut depth = 1;
        while let Some((image, _, format)) = below {
            below = self.below(&image, &format, depth)?;
            depth += 1;
        }
        Ok(())
    }

    /// The image `image` (the `depth`th of its chain) stands on, opened, with
    /// its path and format; None when it stands on nothing. Whoever can write
    /// an image writes its header, so a backing name is followed only into an
    /// allowed destination (a pool's folder or a folder of the VM's writable
    /// disks), and only to a raw or qcow2 regular file with one name (no hard
    /// link to a file elsewhere): a header naming `/etc/shadow` must not make
    /// root copy it into a clone.
    fn below(
        &mut self,
        image: &Source,
        format: &str,
        depth: usize,
    ) -> Result<Option<(Source, PathBuf, String)>> {
        let header = match format {
            "qcow2" => qcow2::read_header(image.file())
                .map_err(|e| Error::Storage(format!("{}: {e}", image.path().display())))?,
            _ => None,
        };
        let Some(backing) = header.and_then(|h| h.backing) else {
            return Ok(None);
        };
        if depth + 1 >= MAX_CHAIN {
            return Err(Error::Storage(format!(
                "The backing chain of {} is deeper than {MAX_CHAIN} images; vmclone does not copy it. Flatten it first (qemu-img convert).",
                image.path().display()
            )));
        }
        let path = backing_path(image, &backing.name)?;
        let refuse = |why: &str| {
            Error::Storage(format!(
                "The backing image {} of {} {why}, so vmclone does not follow it. Move the backing image into a storage pool's folder or beside the disk, or flatten the disk (qemu-img convert).",
                path.display(),
                image.path().display()
            ))
        };
        let (dir, _) = folder::split(&path).map_err(storage)?;
        let folder = match self.lookups.folders.get(dir) {
            Ok(f) => f,
            Err(e) if not_found(&e) => return Err(refuse("does not exist")),
            Err(e) => return Err(storage(e)),
        };
        if !self.allowed()?.iter().any(|d| d.folder.id() == folder.id()) {
            return Err(refuse(
                "is neither in a storage pool's folder nor in a folder of the VM's writable disks",
            ));
        }
        let next = self
            .source(&path, "backing image")?
            .ok_or_else(|| refuse("does not exist"))?;
        if next.is_block_device() || next.links() != 1 {
            return Err(refuse(
                "is not a plain file with one name (a device, or a hard link)",
            ));
        }
        let next_format = match backing.format {
            Some(f) => f,
            None => match qcow2::read_header(next.file()) {
                Ok(Some(_)) => "qcow2".into(),
                _ => "raw".into(),
            },
        };
        if next_format != "raw" && next_format != "qcow2" {
            return Err(refuse(&format!(
                "is a “{next_format}” image (vmclone follows raw and qcow2 backing images only)"
            )));
        }
        Ok(Some((next, path, next_format)))
    }

    /// The allowed destinations, found once (only a chain needs them).
    fn allowed(&mut self) -> Result<&[Destination]> {
        if self.allowed.is_none() {
            self.allowed = Some(destinations::allowed(self.lookups.host, Some(self.info))?);
        }
        Ok(self.allowed.as_deref().unwrap_or_default())
    }

    /// Opens the source file at `path` (None when it does not exist), checks
    /// that no QEMU writes it, and keeps QEMU from writing it while it is
    /// copied (unless the clone is live).
    fn source(&mut self, path: &Path, what: &str) -> Result<Option<Source>> {
        let (dir, name) = folder::split(path).map_err(storage)?;
        let folder = match self.lookups.folders.get(dir) {
            Ok(f) => f,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        let source = match Source::open_in(&folder, name) {
            Ok(s) => s,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        let id =
            FileId::of(&rustix::fs::fstat(source.file()).map_err(|e| storage(io_err(path, e)))?);
        if !self.seen.insert(id) {
            return Err(Error::Storage(format!(
                "The {what} {} appears twice in the disks of “{}” (a backing chain that loops, or two disks on one image); vmclone cannot copy it.",
                path.display(),
                self.info.name
            )));
        }
        if !self.live {
            lock_against_writers(&source, what, !self.dry_run)?;
        }
        Ok(Some(source))
    }

    fn dest(&mut self, path: &Path) -> Result<Dest> {
        let (dir, name) = folder::split(path).map_err(storage)?;
        Ok(Dest {
            folder: self.lookups.folders.get(dir).map_err(storage)?,
            name: name.to_owned(),
        })
    }

    fn tpm(&mut self, new_uuid: &str) -> Result<Option<TpmWork>> {
        let dir = swtpm_state_dir(self.lookups.host.uri());
        let parent = match self.lookups.folders.get(&dir) {
            Ok(f) => f,
            // No TPM has ever run here: nothing to copy.
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        let dst = Dest {
            folder: parent.clone(),
            name: OsString::from(new_uuid),
        };
        if parent.lookup(&dst.name).map_err(storage)?.is_some()
            || !self.lookups.claim_path(&dst.path())?
        {
            return Err(Error::Storage(format!(
                "TPM state for the clone's UUID already exists in {}. Remove it if it is left over from a deleted VM, or give another uuid.",
                dst.path().display()
            )));
        }
        match parent.open_dir(OsStr::new(&self.info.uuid)) {
            Ok(source) => Ok(Some(TpmWork { source, dst })),
            // Never started: libvirt creates the state at first start.
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(storage(e)),
        }
    }
}

/// Checks that no QEMU has the image open for writing now, and (with `hold`)
/// keeps QEMU from opening it for writing while it is copied.
fn lock_against_writers(source: &Source, what: &str, hold: bool) -> Result<()> {
    let unsupported = |e: &io::Error| {
        matches!(
            e.raw_os_error(),
            Some(libc::EINVAL | libc::ENOLCK | libc::EOPNOTSUPP)
        )
    };
    match image_lock::has_writer(source.file()) {
        Ok(true) => {
            return Err(Error::SourceNotShutOff(format!(
                "The {what} {} is open for writing by a running QEMU (another VM, or this one on another libvirt connection), so it cannot be copied consistently. Shut that VM down first.",
                source.path().display()
            )))
        }
        Ok(false) => {}
        Err(e) if unsupported(&e) => {
            tracing::warn!("{}: no image locks on this filesystem ({e})", source.path().display())
        }
        Err(e) => return Err(Error::Storage(format!("{}: {e}", source.path().display()))),
    }
    if !hold {
        return Ok(());
    }
    match image_lock::forbid_writers(source.file()) {
        Ok(()) => Ok(()),
        Err(e) if unsupported(&e) => Ok(()),
        Err(e) => Err(Error::Storage(format!(
            "{} cannot be locked against writers: {e}",
            source.path().display()
        ))),
    }
}

/// Where the backing file `name` of `image` is: an absolute path, or one
/// relative to the image's folder. Protocol and `json:` names are refused.
fn backing_path(image: &Source, name: &[u8]) -> Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let text = String::from_utf8_lossy(name);
    let colon_before_slash = name
        .iter()
        .position(|&b| b == b':')
        .is_some_and(|c| name.iter().position(|&b| b == b'/').map_or(true, |s| c < s));
    if colon_before_slash {
        return Err(Error::Storage(format!(
            "{} stands on “{text}”, which is not a local file; vmclone copies only local images. Flatten the disk first (qemu-img convert).",
            image.path().display()
        )));
    }
    let path = Path::new(OsStr::from_bytes(name));
    Ok(match path.is_absolute() {
        true => path.to_owned(),
        false => image.path().parent().unwrap_or(Path::new("/")).join(path),
    })
}

fn missing(path: &Path, what: &str, vm: &str) -> Error {
    Error::Storage(format!(
        "The {what} {} of “{vm}” does not exist, so it cannot be copied.",
        path.display()
    ))
}

fn not_found(e: &FileError) -> bool {
    matches!(e, FileError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
}

fn io_err(path: &Path, e: rustix::io::Errno) -> FileError {
    crate::storage::error::io_error("read", path, e)
}

fn storage(e: FileError) -> Error {
    Error::from(e)
}

/// Folders opened once, by the path they were asked for.
#[derive(Default)]
struct FolderCache {
    open: HashMap<PathBuf, Arc<Folder>>,
}

impl FolderCache {
    fn get(&mut self, path: &Path) -> Result<Arc<Folder>, FileError> {
        if let Some(f) = self.open.get(path) {
            return Ok(f.clone());
        }
        let f = Arc::new(Folder::open(path)?);
        self.open.insert(path.to_owned(), f.clone());
        Ok(f)
    }

    fn insert(&mut self, folder: Arc<Folder>) {
        self.open.insert(folder.path().to_owned(), folder);
    }
}

/// The host side of the decision: libvirt's pools and volumes, the opened
/// folders, and the reservations of clones running at the same time.
struct HostLookups<'a, 'r> {
    host: &'a Host,
    reservations: &'a Reservations,
    reservation: &'r mut Reservation,
    folders: FolderCache,
}

fn volume_ref(vol: &StorageVol) -> Option<VolumeRef> {
    let pool = vol.lookup_storage_pool().ok()?.name().ok()?;
    let path = PathBuf::from(vol.path().ok()?);
    let is_file = folder::split(&path)
        .ok()
        .and_then(|(dir, name)| Folder::open(dir).ok()?.lookup(name).ok()?)
        .is_some_and(|e| e.is_file);
    Some(VolumeRef {
        pool,
        name: vol.name().ok()?,
        path,
        is_file,
    })
}

impl Lookups for HostLookups<'_, '_> {
    fn volume_at(&self, path: &Path) -> Option<VolumeRef> {
        volume_ref(&self.host.volume_at(&path.to_string_lossy())?)
    }

    fn volume(&self, pool: &str, name: &str) -> Result<VolumeRef> {
        let vol = self.host.volume(pool, name).map_err(|e| {
            Error::Storage(format!(
                "The disk volume “{name}” in pool “{pool}” cannot be found: {}",
                e.message()
            ))
        })?;
        volume_ref(&vol).ok_or_else(|| {
            Error::Storage(format!(
                "The disk volume “{name}” in pool “{pool}” cannot be read."
            ))
        })
    }

    fn exists(&self, path: &Path) -> bool {
        path.symlink_metadata().is_ok()
    }

    fn claim_path(&mut self, path: &Path) -> Result<bool> {
        let (dir, name) = folder::split(path).map_err(storage)?;
        let taken = match self.folders.get(dir) {
            Ok(folder) => folder.lookup(name).map_err(storage)?.is_some(),
            // A missing folder holds nothing (an NVRAM file libvirt will make
            // from its template at the clone's first start).
            Err(e) if not_found(&e) => false,
            Err(e) => return Err(storage(e)),
        };
        let free = !taken && !self.reservations.is_held(&path_key(path));
        Ok(free && self.reservation.take(path_key(path)))
    }

    fn claim_volume(&mut self, pool: &str, name: &str) -> Result<bool> {
        let taken = self.host.volume(pool, name).is_ok()
            || self.reservations.is_held(&volume_key(pool, name));
        Ok(!taken && self.reservation.take(volume_key(pool, name)))
    }
}
