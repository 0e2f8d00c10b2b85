//! virt-clone conformance: our clone of each virt-manager test input agrees
//! with virt-clone's expected output on what a clone must change (which
//! disks are copied or shared, MACs, UUID, sysinfo, graphics ports, channel
//! paths, NVRAM path), and every place where it deliberately differs is
//! listed below, asserted, and documented in the README.
//!
//! The data is virt-manager's own clone test data, in
//! `$VMCLONE_SHARED_DIR/conformance/virt-manager` or
//! `<repo>/../shared/conformance/virt-manager`; see its INDEX.md.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};
use vmclone_service::clone::plan::decide::{self, DiskDecision, Lookups, VolumeRef};
use vmclone_service::domain_xml::{
    self, CloneEdits, DiskSource, DiskTarget, DomainInfo, NewDisk, XmlError,
};
use vmclone_service::options::StorageMode;
use vmclone_service::{ids, naming};
use vmclone_tests::test_host::{define_in_test_driver, Definition};

/// What the harness's `,predictable` test driver generates.
const PREDICTABLE_UUID: &str = "00000000-1111-2222-3333-444444444444";
const PREDICTABLE_MAC: &str = "00:11:22:33:44:55";

fn data_dir() -> PathBuf {
    let dir = match std::env::var_os("VMCLONE_SHARED_DIR") {
        Some(shared) => PathBuf::from(shared).join("conformance/virt-manager"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/virt-manager"),
    };
    if !dir.join("INDEX.md").is_file() {
        panic!(
            "\n\n\
             ************************************************************\n\
             *  THE virt-clone CONFORMANCE DATA IS MISSING               *\n\
             ************************************************************\n\
             Looked for {}/INDEX.md.\n\
             These tests compare our clones with virt-clone's expected output and\n\
             cannot pass without that data. Put the virt-manager fixtures at\n\
             <repo>/../shared/conformance/virt-manager, or set VMCLONE_SHARED_DIR to\n\
             the folder that holds conformance/virt-manager.\n\n",
            dir.display()
        );
    }
    dir
}

fn read(rel: &str) -> String {
    let path = data_dir().join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read conformance file {}: {e}", path.display()))
}

// ---------------------------------------------------------------- cases ---

#[derive(Clone, Copy, Debug)]
enum Input {
    /// `tests/data/cli/virtclone/<file>`, used with `--original-xml`.
    File(&'static str),
    /// A `<domain>` of `tests/data/testdriver/testdriver.xml`, by name.
    TestDriver(&'static str),
}

/// A place where our clone deliberately differs from virt-clone's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Diff {
    /// virt-clone copies this disk to `virt_clone`; we share it.
    DiskShared {
        dev: &'static str,
        virt_clone: &'static str,
    },
    /// virt-clone shares this disk (--skip-copy); we copy it to `ours`.
    DiskCopied {
        dev: &'static str,
        ours: &'static str,
    },
    /// Both copy the disk, to different paths.
    DiskPath {
        dev: &'static str,
        virt_clone: &'static str,
        ours: &'static str,
    },
    /// Source path of the n-th serial/console/parallel device.
    CharFile {
        index: usize,
        virt_clone: &'static str,
        ours: &'static str,
    },
    Nvram {
        virt_clone: &'static str,
        ours: &'static str,
    },
    /// We also write autoport='yes' on the n-th graphics device (libvirt
    /// reads port='-1' the same way).
    GraphicsAutoport { index: usize },
}

const WHY_FLOPPY: &str =
    "cdroms and floppies always stay shared (issue #2); virt-clone copies a writable floppy";
const WHY_NAMING: &str =
    "copied disks carry the new VM name (data.raw -> data-NEW.raw), virt-clone appends -clone";
const WHY_AUTOPORT: &str =
    "we write autoport='yes' next to port='-1'; libvirt treats both the same";
const WHY_NO_FILE_OPTION: &str =
    "no per-disk --file option: paths follow our naming rule (target-dir picks only the folder)";
const WHY_NO_SKIP_COPY: &str =
    "no --skip-copy: a writable disk is never shared, that corrupts both guests";
const WHY_NO_PRESERVE: &str =
    "no --preserve-data/--file: writable disks are always copied to new files";
const WHY_SERIAL: &str =
    "serial/console files not named after the VM are left alone; virt-clone appends -clone";
const WHY_NO_NVRAM_OPTION: &str =
    "no --nvram option: NVRAM always goes to <dir>/<new name>_VARS<ext>";

struct Case {
    /// The compare case number in INDEX.md.
    number: u32,
    input: Input,
    expected: &'static str,
    new_name: &'static str,
    options: Options,
    /// Neither side went through libvirt's normalisation (both come from
    /// `--original-xml` files): the whole documents must match.
    whole_tree: bool,
    differences: &'static [(Diff, &'static str)],
}

/// The clone options a case passes; the compare cases mostly pass none.
#[derive(Clone, Copy)]
struct Options {
    /// `uuid` and `mac-addresses`, as the manual case passes them.
    uuid: Option<&'static str>,
    macs: Option<&'static [&'static str]>,
    target_dir: Option<&'static str>,
}

const AUTOMATIC: Options = Options {
    uuid: None,
    macs: None,
    target_dir: None,
};

