//! The libvirt side: one connection for the service's lifetime, and the
//! blocking calls the clone engine and the D-Bus API make on it. Every
//! function here blocks; callers run them in `spawn_blocking`.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::error::ErrorNumber;

use crate::backup;
use crate::domain_xml::{
    self, DiskSource, DomainInfo, METADATA_NS, METADATA_PREFIX, TEMPLATE_ELEMENT,
};
use crate::error::{Error, Result};
use crate::events::{self, EventSink, StartWatch};
use crate::ids::normalize_uuid;
use crate::pool_xml;
use crate::storage::copy::Source;
use crate::storage::qcow2;

/// The flags for the XML a clone starts from: the persistent definition,
/// including secrets such as VNC passwords (they belong to the copy too).
const INACTIVE_SECURE_XML: u32 =
    virt::sys::VIR_DOMAIN_XML_INACTIVE | virt::sys::VIR_DOMAIN_XML_SECURE;
/// How long an aborted backup job may take to end.
const BACKUP_END_TIMEOUT: Duration = Duration::from_secs(60);

/// The libvirt connection. When libvirtd restarts, the next call finds the
/// connection dead and opens a new one (and re-subscribes to events).
pub struct Host {
    conn: RwLock<Connect>,
    uri: String,
    events: Mutex<Option<Arc<EventSink>>>,
    /// Counts reconnections: events may have been missed across one.
    generation: AtomicU64,
}

/// What the defined domains use: no rollback may remove any of it.
#[derive(Debug, Default)]
pub struct InUse {
    pub paths: HashSet<PathBuf>,
    /// (pool, volume) of disks that name their volume.
    pub volumes: HashSet<(String, String)>,
}

/// Why a definition failed, and whether the clone's domain may exist anyway
/// (the call failed in a way that does not say).
pub struct DefineFailure {
    pub error: Error,
    pub may_exist: bool,
}

/// What `ListVms`/`GetVm` report for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSummary {
    pub id: String,
    pub name: String,
    pub state: &'static str,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disks: u32,
    pub interfaces: u32,
    pub is_template: bool,
}

/// Checks the connection now and then, so that after a libvirtd restart
/// events flow again even when no one calls.
pub async fn keep_connected(host: std::sync::Arc<Host>) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        let h = host.clone();
        let _ = tokio::task::spawn_blocking(move || drop(h.conn())).await;
    }
}

/// `uri` with no password, user-info secret or query parameters (key files,
/// auth files): what may be shown to other users.
pub fn uri_without_credentials(uri: &str) -> String {
    let without_query = uri.split(['?', '#']).next().unwrap_or(uri);
    let Some((scheme, rest)) = without_query.split_once("://") else {
        return without_query.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = match authority.rsplit_once('@') {
        // Keep the user name, never a password.
        Some((user, host)) => format!("{}@{host}", user.split(':').next().unwrap_or("")),
        None => authority.to_string(),
    };
    format!("{scheme}://{host}{path}")
}

/// The word `ListVms` uses for a libvirt domain state.
pub fn state_word(state: DomainState) -> &'static str {
    match state {
        DomainState::Running | DomainState::Blocked => "running",
        DomainState::Paused => "paused",
        DomainState::Shutoff => "shutoff",
        DomainState::Crashed => "crashed",
        DomainState::PMSuspended => "suspended",
        DomainState::NoState | DomainState::Shutdown => "other",
    }
}

pub fn is_no_domain(e: &virt::error::Error) -> bool {
    matches!(
        e.code(),
        virt::error::ErrorNumberEnum::Known(ErrorNumber::NoDomain)
    )
}

fn is_no_storage_vol(e: &virt::error::Error) -> bool {
    matches!(
        e.code(),
        virt::error::ErrorNumberEnum::Known(ErrorNumber::NoStorageVolume)
    )
}

