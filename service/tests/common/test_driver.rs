//! libvirt's own judgement of domain XML, for the domain XML unit tests
//! (`src/domain_xml/tests.rs` includes this file by path). The check itself lives in
//! the test-support layer, `vmclone_tests::test_host`.

pub use vmclone_tests::test_host::{define_in_test_driver, Definition};