/// Where an automatic clone of the test driver's "test-clone" differs from
/// virt-clone's: the floppy, the two disks' paths (`ours`, named after the
/// clone) and the graphics autoport.
const fn auto_clone_of_test_clone(
    ours_hda: &'static str,
    ours_hdb: &'static str,
) -> [(Diff, &'static str); 4] {
    [
        (
            Diff::DiskShared {
                dev: "fda",
                virt_clone: "/dev/pool-logical/diskvol1-clone",
            },
            WHY_FLOPPY,
        ),
        (
            Diff::DiskPath {
                dev: "hda",
                virt_clone: "/pool-dir/default-vol-clone",
                ours: ours_hda,
            },
            WHY_NAMING,
        ),
        (
            Diff::DiskPath {
                dev: "hdb",
                virt_clone: "/pool-dir/testvol9-clone.img",
                ours: ours_hdb,
            },
            WHY_NAMING,
        ),
        (Diff::GraphicsAutoport { index: 0 }, WHY_AUTOPORT),
    ]
}

const CASES: &[Case] = &[
    Case {
        number: 1,
        input: Input::TestDriver("test-clone"),
        expected: "virt-clone-clone-auto1.xml",
        new_name: "test-clone1",
        options: AUTOMATIC,
        whole_tree: false,
        differences: &auto_clone_of_test_clone(
            "/pool-dir/default-vol-test-clone1",
            "/pool-dir/testvol9-test-clone1.img",
        ),
    },
    Case {
        number: 2,
        input: Input::TestDriver("test-clone-simple"),
        expected: "virt-clone-clone-auto2.xml",
        new_name: "newvm",
        options: AUTOMATIC,
        whole_tree: false,
        // The disk is named after the VM: /pool-dir/newvm.img on both sides.
        differences: &[(Diff::GraphicsAutoport { index: 0 }, WHY_AUTOPORT)],
    },
    Case {
        number: 3,
        input: Input::File("clone-nvram-auto.xml"),
        expected: "virt-clone-clone-nvram.xml",
        new_name: "clone-orig-clone",
        options: AUTOMATIC,
        whole_tree: true,
        differences: &[],
    },
    Case {
        number: 4,
        input: Input::File("clone-nvram-auto.xml"),
        expected: "virt-clone-clone-nvram-path.xml",
        new_name: "clone-orig-clone",
        options: AUTOMATIC,
        whole_tree: true,
        differences: &[(
            Diff::Nvram {
                virt_clone: "/nvram/my-custom-path",
                ours: "/nvram/clone-orig-clone_VARS.fakeext",
            },
            WHY_NO_NVRAM_OPTION,
        )],
    },
    Case {
        number: 5,
        input: Input::File("clone-nvram-newpool.xml"),
        expected: "virt-clone-nvram-newpool.xml",
        new_name: "clone-orig-clone",
        options: AUTOMATIC,
        whole_tree: true,
        differences: &[],
    },
    Case {
        number: 6,
        input: Input::File("clone-nvram-missing.xml"),
        expected: "virt-clone-nvram-missing.xml",
        new_name: "clone-orig-clone",
        options: AUTOMATIC,
        whole_tree: true,
        differences: &[],
    },
    Case {
        number: 7,
        input: Input::File("clone-nvram-missing.xml"),
        expected: "virt-clone-nvram-missing-preserve.xml",
        new_name: "clone-orig-clone",
        options: AUTOMATIC,
        whole_tree: true,
        differences: &[],
    },
    Case {
        number: 8,
        input: Input::TestDriver("test-clone"),
        expected: "virt-clone-clone-manual.xml",
        new_name: "test-newclone",
        options: Options {
            uuid: Some("12345678-12F4-1234-1234-123456789AFA"),
            macs: Some(&["12:34:56:1A:B2:C3", "12:34:56:1A:B7:C3"]),
            target_dir: None,
        },
        whole_tree: false,
        differences: &[
            (
                Diff::DiskShared {
                    dev: "fda",
                    virt_clone: "/dev/pool-logical/newclone1.img",
                },
                WHY_FLOPPY,
            ),
            (
                Diff::DiskPath {
                    dev: "hda",
                    virt_clone: "/pool-dir/newclone3.img",
                    ours: "/pool-dir/default-vol-test-newclone",
                },
                WHY_NO_FILE_OPTION,
            ),
            (
                Diff::DiskCopied {
                    dev: "hdb",
                    ours: "/pool-dir/testvol9-test-newclone.img",
                },
                WHY_NO_SKIP_COPY,
            ),
            (Diff::GraphicsAutoport { index: 0 }, WHY_AUTOPORT),
        ],
    },
    Case {
        number: 9,
        input: Input::File("clone-empty.xml"),
        expected: "virt-clone-empty.xml",
        new_name: "empty-clone6",
        options: AUTOMATIC,
        whole_tree: true,
        differences: &[],
    },
    Case {
        number: 10,
        input: Input::TestDriver("test-clone-simple"),
        expected: "virt-clone-pool-test-cross-pool.xml",
        new_name: "test-clone-simple-clone",
        options: Options {
            target_dir: Some("/"),
            ..AUTOMATIC
        },
        whole_tree: false,
        differences: &[
            (
                Diff::DiskPath {
                    dev: "hda",
                    virt_clone: "/foo.img",
                    ours: "/test-clone-simple-clone.img",
                },
                WHY_NO_FILE_OPTION,
            ),
            (Diff::GraphicsAutoport { index: 0 }, WHY_AUTOPORT),
        ],
    },
    Case {
        number: 11,
        input: Input::File("clone-disk-managed.xml"),
        expected: "virt-clone-auto-managed.xml",
        new_name: "origtest-clone",
        options: AUTOMATIC,
        whole_tree: true,
        differences: &[(
            Diff::DiskPath {
                dev: "hda",
                virt_clone: "/pool-dir/default-vol-clone",
                ours: "/pool-dir/default-vol-origtest-clone",
            },
            WHY_NAMING,
        )],
    },
    Case {
        number: 12,
        input: Input::File("clone-disk.xml"),
        expected: "virt-clone-auto-unmanaged.xml",
        new_name: "origtest-clone",
        options: AUTOMATIC,
        whole_tree: true,
        differences: &[
            (
                Diff::DiskPath {
                    dev: "hda",
                    virt_clone: "/tmp/__virtinst_cli_exist1-clone.img",
                    ours: "/tmp/__virtinst_cli_exist1-origtest-clone.img",
                },
                WHY_NAMING,
            ),
            (
                Diff::DiskPath {
                    dev: "hdb",
                    virt_clone: "/tmp/__virtinst_cli_exist2-clone.img",
                    ours: "/tmp/__virtinst_cli_exist2-origtest-clone.img",
                },
                WHY_NAMING,
            ),
        ],
    },
    Case {
        number: 13,
        input: Input::File("clone-serial.xml"),
        expected: "virt-clone-serial.xml",
        new_name: "__virtinst_cli_test-clone1",
        options: AUTOMATIC,
        whole_tree: true,
        // The serial file named after the VM is renamed on both sides.
        differences: &[
            (
                Diff::CharFile {
                    index: 1,
                    virt_clone: "/tmp/__virtinst_cli_other-serial-clone.file",
                    ours: "/tmp/__virtinst_cli_other-serial.file",
                },
                WHY_SERIAL,
            ),
            (
                Diff::CharFile {
                    index: 3,
                    virt_clone: "/tmp/__virtinst_cli_serial-exists-clone.file",
                    ours: "/tmp/__virtinst_cli_serial-exists.file",
                },
                WHY_SERIAL,
            ),
        ],
    },
    Case {
        number: 14,
        input: Input::File("clone-disk.xml"),
        expected: "virt-clone-unmanaged-preserve.xml",
        new_name: "clonetest",
        options: AUTOMATIC,
        whole_tree: true,
        differences: &[
            (
                Diff::DiskPath {
                    dev: "hda",
                    virt_clone: "TESTSUITE_SCRUBBED/virt-install",
                    ours: "/tmp/__virtinst_cli_exist1-clonetest.img",
                },
                WHY_NO_PRESERVE,
            ),
            (
                Diff::DiskPath {
                    dev: "hdb",
                    virt_clone: "/pool-dir/testvol1.img",
                    ours: "/tmp/__virtinst_cli_exist2-clonetest.img",
                },
                WHY_NO_PRESERVE,
            ),
        ],
    },
    Case {
        // virt-clone --replace destroys the running VM "test" first; our
        // service answers NameExists instead. The XML is compared as if the
        // name were free.
        number: 15,
        input: Input::TestDriver("test-clone"),
        expected: "virt-clone-replace.xml",
        new_name: "test",
        options: AUTOMATIC,
        whole_tree: false,
        differences: &auto_clone_of_test_clone(
            "/pool-dir/default-vol-test",
            "/pool-dir/testvol9-test.img",
        ),
    },
];

fn case(number: u32) -> &'static Case {
    CASES
        .iter()
        .find(|c| c.number == number)
        .expect("case is listed")
}

