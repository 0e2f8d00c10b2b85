//! `guest-identity=reset` in a clone's run, in two steps around the copy:
//!
//! 1. Before any disk is copied, the appliance runs once on scratch overlays
//!    that stand on the source's images (read-only, through the service's
//!    descriptors): it recognises the guest (anything but one Linux system is
//!    refused with nothing copied) and makes every change, which lands in the
//!    scratch overlays, never in the source or a template.
//! 2. After the copies (or overlays) are made, each scratch overlay is
//!    committed into the clone's own top image: the clone gets exactly the
//!    changes, its source stays byte for byte as it was.
//!
//! A live clone's source runs and its images change, so there step 1 comes
//! after the copy, on scratch overlays over the clone's own copies; step 2
//! then commits them the same way.
//!
//! The scratch overlays live in `<state dir>/work/<clone uuid>/`, a folder
//! the journal records like any artifact, so a failure, a cancel or a crash
//! removes it with the rest of the clone.

use std::ffi::OsString;
use std::fs::File;

use super::execute::Execution;
use super::plan::{DiskWork, StoragePlan};
use crate::error::{Error, Result};
use crate::guest::{self, fish::Drive, image, image::Image};
use crate::journal::{Artifact, Entry, Made};
use crate::storage::folder::{FileId, Folder};
use crate::storage::qcow2;

/// What the appliance's scratch overlays stand on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Images {
    /// The source's images (a shut-off source, before the copy).
    Source,
    /// The clone's own copies, made already (a live clone).
    Clone,
}

/// What step 1 left for step 2.
pub(super) struct Customized {
    entry: Entry,
    folder: Folder,
    name: OsString,
    id: FileId,
    /// Per customized disk: its index in the plan, the scratch overlay.
    scratches: Vec<(usize, File, OsString)>,
}

/// The source-side chain of one of the clone's own disks, top first.
fn source_chain<'p>(work: &'p DiskWork, vm: &str, i: usize) -> Result<Option<Vec<Image<'p>>>> {
    Ok(match work {
        DiskWork::Share => None,
        DiskWork::Copy { layers } => Some(
            layers
                .iter()
                .map(|l| Image {
                    file: l.source.file(),
                    format: &l.format,
                    block_device: l.source.is_block_device(),
                })
                .collect(),
        ),
        DiskWork::Overlay {
            template,
            backing_format,
            ..
        } => {
            if backing_format == "qcow2"
                && qcow2::read_header(template.file())
                    .ok()
                    .flatten()
                    .is_some_and(|h| h.backing.is_some())
            {
                return Err(Error::InvalidOption(format!(
                    "The template image {} of “{vm}” stands on a backing file; vmclone resets the identity of linked clones of single-image templates only. Flatten the template's image, or clone with guest-identity “keep”.",
                    template.path().display()
                )));
            }
            Some(vec![Image {
                file: template.file(),
                format: backing_format,
                block_device: template.is_block_device(),
            }])
        }
        DiskWork::CloneVolume { source, .. } => {
            return Err(Error::InvalidOption(format!(
                "Disk {} of “{vm}” is the pool volume “{}”, which libvirt copies itself; vmclone resets the identity only on disks kept in files. Clone with guest-identity “keep”.",
                i + 1,
                source.name().unwrap_or_default()
            )))
        }
    })
}

impl Execution<'_, '_> {
    /// Step 1 for a shut-off source: recognise and change the guest on scratch
    /// overlays of the source's images, before anything is copied.
    pub(super) fn customize_source(
        &mut self,
        plan: &StoragePlan,
        uuid: &str,
        host_name: &str,
    ) -> Result<Customized> {
        self.customize(plan, uuid, host_name, Images::Source)
    }

    /// Step 1 for a live clone: the same on scratch overlays of the clone's
    /// copies, once they are made (the running source's images move on).
    pub(super) fn customize_copies(
        &mut self,
        plan: &StoragePlan,
        uuid: &str,
        host_name: &str,
    ) -> Result<Customized> {
        self.customize(plan, uuid, host_name, Images::Clone)
    }

