//! libvirt's backup API and the guest agent's filesystem freeze, which the
//! `virt` crate does not wrap: small safe functions over `virt::sys`, called
//! through a domain's pointer. Live clones copy a running VM's disks with a
//! push-mode backup job (point-in-time, copy-before-write) into files
//! vmclone made itself (`REUSE_EXTERNAL`). Every function here blocks.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::path::{Path, PathBuf};
use std::ptr;

use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::XmlVersion;
use virt::domain::Domain;
use virt::error::{Error as VirtError, ErrorNumber, ErrorNumberEnum};
use virt::sys;

/// One disk a backup copies: the disk's target (`vda`), the file the copy
/// goes into (made and formatted already), and its format.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub disk: &'a str,
    pub file: &'a Path,
    pub format: &'a str,
}

/// The push-mode backup XML copying `targets` and nothing else: every
/// other disk of the running domain (`skipped`) is named with
/// `backup='no'`, as libvirt would otherwise invent target files for it.
pub fn push_xml(targets: &[Target<'_>], skipped: &[&str]) -> String {
    let attr = |s: &str| escape(s).into_owned();
    let mut xml = String::from("<domainbackup mode='push'>\n  <disks>\n");
    for t in targets {
        xml.push_str(&format!(
            "    <disk name='{}' backup='yes' type='file' backupmode='full'>\n      <driver type='{}'/>\n      <target file='{}'/>\n    </disk>\n",
            attr(t.disk),
            attr(t.format),
            attr(&t.file.to_string_lossy()),
        ));
    }
    for disk in skipped {
        xml.push_str(&format!("    <disk name='{}' backup='no'/>\n", attr(disk)));
    }
    xml.push_str("  </disks>\n</domainbackup>\n");
    xml
}

/// Starts the push-mode backup `xml` into target files that already exist.
pub fn begin(dom: &Domain, xml: &str) -> Result<(), VirtError> {
    let xml = CString::new(xml).expect("backup XML is made of paths and names, never NUL");
    // SAFETY: a valid domain pointer and NUL-terminated XML; no checkpoint.
    let rc = unsafe {
        sys::virDomainBackupBegin(
            dom.as_ptr(),
            xml.as_ptr(),
            ptr::null(),
            sys::VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL,
        )
    };
    match rc {
        -1 => Err(VirtError::last_error()),
        _ => Ok(()),
    }
}

/// The target files of the domain's backup job; None when no backup runs.
pub fn target_files(dom: &Domain) -> Result<Option<Vec<PathBuf>>, VirtError> {
    // SAFETY: a valid domain pointer; libvirt returns a malloc'ed string or NULL.
    let xml = unsafe { sys::virDomainBackupGetXMLDesc(dom.as_ptr(), 0) };
    if xml.is_null() {
        let e = VirtError::last_error();
        let none = matches!(
            e.code(),
            ErrorNumberEnum::Known(ErrorNumber::NoDomainBackup)
        );
        return match none {
            true => Ok(None),
            false => Err(e),
        };
    }
    // SAFETY: xml is a NUL-terminated string we own; freed right after the copy.
    let text = unsafe {
        let s = CStr::from_ptr(xml).to_string_lossy().into_owned();
        libc::free(xml.cast());
        s
    };
    Ok(Some(files_in(&text)))
}

/// Every `<target file='…'/>` in a backup XML.
fn files_in(xml: &str) -> Vec<PathBuf> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut files = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if e.name().into_inner() == "target" => {
                let file = e.try_get_attribute("file").ok().flatten().and_then(|a| {
                    a.normalized_value(XmlVersion::Implicit1_0)
                        .ok()
                        .map(|v| PathBuf::from(v.as_ref()))
                });
                files.extend(file);
            }
            Ok(Event::Eof) | Err(_) => return files,
            Ok(_) => {}
        }
    }
}

/// Asks libvirt to stop the domain's job (here: the backup); it ends soon after.
pub fn abort(dom: &Domain) -> Result<(), VirtError> {
    // SAFETY: a valid domain pointer.
    match unsafe { sys::virDomainAbortJob(dom.as_ptr()) } {
        -1 => Err(VirtError::last_error()),
        _ => Ok(()),
    }
}