// ------------------------------------------------------------- the plan ---

/// The clone our service would make: disks copied unless `is_shared`, paths
/// by our naming rule, random 52:54:00 MACs and a random UUID unless given.
struct Plan {
    uuid: String,
    genid: String,
    macs: Vec<String>,
    disks: Vec<Option<NewDisk>>,
    nvram: Option<PathBuf>,
}

impl Plan {
    /// What `domain_xml::rewrite` is given for this plan (CPU and memory kept).
    fn edits<'a>(&'a self, new_name: &'a str) -> CloneEdits<'a> {
        CloneEdits {
            new_name,
            new_uuid: &self.uuid,
            new_genid: &self.genid,
            macs: &self.macs,
            disks: &self.disks,
            nvram: self.nvram.as_deref(),
            vcpus: None,
            memory_kib: None,
        }
    }
}

/// A disk copied to `target` in its own format (no overlay), as the service copies.
fn copy_to(target: DiskTarget) -> Option<NewDisk> {
    Some(NewDisk {
        target,
        driver_type: None,
        overlay: false,
    })
}

/// `count` MACs from the service's own generator, on a host where none is in use.
fn new_macs(count: usize) -> Vec<String> {
    ids::new_macs(count, &HashSet::new())
}

/// The fixtures' host as the service's planner sees it: nothing exists at
/// the fixture paths on this machine, and no path is a pool volume.
struct FixtureHost;

