//! The libvirt side: one connection for the service's lifetime, and the
//! blocking calls the clone engine and the D-Bus API make on it. Every
//! function here blocks; callers run them in `spawn_blocking`.

use std::collections::HashSet;
use std::sync::{Mutex, RwLock};

use tokio::sync::mpsc::UnboundedSender;

use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::error::ErrorNumber;

use crate::domain_xml::{self, DomainInfo, METADATA_NS, METADATA_PREFIX, TEMPLATE_ELEMENT};
use crate::error::{Error, Result};
use crate::events::{self, LifecycleEvent};
use crate::ids::normalize_uuid;

/// The flags for the XML a clone starts from: the persistent definition,
/// including secrets such as VNC passwords (they belong to the copy too).
const INACTIVE_SECURE_XML: u32 =
    virt::sys::VIR_DOMAIN_XML_INACTIVE | virt::sys::VIR_DOMAIN_XML_SECURE;

/// The libvirt connection. When libvirtd restarts, the next call finds the
/// connection dead and opens a new one (and re-subscribes to events).
pub struct Host {
    conn: RwLock<Connect>,
    uri: String,
    events: Mutex<Option<UnboundedSender<LifecycleEvent>>>,
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
                if let Some(tx) = self.events.lock().expect("events lock").clone() {
                    if let Err(e) = events::watch_lifecycle(&fresh, tx) {
                        tracing::error!("{e}");
                    }
                }
                *conn = fresh.clone();
                fresh
            }
            Err(e) => {
                tracing::error!("{e}");
                conn.clone()
            }
        }
    }

    /// Sends the lifecycle events of every domain to `tx`, across reconnects.
    pub fn watch_events(&self, tx: UnboundedSender<LifecycleEvent>) -> Result<()> {
        events::watch_lifecycle(&self.conn(), tx.clone())?;
        *self.events.lock().expect("events lock") = Some(tx);
        Ok(())
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
        let state = self.state(dom)?;
        let info = domain_xml::parse(&dom.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)?)?;
        Ok(summary_of(&info, state))
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

    /// The MAC addresses of every interface of every domain, lower case.
    pub fn macs_in_use(&self) -> Result<HashSet<String>> {
        let mut macs = HashSet::new();
        for dom in self.conn().list_all_domains(0)? {
            let mut definitions = vec![virt::sys::VIR_DOMAIN_XML_INACTIVE];
            // A running domain's live MACs can differ from its definition.
            if dom.is_active().unwrap_or(false) {
                definitions.push(0);
            }
            for flags in definitions {
                let Ok(xml) = dom.xml_desc(flags) else {
                    continue;
                };
                let Ok(info) = domain_xml::parse(&xml) else {
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
        }
        Ok(macs)
    }

    pub fn define(&self, xml: &str) -> Result<Domain> {
        self.conn().define_domain_xml(xml).map_err(|e| {
            let msg = e.message().to_string();
            if matches!(
                e.code(),
                virt::error::ErrorNumberEnum::Known(ErrorNumber::DomExist)
                    | virt::error::ErrorNumberEnum::Known(ErrorNumber::OperationFailed)
            ) && msg.contains("already exists")
            {
                Error::NameExists(format!("A VM with that name already exists: {msg}"))
            } else {
                Error::Libvirt(format!("libvirt refused the clone's definition: {msg}"))
            }
        })
    }

    /// Removes the definition of the domain with this UUID, if there is one,
    /// leaving its NVRAM and TPM state to the caller.
    pub fn undefine_uuid(&self, uuid: &str) -> Result<()> {
        let dom = match self.conn().lookup_domain_by_uuid_string(uuid) {
            Ok(d) => d,
            Err(e) if is_no_domain(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let keep =
            virt::sys::VIR_DOMAIN_UNDEFINE_KEEP_NVRAM | virt::sys::VIR_DOMAIN_UNDEFINE_KEEP_TPM;
        dom.undefine_flags(keep)
            .or_else(|_| dom.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_KEEP_NVRAM))
            .or_else(|_| dom.undefine())?;
        Ok(())
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

    /// Whether the pool already has a volume of that name.
    pub fn volume_exists(&self, pool: &virt::storage_pool::StoragePool, name: &str) -> bool {
        pool.lookup_storage_vol_by_name(name).is_ok()
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

    /// Deletes a volume by pool and name; a missing one is fine.
    pub fn delete_volume(&self, pool: &str, name: &str) -> Result<()> {
        match self.volume(pool, name) {
            Ok(vol) => Ok(vol.delete(0)?),
            Err(e) if is_no_storage_vol(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
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