fn connect(uri: &str) -> Result<Connect> {
    let conn = Connect::open(Some(uri)).map_err(|e| {
        Error::Libvirt(format!(
            "Cannot connect to libvirt at {uri}: {}. Is libvirtd running?",
            e.message()
        ))
    })?;
    // Notice a dead daemon within seconds (drivers without keepalive refuse; fine).
    let _ = conn.set_keep_alive(5, 3);
    Ok(conn)
}

impl Host {
    pub fn open(uri: &str) -> Result<Host> {
        Ok(Host {
            conn: RwLock::new(connect(uri)?),
            uri: uri.to_string(),
            events: Mutex::new(None),
            generation: AtomicU64::new(0),
        })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The live connection, reopened if libvirtd went away since.
    pub fn conn(&self) -> Connect {
        let current = self.conn.read().expect("connection lock").clone();
        if current.is_alive().unwrap_or(false) {
            return current;
        }
        let mut conn = self.conn.write().expect("connection lock");
        if conn.is_alive().unwrap_or(false) {
            return conn.clone();
        }
        match connect(&self.uri) {
            Ok(fresh) => {
                tracing::warn!(
                    "the libvirt connection to {} was lost; reconnected",
                    self.uri
                );
                if let Some(sink) = self.events.lock().expect("events lock").clone() {
                    if let Err(e) = events::watch_lifecycle(&fresh, sink) {
                        tracing::error!("{e}");
                    }
                }
                self.generation.fetch_add(1, Ordering::SeqCst);
                *conn = fresh.clone();
                fresh
            }
            Err(e) => {
                tracing::error!("{e}");
                conn.clone()
            }
        }
    }

    /// Sends the lifecycle events of every domain to `sink`, across reconnects.
    pub fn watch_events(&self, sink: Arc<EventSink>) -> Result<()> {
        events::watch_lifecycle(&self.conn(), sink.clone())?;
        *self.events.lock().expect("events lock") = Some(sink);
        Ok(())
    }

    /// Watches the domain `uuid` for starts (setting `stop` on one) until
    /// the watch is dropped; None when events are not watched at all.
    pub fn watch_starts(&self, uuid: &str, stop: Arc<AtomicBool>) -> Option<Arc<StartWatch>> {
        let sink = self.events.lock().expect("events lock").clone()?;
        Some(sink.watch_starts(uuid, stop))
    }

    /// Changes whenever the connection to libvirtd was made anew.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The domain with this UUID or name.
    pub fn lookup(&self, id_or_name: &str) -> Result<Domain> {
        let by_uuid = normalize_uuid(id_or_name)
            .and_then(|u| self.conn().lookup_domain_by_uuid_string(&u).ok());
        if let Some(dom) = by_uuid {
            return Ok(dom);
        }
        self.conn()
            .lookup_domain_by_name(id_or_name)
            .map_err(|e| match is_no_domain(&e) {
                true => Error::NotFound(format!(
                    "No VM named or with UUID “{id_or_name}” exists on {}.",
                    self.uri
                )),
                false => e.into(),
            })
    }

    pub fn name_taken(&self, name: &str) -> bool {
        self.conn().lookup_domain_by_name(name).is_ok()
    }

    pub fn uuid_taken(&self, uuid: &str) -> bool {
        self.conn().lookup_domain_by_uuid_string(uuid).is_ok()
    }

    pub fn inactive_xml(&self, dom: &Domain) -> Result<String> {
        Ok(dom.xml_desc(INACTIVE_SECURE_XML)?)
    }

    /// The running domain's live definition (what QEMU uses now).
    pub fn live_xml(&self, dom: &Domain) -> Result<String> {
        Ok(dom.xml_desc(0)?)
    }

    /// Whether the running domain's guest agent is connected (libvirt sees
    /// its channel open), so its filesystems can be frozen.
    pub fn guest_agent_connected(&self, dom: &Domain) -> bool {
        dom.is_active().unwrap_or(false)
            && self
                .live_xml(dom)
                .is_ok_and(|xml| domain_xml::guest_agent_connected(&xml))
    }

    pub fn state(&self, dom: &Domain) -> Result<&'static str> {
        let (state, _) = dom.state()?;
        Ok(state.known().map(state_word).unwrap_or("other"))
    }