impl Lookups for FixtureHost {
    fn volume_at(&self, _path: &Path) -> Option<VolumeRef> {
        None
    }

    fn volume(&self, pool: &str, name: &str) -> vmclone_service::error::Result<VolumeRef> {
        Ok(VolumeRef {
            pool: pool.to_owned(),
            name: name.to_owned(),
            path: Path::new("/").join(pool).join(name),
            is_file: true,
        })
    }

    fn exists(&self, _path: &Path) -> bool {
        true
    }

    fn claim_path(&mut self, _path: &Path) -> vmclone_service::error::Result<bool> {
        Ok(true)
    }

    fn claim_volume(&mut self, _pool: &str, _name: &str) -> vmclone_service::error::Result<bool> {
        Ok(true)
    }
}

/// The clone the service plans: its real storage decision and identity
/// generators, on the fixtures' host.
fn plan(info: &DomainInfo, c: &Case) -> Plan {
    let target_dir = c.options.target_dir.map(Path::new);
    let decision = decide::decide(
        info,
        c.new_name,
        target_dir,
        StorageMode::Copy,
        &mut FixtureHost,
    )
    .unwrap_or_else(|e| panic!("case {}: the planner refused: {e}", c.number));
    let disks = decision
        .disks
        .iter()
        .zip(&info.disks)
        .map(|(d, disk)| {
            assert!(
                !matches!(d, DiskDecision::Overlay { .. }),
                "case {}: a full copy makes no overlay",
                c.number
            );
            d.new_disk(disk)
        })
        .collect();
    let macs = match c.options.macs {
        Some(given) => given.iter().map(|m| m.to_string()).collect(),
        None => new_macs(info.interfaces.len()),
    };
    Plan {
        uuid: c
            .options
            .uuid
            .map_or_else(|| ids::new_uuid(|_| false), str::to_owned),
        genid: ids::new_uuid(|_| false),
        macs,
        disks,
        nvram: decision.nvram.map(|(_, dst)| dst),
    }
}

fn input_xml(input: Input) -> String {
    match input {
        Input::File(f) => read(&format!("tests/data/cli/virtclone/{f}")),
        Input::TestDriver(name) => testdriver_domain(name),
    }
}

/// The top-level `<domain>` called `name` in testdriver.xml, as written.
fn testdriver_domain(name: &str) -> String {
    let xml = read("tests/data/testdriver/testdriver.xml");
    let mut reader = Reader::from_str(&xml);
    let mut depth = 0usize;
    let mut start = None;
    loop {
        let before = reader.buffer_position() as usize;
        match reader.read_event().expect("testdriver.xml is well-formed") {
            Event::Start(e) => {
                if depth == 1 && e.name().into_inner() == "domain" {
                    start = Some(before);
                }
                depth += 1;
            }
            Event::End(_) => {
                depth -= 1;
                if depth == 1 {
                    if let Some(s) = start.take() {
                        let dom = &xml[s..reader.buffer_position() as usize];
                        if domain_xml::parse(dom).is_ok_and(|i| i.name == name) {
                            return dom.to_owned();
                        }
                    }
                }
            }
            Event::Eof => panic!("testdriver.xml has no domain named {name:?}"),
            _ => {}
        }
    }
}

// ------------------------------------------------- a tree to compare on ---

#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    name: String,
    attrs: BTreeMap<String, String>,
    /// All character data directly inside, trimmed.
    text: String,
    children: Vec<Node>,
}

fn tree(xml: &str) -> Node {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = vec![Node {
        name: "#document".into(),
        attrs: BTreeMap::new(),
        text: String::new(),
        children: Vec::new(),
    }];
    let open = |e: &quick_xml::events::BytesStart| Node {
        name: e.name().into_inner().to_owned(),
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.expect("attribute");
                let v = a.normalized_value(XmlVersion::Implicit1_0).expect("value");
                (a.key.into_inner().to_owned(), v.into_owned())
            })
            .collect(),
        text: String::new(),
        children: Vec::new(),
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(open(&e)),
            Event::Empty(e) => {
                let node = open(&e);
                stack.last_mut().unwrap().children.push(node);
            }
            Event::End(_) => {
                let mut node = stack.pop().unwrap();
                node.text = node.text.trim().to_owned();
                stack.last_mut().unwrap().children.push(node);
            }
            Event::Text(t) => stack.last_mut().unwrap().text.push_str(&t.xml10_content()),
            Event::CData(t) => stack.last_mut().unwrap().text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let s = match r.resolve_char_ref().expect("char ref") {
                    Some(c) => c.to_string(),
                    None => resolve_predefined_entity(&r)
                        .expect("known entity")
                        .to_owned(),
                };
                stack.last_mut().unwrap().text.push_str(&s);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut doc = stack.pop().unwrap();
    assert_eq!(doc.children.len(), 1, "one root element");
    doc.children.remove(0)
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    fn child_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.children.iter_mut().find(|c| c.name == name)
    }
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).map(String::as_str)
    }
    fn devices(&self) -> impl Iterator<Item = &Node> {
        self.child("devices")
            .into_iter()
            .flat_map(|d| d.children.iter())
    }
    fn devices_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        self.child_mut("devices")
            .into_iter()
            .flat_map(|d| d.children.iter_mut())
    }
}

const CHAR_FILE_DEVICES: [&str; 3] = ["serial", "console", "parallel"];

