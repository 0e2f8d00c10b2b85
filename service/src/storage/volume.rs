//! Copies of libvirt storage-pool volumes through libvirt's storage API, for
//! pools whose volumes are not plain files we can copy ourselves (LVM, the
//! test driver, ...).

use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;

use quick_xml::escape::escape;

/// Creates volume `new_name` in `pool` as a copy of `source`, same capacity
/// allocation and format. Blocks until libvirt has copied the data.
pub fn clone_volume(
    pool: &StoragePool,
    source: &StorageVol,
    new_name: &str,
    format: Option<&str>,
) -> Result<StorageVol, virt::error::Error> {
    let info = source.info()?;
    let (capacity, allocation) = (info.capacity, info.allocation);
    let format = format
        .map(|f| format!("<format type='{}'/>", escape(f)))
        .unwrap_or_default();
    let xml = format!(
        "<volume><name>{}</name><capacity unit='bytes'>{capacity}</capacity>\
         <allocation unit='bytes'>{allocation}</allocation>\
         <target>{format}</target></volume>",
        escape(new_name)
    );
    StorageVol::create_xml_from(pool, &xml, source, 0)
}

/// Whether libvirt refused to create a volume because its name is taken
/// (then nothing of ours was made).
pub fn exists_error(e: &virt::error::Error) -> bool {
    matches!(
        e.code(),
        virt::error::ErrorNumberEnum::Known(virt::error::ErrorNumber::StorageVolExist)
    )
}