    /// Fails with `SourceNotShutOff` unless the domain is shut off without a
    /// saved state (whose disks belong to a suspended, running guest).
    pub fn ensure_shut_off(&self, dom: &Domain, name: &str) -> Result<()> {
        let state = self.state(dom)?;
        if state != "shutoff" {
            return Err(Error::SourceNotShutOff(format!(
                "“{name}” is {state}. Shut it down first: vmclone only clones shut-off VMs and never stops one for you."
            )));
        }
        if dom.has_managed_save(0).unwrap_or(false) {
            return Err(Error::SourceNotShutOff(format!(
                "“{name}” has a saved state (it was suspended to disk), so its disks belong to a running guest. Start it and shut it down, or discard the saved state (virsh managedsave-remove), then clone it."
            )));
        }
        Ok(())
    }

    pub fn summary(&self, dom: &Domain) -> Result<VmSummary> {
        Ok(self.details(dom)?.0)
    }

    /// The summary of a domain and what its definition says.
    pub fn details(&self, dom: &Domain) -> Result<(VmSummary, DomainInfo)> {
        let state = self.state(dom)?;
        let info = domain_xml::parse(&dom.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)?)?;
        Ok((summary_of(&info, state), info))
    }

    /// Every domain on the connection. Domains that vanish while we look are skipped.
    pub fn list(&self) -> Result<Vec<VmSummary>> {
        let mut out = Vec::new();
        for dom in self.conn().list_all_domains(0)? {
            match self.summary(&dom) {
                Ok(s) => out.push(s),
                Err(Error::Libvirt(m)) => tracing::debug!("skipping a domain that went away: {m}"),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Every domain's definitions, read: the inactive one, and the live one
    /// of a running domain (its MACs or disks can differ). A definition
    /// libvirt cannot give (the domain just went) is left out.
    fn definitions(&self) -> Result<Vec<Result<DomainInfo, domain_xml::XmlError>>> {
        let mut out = Vec::new();
        for dom in self.conn().list_all_domains(0)? {
            let mut flags = vec![virt::sys::VIR_DOMAIN_XML_INACTIVE];
            if dom.is_active().unwrap_or(false) {
                flags.push(0);
            }
            for f in flags {
                if let Ok(xml) = dom.xml_desc(f) {
                    out.push(domain_xml::parse(&xml));
                }
            }
        }
        Ok(out)
    }

    /// The MAC addresses of every interface of every domain, lower case.
    pub fn macs_in_use(&self) -> Result<HashSet<String>> {
        let mut macs = HashSet::new();
        for info in self.definitions()? {
            let Ok(info) = info else {
                tracing::warn!("skipping a domain whose XML vmclone cannot read");
                continue;
            };
            macs.extend(
                info.interfaces
                    .iter()
                    .filter_map(|i| i.mac.as_ref())
                    .map(|m| m.to_ascii_lowercase()),
            );
        }
        Ok(macs)
    }

    /// Defines the domain `xml`, named `name` with `uuid`. A failure says,
    /// by what libvirt holds afterwards rather than by its message, whether
    /// the name or UUID was taken or the domain may have been made anyway.
    pub fn define(&self, xml: &str, name: &str, uuid: &str) -> Result<Domain, DefineFailure> {
        let e = match self.conn().define_domain_xml(xml) {
            Ok(dom) => return Ok(dom),
            Err(e) => e,
        };
        let message = e.message().to_string();
        let by_uuid = self.conn().lookup_domain_by_uuid_string(uuid);
        let holder = by_uuid.as_ref().ok().and_then(|d| d.name().ok());
        let failure = |error, may_exist| DefineFailure { error, may_exist };
        Err(match holder {
            Some(holder) if holder == name => failure(
                Error::Libvirt(format!("libvirt reported a failure defining the clone, yet it exists: {message}")),
                true,
            ),
            Some(holder) => failure(
                Error::InvalidOption(format!(
                    "Option “uuid”: {uuid} already belongs to “{holder}”."
                )),
                false,
            ),
            None if by_uuid.as_ref().is_err_and(|e| !is_no_domain(e)) => failure(
                Error::Libvirt(format!("libvirt refused the clone's definition: {message}")),
                true,
            ),
            None if self.name_taken(name) => failure(
                Error::NameExists(format!(
                    "A VM named “{name}” was defined while the clone was being made. Choose another name."
                )),
                false,
            ),
            None => failure(
                Error::Libvirt(format!("libvirt refused the clone's definition: {message}")),
                false,
            ),
        })
    }

    /// Whether a domain has this UUID; an error when libvirt cannot say.
    pub fn domain_exists(&self, uuid: &str) -> Result<bool> {
        match self.conn().lookup_domain_by_uuid_string(uuid) {
            Ok(_) => Ok(true),
            Err(e) if is_no_domain(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the definition of the shut-off domain with this UUID (a
    /// running one is never touched), leaving its NVRAM and TPM state.
    pub fn undefine_inactive(&self, uuid: &str) -> Result<&'static str> {
        let dom = match self.conn().lookup_domain_by_uuid_string(uuid) {
            Ok(d) => d,
            Err(e) if is_no_domain(&e) => return Ok("not defined"),
            Err(e) => return Err(e.into()),
        };
        if dom.is_active()? {
            return Err(Error::Libvirt(format!(
                "the domain {uuid} is running, so it is left defined"
            )));
        }
        let keep =
            virt::sys::VIR_DOMAIN_UNDEFINE_KEEP_NVRAM | virt::sys::VIR_DOMAIN_UNDEFINE_KEEP_TPM;
        dom.undefine_flags(keep)
            .or_else(|_| dom.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_KEEP_NVRAM))
            .or_else(|_| dom.undefine())?;
        Ok("undefined")
    }

    /// Ends a live clone's backup job on the domain `uuid` (recognised by its
    /// target files, in folders named `staging`: another program's backup is
    /// never touched) and waits until libvirt has let go of it. Then it
    /// resumes the guest if the clone paused it (`resume`) and thaws its
    /// filesystems if the clone may have frozen them (`thaw`), in that order
    /// (a paused guest's agent cannot answer).
    pub fn end_backup(
        &self,
        uuid: &str,
        staging: &OsStr,
        thaw: bool,
        resume: bool,
    ) -> Result<&'static str> {
        let dom = match self.conn().lookup_domain_by_uuid_string(uuid) {
            Ok(d) => d,
            Err(e) if is_no_domain(&e) => return Ok("absent: the source VM is gone"),
            Err(e) => return Err(e.into()),
        };
        if !dom.is_active()? {
            return Ok("absent: the source VM is not running");
        }
        let ours = |dom: &Domain| -> Result<bool> {
            let files = backup::target_files(dom)?.unwrap_or_default();
            Ok(files
                .iter()
                .any(|f| f.parent().and_then(Path::file_name) == Some(staging)))
        };
        let mut what = "no backup job of this clone runs";
        if ours(&dom)? {
            // It may end by itself meanwhile: the wait below decides.
            if let Err(e) = backup::abort(&dom) {
                tracing::info!("aborting the backup job of {uuid}: {}", e.message());
            }
            let deadline = Instant::now() + BACKUP_END_TIMEOUT;
            while ours(&dom)? {
                if Instant::now() > deadline {
                    return Err(Error::Libvirt(format!(
                        "the backup job of {uuid} did not end within {} s of its abort",
                        BACKUP_END_TIMEOUT.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            what = "backup job aborted";
        }
        if resume && self.state(&dom)? == "paused" {
            dom.resume()?;
        }
        if thaw {
            // Harmless when nothing is frozen; bounded when the agent is silent.
            if let Err(e) = backup::thaw(&dom) {
                tracing::info!("thawing the guest of {uuid}: {}", e.message());
            }
        }
        Ok(what)
    }

    /// What every defined domain uses (inactive and live definitions). A
    /// definition vmclone cannot read fails the answer: rollback must not
    /// take a file such a domain may use.
    pub fn storage_in_use(&self) -> Result<InUse> {
        let mut used = InUse::default();
        for info in self.definitions()? {
            let info = info?;
            for disk in &info.disks {
                match &disk.source {
                    DiskSource::File(p) | DiskSource::Block(p) => {
                        used.paths.insert(p.clone());
                    }
                    DiskSource::Volume { pool, volume } => {
                        if let Ok(path) = self.volume(pool, volume).and_then(|v| v.path()) {
                            used.paths.insert(PathBuf::from(path));
                        }
                        used.volumes.insert((pool.clone(), volume.clone()));
                    }
                    _ => {}
                }
            }
            used.paths.extend(info.nvram.map(PathBuf::from));
        }
        Ok(used)
    }

    /// Marks the domain as a template in our libvirt metadata namespace.
    pub fn mark_template(&self, dom: &Domain) -> Result<()> {
        dom.set_metadata(
            virt::sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
            Some(TEMPLATE_ELEMENT),
            Some(METADATA_PREFIX),
            Some(METADATA_NS),
            virt::sys::VIR_DOMAIN_AFFECT_CONFIG,
        )?;
        Ok(())
    }

    /// The storage volume at `path`, if a pool holds it.
    pub fn volume_at(&self, path: &str) -> Option<virt::storage_vol::StorageVol> {
        self.conn().lookup_storage_vol_by_path(path).ok()
    }

    /// The bytes free in the storage pool named `pool`.
    pub fn pool_available(&self, pool: &str) -> Result<u64> {
        Ok(self
            .conn()
            .lookup_storage_pool_by_name(pool)?
            .info()?
            .available)
    }

    /// The volume `name` of the pool named `pool`.
    pub fn volume(
        &self,
        pool: &str,
        name: &str,
    ) -> Result<virt::storage_vol::StorageVol, virt::error::Error> {
        self.conn()
            .lookup_storage_pool_by_name(pool)?
            .lookup_storage_vol_by_name(name)
    }

    /// The key of the volume `name` of `pool` after its creation failed without
    /// saying whether it was made (libvirtd restarted mid-call): libvirtd is
    /// asked again until it answers, for up to 15 s. None when there is no such
    /// volume, or libvirtd does not come back.
    pub fn volume_key_after_failure(&self, pool: &str, name: &str) -> Option<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            match self.volume(pool, name) {
                Ok(vol) => return vol.key().ok(),
                Err(e) if is_no_storage_vol(&e) => return None,
                Err(e) if std::time::Instant::now() >= deadline => {
                    tracing::warn!("volume “{name}” of pool “{pool}”: {e}");
                    return None;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(250)),
            }
        }
    }

    /// Deletes the volume `name` of `pool` if it is the one with `key` and no
    /// defined domain uses its path.
    pub fn delete_volume_if(
        &self,
        pool: &str,
        name: &str,
        key: &str,
        in_use: &HashSet<PathBuf>,
    ) -> Result<&'static str> {
        let vol = match self.volume(pool, name) {
            Ok(vol) => vol,
            Err(e) if is_no_storage_vol(&e) => return Ok("absent"),
            Err(e) => return Err(e.into()),
        };
        if vol.key().ok().as_deref() != Some(key) {
            return Ok("left: another volume has its name now");
        }
        if vol.path().is_ok_and(|p| in_use.contains(&PathBuf::from(p))) {
            return Ok("left: a defined VM uses it");
        }
        vol.delete(0)?;
        Ok("deleted")
    }

    /// The virtual size and the allocated bytes of a disk's image, as far as
    /// they can be read (zeros when not: a missing image, a network disk).
    pub fn disk_sizes(&self, disk: &domain_xml::Disk) -> (u64, u64) {
        match &disk.source {
            DiskSource::File(p) | DiskSource::Block(p) => match Source::open(p) {
                Ok(src) => {
                    let virtual_size = match qcow2::read_header(src.file()) {
                        Ok(Some(h)) => h.virtual_size,
                        _ => src.len(),
                    };
                    let allocated = match src.is_block_device() {
                        true => src.len(),
                        false => rustix::fs::fstat(src.file())
                            .map(|st| st.st_blocks as u64 * 512)
                            .unwrap_or(0),
                    };
                    (virtual_size, allocated)
                }
                // A file libvirt knows as a volume (the test driver's are not real files).
                Err(_) => self
                    .volume_at(&p.to_string_lossy())
                    .and_then(|v| v.info().ok())
                    .map(|i| (i.capacity, i.allocation))
                    .unwrap_or((0, 0)),
            },
            DiskSource::Volume { pool, volume } => self
                .volume(pool, volume)
                .and_then(|v| v.info())
                .map(|i| (i.capacity, i.allocation))
                .unwrap_or((0, 0)),
            _ => (0, 0),
        }
    }

    /// The host's CPUs and memory.
    pub fn node_info(&self) -> Result<virt::connect::NodeInfo> {
        Ok(self.conn().node_info()?)
    }

    /// The active storage pools whose volumes are files in a folder (dir,
    /// fs, netfs), with that folder.
    pub fn file_pools(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        let flags = virt::sys::VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE;
        for pool in self.conn().list_all_storage_pools(flags)? {
            let Ok(xml) = pool.xml_desc(0) else {
                continue;
            };
            if let Some((kind, path)) = pool_xml::type_and_target(&xml) {
                if matches!(kind.as_str(), "dir" | "fs" | "netfs") {
                    out.push((pool.name()?, path));
                }
            }
        }
        Ok(out)
    }

    /// Re-reads the pools whose folder holds `path`, so a file we created or
    /// removed there shows up (or vanishes) as a volume.
    pub fn refresh_pool_of(&self, path: &std::path::Path) {
        let Some(dir) = path.parent().and_then(|d| d.to_str()) else {
            return;
        };
        if let Ok(pool) = self.conn().lookup_storage_pool_by_target_path(dir) {
            if pool.is_active().unwrap_or(false) {
                if let Err(e) = pool.refresh(0) {
                    tracing::warn!("refreshing the pool of {dir}: {}", e.message());
                }
            }
        }
    }
}

pub fn summary_of(info: &DomainInfo, state: &'static str) -> VmSummary {
    VmSummary {
        id: info.uuid.clone(),
        name: info.name.clone(),
        state,
        vcpus: info.vcpus,
        memory_mib: info.memory_kib / 1024,
        disks: info.disks.len() as u32,
        interfaces: info.interfaces.len() as u32,
        is_template: info.is_template,
    }
}

#[cfg(test)]
mod tests {
    use super::uri_without_credentials as shown;

    #[test]
    fn uris_are_shown_without_credentials() {
        assert_eq!(shown("qemu:///system"), "qemu:///system");
        assert_eq!(shown("test:///srv/host.xml"), "test:///srv/host.xml");
        assert_eq!(
            shown("qemu+ssh://admin:s3cret@host.example/system?keyfile=/root/.ssh/id&no_verify=1"),
            "qemu+ssh://admin@host.example/system"
        );
        assert_eq!(
            shown("qemu+tls://host:16514/system?pkipath=/etc/pki"),
            "qemu+tls://host:16514/system"
        );
    }
}