/// What a clone must get right, read from a domain tree.
#[derive(Debug)]
struct Aspects {
    name: String,
    uuid: String,
    /// (target dev, source or None, driver type) per disk.
    disks: Vec<(String, Option<String>, Option<String>)>,
    macs: Vec<Option<String>>,
    /// Every sysinfo value, with its element path.
    sysinfo: Vec<(String, String)>,
    /// (port, tlsPort, websocket, autoport) per graphics device.
    graphics: Vec<[Option<String>; 4]>,
    /// Source path of each channel.
    channels: Vec<Option<String>>,
    /// Source path of each serial/console/parallel.
    char_files: Vec<Option<String>>,
    nvram: Option<String>,
}

fn disk_source(disk: &Node) -> Option<String> {
    let src = disk.child("source")?;
    if let (Some(p), Some(v)) = (src.attr("pool"), src.attr("volume")) {
        return Some(format!("{p}/{v}"));
    }
    ["file", "dev", "dir"]
        .iter()
        .find_map(|k| src.attr(k))
        .map(str::to_owned)
}

fn sysinfo_values(node: &Node, path: &str, out: &mut Vec<(String, String)>) {
    for c in &node.children {
        let p = format!("{path}/{}[{}]", c.name, c.attr("name").unwrap_or(""));
        if !c.text.is_empty() {
            out.push((p.clone(), c.text.clone()));
        }
        sysinfo_values(c, &p, out);
    }
}

fn aspects(dom: &Node) -> Aspects {
    let text = |n: &str| dom.child(n).map(|c| c.text.clone()).unwrap_or_default();
    let mut sysinfo = Vec::new();
    for s in dom.all("sysinfo") {
        sysinfo_values(s, "sysinfo", &mut sysinfo);
    }
    let source_path = |d: &Node| {
        d.child("source")
            .and_then(|s| s.attr("path"))
            .map(str::to_owned)
    };
    Aspects {
        name: text("name"),
        uuid: text("uuid"),
        disks: dom
            .devices()
            .filter(|d| d.name == "disk")
            .map(|d| {
                (
                    d.child("target")
                        .and_then(|t| t.attr("dev"))
                        .unwrap_or("")
                        .to_owned(),
                    disk_source(d),
                    d.child("driver")
                        .and_then(|t| t.attr("type"))
                        .map(str::to_owned),
                )
            })
            .collect(),
        macs: dom
            .devices()
            .filter(|d| d.name == "interface")
            .map(|i| {
                i.child("mac")
                    .and_then(|m| m.attr("address"))
                    .map(str::to_owned)
            })
            .collect(),
        sysinfo,
        graphics: dom
            .devices()
            .filter(|d| d.name == "graphics")
            .map(|g| {
                ["port", "tlsPort", "websocket", "autoport"].map(|k| g.attr(k).map(str::to_owned))
            })
            .collect(),
        channels: dom
            .devices()
            .filter(|d| d.name == "channel")
            .map(source_path)
            .collect(),
        char_files: dom
            .devices()
            .filter(|d| CHAR_FILE_DEVICES.contains(&d.name.as_str()))
            .map(source_path)
            .collect(),
        nvram: dom.child("os").and_then(|os| os.child("nvram")).map(|n| {
            n.child("source")
                .and_then(|s| s.attr("file"))
                .map_or_else(|| n.text.clone(), str::to_owned)
        }),
    }
}

// ------------------------------------------------------------ the check ---

struct Outcome {
    ours_xml: String,
    plan: Plan,
}