    fn customize(
        &mut self,
        plan: &StoragePlan,
        uuid: &str,
        host_name: &str,
        images: Images,
    ) -> Result<Customized> {
        let program = guest::installed()?;
        let vm = self.info.name.clone();
        // A live clone's copies: one flattened image per copied disk, ours.
        let mut copies = Vec::new();
        if images == Images::Clone {
            for (i, work) in plan.disks.iter().enumerate() {
                if let DiskWork::Copy { layers } = work {
                    copies.push((i, self.reopen(&layers[0].dst)?, layers[0].format.as_str()));
                }
            }
        }
        let mut chains = Vec::new();
        match images {
            Images::Source => {
                for (i, work) in plan.disks.iter().enumerate() {
                    if let Some(chain) = source_chain(work, &vm, i)? {
                        chains.push((i, chain));
                    }
                }
            }
            Images::Clone => {
                for (i, file, format) in &copies {
                    let image = Image {
                        file,
                        format,
                        block_device: false,
                    };
                    chains.push((*i, vec![image]));
                }
            }
        }
        if chains.is_empty() {
            return Err(Error::InvalidOption(format!(
                "“{vm}” has no disk of its own to reset the identity on (all its disks are shared). Clone it with guest-identity “keep”."
            )));
        }
        let work_dir = self.work;
        let name = OsString::from(uuid);
        let entry = self.journal.intend(Artifact::tree_in(work_dir, &name))?;
        let folder = match work_dir.make_dir(&name) {
            Ok(f) => f,
            Err(e) => {
                self.journal.dropped(entry)?;
                return Err(e.into());
            }
        };
        let id = folder.id();
        self.journal.made(entry, Made::File(id))?;
        let mut customized = Customized {
            entry,
            folder,
            name,
            id,
            scratches: Vec::new(),
        };
        let mut drives = Vec::new();
        for (i, chain) in &chains {
            let scratch_name = OsString::from(format!("disk-{i}.qcow2"));
            let (file, _) = customized.folder.create_file(&scratch_name)?;
            let path = customized.folder.join(&scratch_name);
            image::scratch_overlay(&file, &path, chain)
                .map_err(|e| Error::Storage(e.to_string()))?;
            drives.push(Drive {
                path,
                format: "qcow2",
            });
            customized.scratches.push((*i, file, scratch_name));
        }
        self.pause("before-customize");
        self.check_cancel()?;
        let done = guest::customize(
            &program,
            &drives,
            &customized.folder,
            &vm,
            host_name,
            &self.progress.ctl.cancelled,
        )?;
        tracing::info!("identity of the clone of “{vm}” reset: {}", done.join("; "));
        Ok(customized)
    }

    /// Step 2: commit the changes into the clone's own images, then remove
    /// the scratch folder.
    pub(super) fn apply_customization(&mut self, plan: &StoragePlan, c: Customized) -> Result<()> {
        for (i, scratch, scratch_name) in &c.scratches {
            self.check_cancel()?;
            let scratch_path = c.folder.join(scratch_name);
            // The clone's images, reopened by the identity they were made with.
            let (files, formats, top_path) = match &plan.disks[*i] {
                DiskWork::Copy { layers } => {
                    let layers = plan.copied_layers(layers);
                    let mut files = Vec::new();
                    for l in layers {
                        // A copy is a file, even of a block device.
                        files.push((self.reopen(&l.dst)?, false));
                    }
                    let formats: Vec<&str> = layers.iter().map(|l| l.format.as_str()).collect();
                    (files, formats, layers[0].dst.path())
                }
                DiskWork::Overlay {
                    dst,
                    template,
                    backing_format,
                    ..
                } => {
                    let top = self.reopen(dst)?;
                    let base = template.file().try_clone().map_err(|e| {
                        Error::Storage(format!("{}: {e}", template.path().display()))
                    })?;
                    (
                        vec![(top, false), (base, template.is_block_device())],
                        vec!["qcow2", backing_format.as_str()],
                        dst.path(),
                    )
                }
                DiskWork::Share | DiskWork::CloneVolume { .. } => unreachable!("not customized"),
            };
            let target: Vec<Image<'_>> = files
                .iter()
                .zip(&formats)
                .map(|((file, block_device), format)| Image {
                    file,
                    format,
                    block_device: *block_device,
                })
                .collect();
            image::apply(scratch, &scratch_path, &target, &top_path).map_err(|e| {
                Error::GuestCustomization(format!(
                    "The guest's identity could not be written into {}, so the clone was removed: {e}",
                    top_path.display()
                ))
            })?;
        }
        let Customized {
            entry,
            folder,
            name,
            id,
            scratches,
        } = c;
        drop(scratches);
        drop(folder);
        self.work.remove_tree(&name, id)?;
        self.journal.dropped(entry)?;
        Ok(())
    }

    /// The file made for `dst`, opened again (it must still be ours).
    fn reopen(&self, dst: &super::plan::Dest) -> Result<File> {
        let id = self
            .made
            .iter()
            .find(|(f, n, _)| std::sync::Arc::ptr_eq(f, &dst.folder) && n == &dst.name)
            .map(|(_, _, id)| *id)
            .ok_or_else(|| {
                Error::Storage(format!(
                    "{} was not made by this clone",
                    dst.path().display()
                ))
            })?;
        Ok(dst.folder.open_rw_if(&dst.name, id)?)
    }
}