/// A domain's backup job, as `virDomainGetJobStats` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// No backup job runs (another kind of job may).
    None,
    /// Bytes copied so far out of the total (the disks' virtual sizes).
    Running { processed: u64, total: u64 },
}

/// How the domain's last job ended, from libvirt's completed-job statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The job was a backup.
    pub backup: bool,
    pub success: bool,
    pub message: Option<String>,
}

/// The domain's current backup job.
pub fn job(dom: &Domain) -> Result<JobState, VirtError> {
    let stats = Stats::get(dom, 0)?;
    if stats.kind != sys::VIR_DOMAIN_JOB_UNBOUNDED as c_int
        || stats.int(sys::VIR_DOMAIN_JOB_OPERATION)
            != Some(sys::VIR_DOMAIN_JOB_OPERATION_BACKUP as c_int)
    {
        return Ok(JobState::None);
    }
    Ok(JobState::Running {
        processed: stats.ulong(sys::VIR_DOMAIN_JOB_DISK_PROCESSED).unwrap_or(0),
        total: stats.ulong(sys::VIR_DOMAIN_JOB_DISK_TOTAL).unwrap_or(0),
    })
}

/// How the domain's last finished job ended; None when libvirt kept no
/// record (the domain was restarted, or libvirtd was).
pub fn last_ended(dom: &Domain) -> Result<Option<Ended>, VirtError> {
    let flags = sys::VIR_DOMAIN_JOB_STATS_COMPLETED | sys::VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED;
    let stats = Stats::get(dom, flags)?;
    if stats.kind == sys::VIR_DOMAIN_JOB_NONE as c_int {
        return Ok(None);
    }
    let completed = stats.kind == sys::VIR_DOMAIN_JOB_COMPLETED as c_int;
    Ok(Some(Ended {
        backup: stats.int(sys::VIR_DOMAIN_JOB_OPERATION)
            == Some(sys::VIR_DOMAIN_JOB_OPERATION_BACKUP as c_int),
        success: stats
            .boolean(sys::VIR_DOMAIN_JOB_SUCCESS)
            .unwrap_or(completed),
        message: stats.string(sys::VIR_DOMAIN_JOB_ERRMSG),
    }))
}

/// How long the guest agent may take to freeze or thaw. libvirt waits
/// forever by default: a guest whose agent never answers would hold the
/// clone, and the paused guest, with it.
const AGENT_TIMEOUT_S: c_int = 10;

/// Runs the agent command `call` on `dom` with its answer bounded by
/// [`AGENT_TIMEOUT_S`], then gives the domain libvirt's default back (libvirt
/// cannot tell an earlier setting; vmclone's commands are the only ones
/// bounded meanwhile).
fn bounded_agent_call(
    dom: &Domain,
    call: unsafe extern "C" fn(sys::virDomainPtr, *mut *const c_char, u32, u32) -> c_int,
) -> Result<u32, VirtError> {
    // SAFETY: a valid domain pointer.
    if unsafe { sys::virDomainAgentSetResponseTimeout(dom.as_ptr(), AGENT_TIMEOUT_S, 0) } == -1 {
        return Err(VirtError::last_error());
    }
    // SAFETY: a valid domain pointer; no mount point list means all of them.
    let n = unsafe { call(dom.as_ptr(), ptr::null_mut(), 0, 0) };
    let result = match n {
        -1 => Err(VirtError::last_error()),
        n => Ok(n as u32),
    };
    let default = sys::VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_DEFAULT;
    // SAFETY: as above.
    if unsafe { sys::virDomainAgentSetResponseTimeout(dom.as_ptr(), default, 0) } == -1 {
        tracing::warn!(
            "cannot give the guest agent its default timeout back: {}",
            VirtError::last_error().message()
        );
    }
    result
}