/// Clones the case's input as our service would, then compares with
/// virt-clone's expected output. Every mismatch must be a listed
/// difference, and every listed difference must show up.
fn check(c: &Case) -> Outcome {
    let src_xml = input_xml(c.input);
    let info = domain_xml::parse(&src_xml).expect("input parses");
    let plan = plan(&info, c);
    let ours_xml = domain_xml::rewrite(&src_xml, &plan.edits(c.new_name)).expect("rewrite");
    let expected_xml = read(&format!("tests/data/cli/compare/{}", c.expected));
    let (src_t, ours_t, vc_t) = (tree(&src_xml), tree(&ours_xml), tree(&expected_xml));
    let (src, ours, vc) = (aspects(&src_t), aspects(&ours_t), aspects(&vc_t));
    let n = c.number;
    let mut observed: Vec<Diff> = Vec::new();

    // Name and UUID.
    assert_eq!(ours.name, c.new_name, "case {n}: name");
    assert_eq!(vc.name, c.new_name, "case {n}: virt-clone's name");
    let vc_uuid = c.options.uuid.unwrap_or(PREDICTABLE_UUID);
    assert_eq!(vc.uuid, vc_uuid, "case {n}: virt-clone's uuid");
    assert_eq!(ours.uuid, plan.uuid, "case {n}: our uuid");
    assert!(
        !ours.uuid.eq_ignore_ascii_case(&src.uuid),
        "case {n}: uuid must change"
    );
    if let Some(given) = c.options.uuid {
        assert_eq!(
            ours.uuid, given,
            "case {n}: a given uuid is kept verbatim, as virt-clone"
        );
    }

    // MACs: all new, in interface order, the given ones when given.
    assert_eq!(ours.macs.len(), src.macs.len(), "case {n}: interfaces");
    assert_eq!(
        vc.macs.len(),
        src.macs.len(),
        "case {n}: virt-clone's interfaces"
    );
    for (i, ((o, v), s)) in ours.macs.iter().zip(&vc.macs).zip(&src.macs).enumerate() {
        assert_eq!(
            o.as_deref(),
            Some(plan.macs[i].as_str()),
            "case {n}: MAC {i}"
        );
        assert_ne!(o, s, "case {n}: MAC {i} must change");
        assert_ne!(v, s, "case {n}: virt-clone changes MAC {i} too");
        let want_vc = c.options.macs.map_or(PREDICTABLE_MAC, |m| m[i]);
        assert_eq!(
            v.as_deref(),
            Some(want_vc),
            "case {n}: virt-clone's MAC {i}"
        );
        if c.options.macs.is_some() {
            assert_eq!(o, v, "case {n}: given MAC {i} as virt-clone");
        }
    }

    // sysinfo: the same entries; those that held the old UUID hold the new one.
    assert_eq!(
        ours.sysinfo.len(),
        vc.sysinfo.len(),
        "case {n}: sysinfo entries"
    );
    for (((po, o), (pv, v)), (_, s)) in ours.sysinfo.iter().zip(&vc.sysinfo).zip(&src.sysinfo) {
        assert_eq!(po, pv, "case {n}: sysinfo layout");
        if s.eq_ignore_ascii_case(&src.uuid) {
            assert_eq!(v, vc_uuid, "case {n}: virt-clone syncs {pv}");
            assert_eq!(o, &plan.uuid, "case {n}: we sync {po}");
        } else {
            assert_eq!(o, v, "case {n}: {po} unchanged");
        }
    }

    // Graphics: the same ports (all automatic).
    assert_eq!(ours.graphics.len(), vc.graphics.len(), "case {n}: graphics");
    for (i, (o, v)) in ours.graphics.iter().zip(&vc.graphics).enumerate() {
        assert_eq!(o[..3], v[..3], "case {n}: graphics {i} ports");
        if o[3] != v[3] {
            assert_eq!(
                (o[3].as_deref(), v[3].as_deref()),
                (Some("yes"), None),
                "case {n}"
            );
            observed.push(Diff::GraphicsAutoport { index: i });
        }
    }

    // Channels: the same socket paths (generated ones dropped).
    assert_eq!(ours.channels, vc.channels, "case {n}: channel source paths");

    // Disks: copied or shared, and where to.
    assert_eq!(ours.disks.len(), src.disks.len(), "case {n}: disks");
    assert_eq!(
        vc.disks.len(),
        src.disks.len(),
        "case {n}: virt-clone's disks"
    );
    for ((o, v), s) in ours.disks.iter().zip(&vc.disks).zip(&src.disks) {
        let dev = s.0.as_str();
        assert_eq!(
            (o.0.as_str(), v.0.as_str()),
            (dev, dev),
            "case {n}: disk order"
        );
        assert_eq!(o.2, s.2, "case {n}: {dev} keeps its format");
        if o.1 == v.1 {
            continue;
        }
        let listed = c.differences.iter().map(|d| d.0).find(|d| {
            matches!(d, Diff::DiskShared { dev: x, .. }
                | Diff::DiskCopied { dev: x, .. }
                | Diff::DiskPath { dev: x, .. } if *x == dev)
        });
        let Some(d) = listed else {
            panic!(
                "case {n}: disk {dev} differs from virt-clone and is not a listed difference:\n\
                 virt-clone {:?}\n        ours {:?}",
                v.1, o.1
            )
        };
        let (ours_copied, vc_copied) = (o.1 != s.1, v.1 != s.1);
        match d {
            Diff::DiskShared { virt_clone, .. } => {
                assert!(
                    !ours_copied && vc_copied,
                    "case {n}: {dev} shared by us, copied by virt-clone"
                );
                assert_eq!(v.1.as_deref(), Some(virt_clone), "case {n}: {dev}");
            }
            Diff::DiskCopied { ours: path, .. } => {
                assert!(
                    ours_copied && !vc_copied,
                    "case {n}: {dev} copied by us, shared by virt-clone"
                );
                assert_eq!(o.1.as_deref(), Some(path), "case {n}: {dev}");
            }
            Diff::DiskPath {
                virt_clone,
                ours: path,
                ..
            } => {
                assert!(ours_copied && vc_copied, "case {n}: {dev} copied by both");
                assert_eq!(
                    v.1.as_deref(),
                    Some(virt_clone),
                    "case {n}: {dev} virt-clone path"
                );
                assert_eq!(o.1.as_deref(), Some(path), "case {n}: {dev} our path");
            }
            _ => unreachable!(),
        }
        observed.push(d);
    }

    // Serial/console/parallel files.
    assert_eq!(
        ours.char_files.len(),
        vc.char_files.len(),
        "case {n}: char devices"
    );
    for (i, (o, v)) in ours.char_files.iter().zip(&vc.char_files).enumerate() {
        if o != v {
            let d = Diff::CharFile {
                index: i,
                virt_clone: leak(v),
                ours: leak(o),
            };
            observed.push(d);
        }
    }

    // NVRAM.
    if ours.nvram != vc.nvram {
        observed.push(Diff::Nvram {
            virt_clone: leak(&vc.nvram),
            ours: leak(&ours.nvram),
        });
    }

    // Every observed difference is listed (exactly), and every listed one observed.
    let listed: BTreeSet<String> = c.differences.iter().map(|d| format!("{:?}", d.0)).collect();
    let seen: BTreeSet<String> = observed.iter().map(|d| format!("{d:?}")).collect();
    assert_eq!(
        seen, listed,
        "case {n}: observed differences (left) must equal the listed ones (right)"
    );

    if c.whole_tree {
        let mut want = vc_t.clone();
        apply_known_values(&mut want, c, &plan);
        assert_eq!(
            ours_t, want,
            "case {n}: apart from the listed differences, the whole clone must equal virt-clone's"
        );
    }
    Outcome { ours_xml, plan }
}

/// Test-only: the Diff values hold &'static str.
fn leak(s: &Option<String>) -> &'static str {
    Box::leak(s.clone().unwrap_or_default().into_boxed_str())
}

/// Puts our generated values and listed differences into virt-clone's tree.
fn apply_known_values(vc: &mut Node, c: &Case, plan: &Plan) {
    let vc_uuid = c.options.uuid.unwrap_or(PREDICTABLE_UUID).to_owned();
    fn walk(n: &mut Node, from: &str, to: &str) {
        for ch in &mut n.children {
            if ch.text == from {
                ch.text = to.to_owned();
            }
            walk(ch, from, to);
        }
    }
    if let Some(u) = vc.child_mut("uuid") {
        u.text = plan.uuid.clone();
    }
    for s in vc.children.iter_mut().filter(|ch| ch.name == "sysinfo") {
        walk(s, &vc_uuid, &plan.uuid);
    }
    let mut macs = plan.macs.iter();
    for iface in vc.devices_mut().filter(|d| d.name == "interface") {
        if let (Some(m), Some(ours)) = (iface.child_mut("mac"), macs.next()) {
            m.attrs.insert("address".into(), ours.clone());
        }
    }
    let src_info = domain_xml::parse(&input_xml(c.input)).expect("input parses");
    for (d, _) in c.differences {
        match *d {
            Diff::DiskShared { dev, .. }
            | Diff::DiskCopied { dev, .. }
            | Diff::DiskPath { dev, .. } => {
                let ours = match *d {
                    Diff::DiskCopied { ours, .. } | Diff::DiskPath { ours, .. } => ours.to_owned(),
                    _ => src_info
                        .disks
                        .iter()
                        .find(|x| x.target_dev.as_deref() == Some(dev))
                        .and_then(|x| match &x.source {
                            DiskSource::File(p) | DiskSource::Block(p) => {
                                Some(p.display().to_string())
                            }
                            _ => None,
                        })
                        .expect("shared disk source"),
                };
                let disk = vc
                    .devices_mut()
                    .find(|x| {
                        x.name == "disk"
                            && x.child("target").and_then(|t| t.attr("dev")) == Some(dev)
                    })
                    .expect("disk in expected output");
                let src = disk.child_mut("source").expect("source");
                let key = ["file", "dev"]
                    .into_iter()
                    .find(|k| src.attrs.contains_key(*k))
                    .expect("file or dev");
                src.attrs.insert(key.into(), ours);
            }
            Diff::CharFile { index, ours, .. } => {
                let dev = vc
                    .devices_mut()
                    .filter(|x| CHAR_FILE_DEVICES.contains(&x.name.as_str()))
                    .nth(index)
                    .expect("char device");
                dev.child_mut("source")
                    .expect("source")
                    .attrs
                    .insert("path".into(), ours.into());
            }
            Diff::Nvram { ours, .. } => {
                vc.child_mut("os")
                    .and_then(|os| os.child_mut("nvram"))
                    .expect("nvram")
                    .text = ours.into();
            }
            Diff::GraphicsAutoport { index } => {
                vc.devices_mut()
                    .filter(|x| x.name == "graphics")
                    .nth(index)
                    .expect("graphics")
                    .attrs
                    .insert("autoport".into(), "yes".into());
            }
        }
    }
}

// ------------------------------------------------------------ the tests ---