/// Freezes the guest's filesystems through its agent; how many were frozen.
pub fn freeze(dom: &Domain) -> Result<u32, VirtError> {
    bounded_agent_call(dom, sys::virDomainFSFreeze)
}

/// Thaws the guest's filesystems through its agent; how many were thawed.
pub fn thaw(dom: &Domain) -> Result<u32, VirtError> {
    bounded_agent_call(dom, sys::virDomainFSThaw)
}

/// Typed job statistics, freed with libvirt's own function.
struct Stats {
    kind: c_int,
    params: sys::virTypedParameterPtr,
    n: c_int,
}

impl Stats {
    fn get(dom: &Domain, flags: u32) -> Result<Stats, VirtError> {
        let mut stats = Stats {
            kind: 0,
            params: ptr::null_mut(),
            n: 0,
        };
        // SAFETY: a valid domain pointer; libvirt allocates the parameters.
        let rc = unsafe {
            sys::virDomainGetJobStats(
                dom.as_ptr(),
                &mut stats.kind,
                &mut stats.params,
                &mut stats.n,
                flags,
            )
        };
        match rc {
            -1 => Err(VirtError::last_error()),
            _ => Ok(stats),
        }
    }

    fn int(&self, name: &CStr) -> Option<c_int> {
        let mut v: c_int = 0;
        // SAFETY: the parameters libvirt gave us, a NUL-terminated name.
        let found =
            unsafe { sys::virTypedParamsGetInt(self.params, self.n, name.as_ptr(), &mut v) };
        (found == 1).then_some(v)
    }

    fn ulong(&self, name: &CStr) -> Option<u64> {
        let mut v: std::os::raw::c_ulonglong = 0;
        // SAFETY: as in `int`.
        let found =
            unsafe { sys::virTypedParamsGetULLong(self.params, self.n, name.as_ptr(), &mut v) };
        (found == 1).then_some(v)
    }

    fn boolean(&self, name: &CStr) -> Option<bool> {
        let mut v: c_int = 0;
        // SAFETY: as in `int`.
        let found =
            unsafe { sys::virTypedParamsGetBoolean(self.params, self.n, name.as_ptr(), &mut v) };
        (found == 1).then_some(v != 0)
    }

    fn string(&self, name: &CStr) -> Option<String> {
        let mut v: *const c_char = ptr::null();
        // SAFETY: as in `int`; the string stays owned by the parameters.
        let found =
            unsafe { sys::virTypedParamsGetString(self.params, self.n, name.as_ptr(), &mut v) };
        // SAFETY: on success v points into the parameters, which live until drop.
        (found == 1 && !v.is_null())
            .then(|| unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned())
    }
}

impl Drop for Stats {
    fn drop(&mut self) {
        if !self.params.is_null() {
            // SAFETY: parameters libvirt allocated, freed once.
            unsafe { sys::virTypedParamsFree(self.params, self.n) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_push_xml_names_every_disk_and_escapes_paths() {
        let file = Path::new("/srv/vms/.vmclone-live-1/a'b&c.qcow2");
        let xml = push_xml(
            &[Target {
                disk: "vda",
                file,
                format: "qcow2",
            }],
            &["sda"],
        );
        assert!(xml.contains("<disk name='vda' backup='yes' type='file' backupmode='full'>"));
        assert!(xml.contains("<driver type='qcow2'/>"));
        assert!(xml.contains("<disk name='sda' backup='no'/>"));
        assert_eq!(files_in(&xml), vec![file.to_path_buf()]);
    }

    #[test]
    fn target_files_are_read_from_libvirts_backup_xml() {
        let xml = "<domainbackup mode='push'><disks>\
            <disk name='vda' backup='yes' type='file' backupmode='full' state='running'>\
            <driver type='raw'/><target file='/var/lib/libvirt/images/.vmclone-live-x/d.raw'/></disk>\
            <disk name='hdc' backup='no'/></disks></domainbackup>";
        assert_eq!(
            files_in(xml),
            vec![PathBuf::from(
                "/var/lib/libvirt/images/.vmclone-live-x/d.raw"
            )]
        );
    }
}