#[test]
fn index_lists_exactly_the_compare_cases_we_check() {
    let index = read("INDEX.md");
    let section = index
        .split("## Compare cases")
        .nth(1)
        .expect("INDEX.md has a 'Compare cases' section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut in_index = BTreeMap::new();
    for line in section.lines() {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        if let (Some(num), Some(file)) =
            (cols.get(1).and_then(|c| c.parse::<u32>().ok()), cols.get(4))
        {
            in_index.insert(num, file.to_string());
        }
    }
    let ours: BTreeMap<u32, String> = CASES
        .iter()
        .map(|c| (c.number, c.expected.to_owned()))
        .collect();
    assert_eq!(
        in_index, ours,
        "every compare case of INDEX.md is checked here"
    );
}

macro_rules! compare_case {
    ($test:ident, $n:expr) => {
        #[test]
        fn $test() {
            check(case($n));
        }
    };
}

compare_case!(case_01_auto_clone_of_test_clone, 1);
compare_case!(case_02_disk_named_after_the_vm, 2);
compare_case!(case_03_nvram_keeps_its_extension, 3);
compare_case!(case_04_nvram_custom_path, 4);
compare_case!(case_05_nvram_in_a_new_folder, 5);
compare_case!(case_06_nvram_missing, 6);
compare_case!(case_07_nvram_missing_preserve, 7);
compare_case!(case_09_empty_vm, 9);
compare_case!(case_10_disk_to_another_folder, 10);
compare_case!(case_11_managed_volume_path, 11);
compare_case!(case_13_serial_files, 13);
compare_case!(case_14_preserve_data, 14);
compare_case!(case_15_replace, 15);

#[test]
fn case_08_given_uuid_and_macs_are_used_verbatim() {
    let out = check(case(8));
    assert!(out
        .ours_xml
        .contains("<uuid>12345678-12F4-1234-1234-123456789AFA</uuid>"));
    assert_eq!(out.plan.macs, ["12:34:56:1A:B2:C3", "12:34:56:1A:B7:C3"]);
}

#[test]
fn case_12_sysinfo_follows_the_new_uuid() {
    let out = check(case(12));
    let info = domain_xml::parse(&out.ours_xml).unwrap();
    assert!(out
        .ours_xml
        .contains(&format!("<entry name='uuid'>{}</entry>", info.uuid)));
}

/// The service's generators (`clone::identity`) give each clone fresh MACs and a fresh
/// UUID, and the rewrite writes exactly those.
#[test]
fn our_random_macs_and_uuids_are_fresh_each_time() {
    let a = check(case(1)).plan;
    let b = check(case(1)).plan;
    assert_ne!(a.uuid, b.uuid);
    assert_ne!(a.macs, b.macs);
    for m in a.macs.iter().chain(&b.macs) {
        assert!(m.starts_with("52:54:00:"), "{m}");
    }
    let macs = new_macs(2);
    assert_ne!(macs[0], macs[1], "two interfaces, two MACs");
}

/// libvirt itself accepts every clone we write: each one is defined (then
/// undefined again, as cases share names) in the test driver, which runs
/// inside `virsh` on an empty host: no daemon needed.
#[test]
fn libvirt_accepts_every_clone() {
    let definitions: Vec<Definition> = CASES
        .iter()
        .map(|c| Definition {
            file: format!("case-{}.xml", c.number),
            name: c.new_name.to_owned(),
            xml: check(c).ours_xml,
            undefine: true,
        })
        .collect();
    define_in_test_driver("conformance", &definitions);
}

/// The network disks virt-clone refuses to clone are not shared by us
/// either, and the XML layer refuses to give them a new source: the engine
/// must report them (as virt-clone does: "'http' is not cloneable").
#[test]
fn network_disks_are_neither_shared_nor_rewritable() {
    for (file, protocol) in [("clone-net-http.xml", "http"), ("clone-net-rbd.xml", "rbd")] {
        let xml = read(&format!("tests/data/cli/virtclone/{file}"));
        let info = domain_xml::parse(&xml).unwrap();
        assert_eq!(info.disks.len(), 1);
        let disk = &info.disks[0];
        assert_eq!(
            disk.source,
            DiskSource::Network {
                protocol: protocol.into()
            }
        );
        assert!(
            !disk.is_shared(),
            "{file}: a writable network disk is not shareable"
        );
        let plan = Plan {
            uuid: PREDICTABLE_UUID.into(),
            genid: PREDICTABLE_UUID.into(),
            macs: Vec::new(),
            disks: vec![copy_to(DiskTarget::File("/tmp/x.img".into()))],
            nvram: None,
        };
        assert!(matches!(
            domain_xml::rewrite(&xml, &plan.edits("clonetest")),
            Err(XmlError::UnsupportedDiskEdit { index: 0, .. })
        ));
    }
}

/// clone-disk-noexist.xml: a NIC without a MAC gets one, the other's clashing
/// MAC is replaced, the block disk is copied.
#[test]
fn interfaces_without_a_mac_get_one() {
    let xml = read("tests/data/cli/virtclone/clone-disk-noexist.xml");
    let info = domain_xml::parse(&xml).unwrap();
    let macs: Vec<Option<&str>> = info.interfaces.iter().map(|i| i.mac.as_deref()).collect();
    assert_eq!(macs, [None, Some("22:11:11:11:11:11")]);
    assert_eq!(info.disks.len(), 1);
    assert!(!info.disks[0].is_shared());
    let plan = Plan {
        uuid: PREDICTABLE_UUID.into(),
        genid: PREDICTABLE_UUID.into(),
        macs: new_macs(2),
        disks: vec![copy_to(DiskTarget::Block(naming::disk_clone_path(
            Path::new("/virtinst-testsuite-fail-pool-install/fooey"),
            &info.name,
            "clonetest",
            None,
            |_| false,
        )))],
        nvram: None,
    };
    let out = domain_xml::rewrite(&xml, &plan.edits("clonetest")).unwrap();
    let got = domain_xml::parse(&out).unwrap();
    let got_macs: Vec<Option<String>> = got.interfaces.into_iter().map(|i| i.mac).collect();
    assert_eq!(
        got_macs,
        plan.macs.into_iter().map(Some).collect::<Vec<_>>()
    );
    assert_eq!(
        got.disks[0].source,
        DiskSource::Block("/virtinst-testsuite-fail-pool-install/fooey-clonetest".into())
    );
}
