//! Tests of the domain XML layer on realistic libvirt XML: a virt-manager
//! made q35 UEFI VM with TPM, guest agent, SPICE, genid and sysinfo, and a
//! hand-edited one with an awkward name, CDATA, comments and odd disks.
//!
//! Rewrite tests build the expected output from the input by exact textual
//! edits, so everything else is proven byte-identical.

use std::path::{Path, PathBuf};

use super::*;

#[path = "../../tests/common/test_driver.rs"]
mod test_driver;
use test_driver::{define_in_test_driver, Definition};

const WEB01: &str = include_str!("testdata/web01-q35-uefi.xml");
const ODD: &str = include_str!("testdata/odd-name.xml");
const ODD_NAME: &str = r#"a&b <"x'>"#;
const NEW_UUID: &str = "11111111-2222-4333-8444-555555555555";
const NEW_GENID: &str = "99999999-8888-4777-8666-555555555555";

/// Replaces exactly one occurrence, so a typo in a test cannot pass silently.
fn replace_once(s: &mut String, from: &str, to: &str) {
    assert_eq!(s.matches(from).count(), 1, "expected exactly one {from:?}");
    *s = s.replacen(from, to, 1);
}

/// The text of the first `<tag>...</tag>` in `xml`.
fn element_text<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).expect("element present") + open.len();
    let end = start + xml[start..].find('<').expect("closing tag");
    &xml[start..end]
}

fn macs(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("52:54:00:aa:bb:{i:02x}")).collect()
}

fn plain_edits<'a>(
    name: &'a str,
    macs: &'a [String],
    disks: &'a [Option<NewDisk>],
) -> CloneEdits<'a> {
    CloneEdits {
        new_name: name,
        new_uuid: NEW_UUID,
        new_genid: NEW_GENID,
        macs,
        disks,
        nvram: None,
        vcpus: None,
        memory_kib: None,
    }
}

#[test]
fn parses_a_virt_manager_q35_uefi_vm() {
    let info = parse(WEB01).unwrap();
    assert_eq!(info.name, "web01");
    assert_eq!(info.uuid, "6b3c2a4e-8f3d-4c1e-9a7b-2f5d8e9c1a3b");
    assert_eq!(info.vcpus, 4);
    assert_eq!(info.memory_kib, 4_194_304);
    assert_eq!(
        info.nvram.as_deref(),
        Some("/var/lib/libvirt/qemu/nvram/web01_VARS.fd")
    );
    assert!(info.tpm_emulator);
    assert!(info.is_template);
    assert_eq!(
        info.disks,
        vec![
            Disk {
                device: "disk".into(),
                source: DiskSource::File("/var/lib/libvirt/images/web01.qcow2".into()),
                readonly: false,
                shareable: false,
                transient_share_backing: false,
                driver_type: Some("qcow2".into()),
                target_dev: Some("vda".into()),
            },
            Disk {
                device: "disk".into(),
                source: DiskSource::Volume {
                    pool: "default".into(),
                    volume: "data.raw".into()
                },
                readonly: false,
                shareable: false,
                transient_share_backing: false,
                driver_type: Some("raw".into()),
                target_dev: Some("vdb".into()),
            },
            Disk {
                device: "cdrom".into(),
                source: DiskSource::File(
                    "/var/lib/libvirt/images/debian-12.5.0-amd64-netinst.iso".into()
                ),
                readonly: true,
                shareable: false,
                transient_share_backing: false,
                driver_type: Some("raw".into()),
                target_dev: Some("sda".into()),
            },
        ]
    );
    let shared: Vec<bool> = info.disks.iter().map(Disk::is_shared).collect();
    assert_eq!(shared, [false, false, true]);
    let macs: Vec<Option<&str>> = info.interfaces.iter().map(|i| i.mac.as_deref()).collect();
    assert_eq!(macs, [Some("52:54:00:6a:1b:2c"), None]);
    assert_eq!(info.interfaces[0].kind, "network");
    assert_eq!(info.interfaces[0].source.as_deref(), Some("default"));
    assert_eq!(info.interfaces[0].model.as_deref(), Some("virtio"));
    assert!(info.uefi && info.has_tpm && info.tpm_emulator);
}

#[test]
fn parses_odd_names_disks_and_the_nvram_source_form() {
    let info = parse(ODD).unwrap();
    assert_eq!(info.name, ODD_NAME);
    assert_eq!(info.uuid, "0F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0");
    assert_eq!(info.vcpus, 2);
    assert_eq!(info.memory_kib, 2 * 1024 * 1024);
    assert_eq!(
        info.nvram.as_deref(),
        Some(r#"/var/lib/libvirt/qemu/nvram/a&b <"x'>_VARS.fd"#)
    );
    assert!(!info.tpm_emulator, "a passthrough TPM has no swtpm state");
    assert!(info.is_template, "any prefix bound to our namespace counts");
    let sources: Vec<&DiskSource> = info.disks.iter().map(|d| &d.source).collect();
    assert_eq!(
        sources,
        [
            &DiskSource::File(PathBuf::from(r#"/srv/vm/a&b <"x'>.qcow2"#)),
            &DiskSource::Block("/dev/vg0/odd-data".into()),
            &DiskSource::File("/srv/vm/boot.img".into()),
            &DiskSource::Network {
                protocol: "rbd".into()
            },
            &DiskSource::File("/srv/vm/scratch.img".into()),
        ]
    );
    let shared: Vec<bool> = info.disks.iter().map(Disk::is_shared).collect();
    // shareable, floppy and transient-with-shared-backing disks stay shared;
    // a network disk is not shared (and not copyable: the engine refuses it).
    assert_eq!(shared, [false, true, true, false, true]);
    assert!(info.interfaces.iter().all(|i| i.mac.is_none()));
    assert_eq!(info.interfaces.len(), 2);
    assert!(
        info.has_tpm && !info.tpm_emulator,
        "a passthrough TPM is a TPM"
    );
}

#[test]
fn shared_disks_follow_the_issue_rules() {
    let disk = |device: &str, source: DiskSource| Disk {
        device: device.into(),
        source,
        readonly: false,
        shareable: false,
        transient_share_backing: false,
        driver_type: None,
        target_dev: None,
    };
    let file = || DiskSource::File("/i/x.img".into());
    assert!(!disk("disk", file()).is_shared());
    assert!(!disk("lun", DiskSource::Block("/dev/sdb".into())).is_shared());
    assert!(disk("cdrom", file()).is_shared());
    assert!(disk("floppy", file()).is_shared());
    assert!(disk("disk", DiskSource::Empty).is_shared());
    assert!(Disk {
        readonly: true,
        ..disk("disk", file())
    }
    .is_shared());
    assert!(Disk {
        shareable: true,
        ..disk("disk", file())
    }
    .is_shared());
}

#[test]
fn template_marker_is_found_by_namespace_not_by_prefix() {
    let with_meta = |meta: &str| {
        format!(
            "<domain type='kvm'><name>t</name><uuid>{NEW_UUID}</uuid><memory>1024</memory>\
             <metadata>{meta}</metadata></domain>"
        )
    };
    let is_template = |meta: &str| parse(&with_meta(meta)).unwrap().is_template;
    assert!(is_template(
        "<vmclone:template xmlns:vmclone='https://vmclone.org/xmlns/vmclone/1'/>"
    ));
    assert!(is_template(
        "<template xmlns='https://vmclone.org/xmlns/vmclone/1'></template>"
    ));
    assert!(!is_template(
        "<vmclone:template xmlns:vmclone='https://example.org/other'/>"
    ));
    assert!(!is_template("<template/>"));
    assert!(!is_template(
        "<vmclone:other xmlns:vmclone='https://vmclone.org/xmlns/vmclone/1'/>"
    ));
    // Only a direct child of <metadata> counts.
    assert!(!is_template(
        "<x:wrap xmlns:x='urn:x'><vmclone:template xmlns:vmclone='https://vmclone.org/xmlns/vmclone/1'/></x:wrap>"
    ));
}

#[test]
fn parse_refuses_what_is_not_a_domain_xml() {
    let err = |xml: &str| parse(xml).unwrap_err();
    assert!(
        matches!(err("<network><name>x</name></network>"), XmlError::NotADomain(n) if n == "network")
    );
    assert!(matches!(
        err("<domain><name>x</name>"),
        XmlError::Malformed { .. }
    ));
    assert!(matches!(
        err("<domain><name>x</nam></domain>"),
        XmlError::Malformed { .. }
    ));
    assert!(matches!(
        err("<domain type='a' type='b'/>"),
        XmlError::Malformed { .. }
    ));
    assert!(matches!(
        err("<domain><name>&bogus;</name></domain>"),
        XmlError::Malformed { .. }
    ));
    assert!(matches!(err(""), XmlError::Malformed { .. }));
    let base = |inner: &str| format!("<domain>{inner}</domain>");
    assert!(matches!(
        err(&base("<uuid>u</uuid><memory>1</memory>")),
        XmlError::Missing("name")
    ));
    assert!(matches!(
        err(&base("<name>n</name><memory>1</memory>")),
        XmlError::Missing("uuid")
    ));
    assert!(matches!(
        err(&base("<name>n</name><uuid>u</uuid>")),
        XmlError::Missing("memory")
    ));
    assert!(matches!(
        err(&base(
            "<name>n</name><uuid>u</uuid><memory>1</memory><vcpu>many</vcpu>"
        )),
        XmlError::InvalidValue {
            element: "vcpu",
            ..
        }
    ));
    assert!(matches!(
        err(&base(
            "<name>n</name><uuid>u</uuid><memory unit='parsec'>1</memory>"
        )),
        XmlError::InvalidValue {
            element: "memory",
            ..
        }
    ));
    let msg = err("<domain><name>x</nam></domain>").to_string();
    assert!(
        msg.starts_with("The domain XML is not well-formed (near byte"),
        "{msg}"
    );
}

/// The full clone of the virt-manager VM, compared byte for byte with the
/// input plus exactly the intended changes.
#[test]
fn rewrite_of_a_virt_manager_vm_changes_exactly_the_clone_rules() {
    let macs = vec![
        "52:54:00:01:02:03".to_string(),
        "52:54:00:04:05:06".to_string(),
    ];
    let disks = vec![
        Some(NewDisk {
            target: DiskTarget::File("/var/lib/libvirt/images/web02.qcow2".into()),
            driver_type: Some("qcow2".into()),
            overlay: true,
        }),
        Some(NewDisk {
            target: DiskTarget::Volume {
                pool: "default".into(),
                volume: "data-web02.raw".into(),
            },
            driver_type: None,
            overlay: false,
        }),
        None,
    ];
    let nvram = Path::new("/var/lib/libvirt/qemu/nvram/web02_VARS.fd");
    let edits = CloneEdits {
        nvram: Some(nvram),
        ..plain_edits("web02", &macs, &disks)
    };
    let out = rewrite(WEB01, &edits).unwrap();

    assert_eq!(element_text(&out, "genid"), NEW_GENID);

    let mut want = WEB01.to_string();
    let r = |w: &mut String, a: &str, b: &str| replace_once(w, a, b);
    r(
        &mut want,
        "<domain type='kvm' id='7' xmlns:qemu",
        "<domain type='kvm' xmlns:qemu",
    );
    r(&mut want, "<name>web01</name>", "<name>web02</name>");
    r(
        &mut want,
        "<uuid>6b3c2a4e-8f3d-4c1e-9a7b-2f5d8e9c1a3b</uuid>",
        &format!("<uuid>{NEW_UUID}</uuid>"),
    );
    r(&mut want, "a5a8e1d4-0c5b-4e7d-9f57-7d1e4a5c2b11", NEW_GENID);
    r(&mut want, "  <title>Web server 01</title>\n", "");
    r(
        &mut want,
        "    <vmclone:template xmlns:vmclone=\"https://vmclone.org/xmlns/vmclone/1\"/>\n",
        "",
    );
    r(
        &mut want,
        "'serial'>6B3C2A4E-8F3D-4C1E-9A7B-2F5D8E9C1A3B<",
        &format!("'serial'>{NEW_UUID}<"),
    );
    r(
        &mut want,
        "'uuid'>6b3c2a4e-8f3d-4c1e-9a7b-2f5d8e9c1a3b<",
        &format!("'uuid'>{NEW_UUID}<"),
    );
    r(
        &mut want,
        ">/var/lib/libvirt/qemu/nvram/web01_VARS.fd<",
        ">/var/lib/libvirt/qemu/nvram/web02_VARS.fd<",
    );
    r(
        &mut want,
        "<source file='/var/lib/libvirt/images/web01.qcow2'/>\n      <backingStore/>",
        "<source file='/var/lib/libvirt/images/web02.qcow2'/>",
    );
    r(
        &mut want,
        "<source pool='default' volume='data.raw'/>",
        "<source pool='default' volume='data-web02.raw'/>",
    );
    r(
        &mut want,
        "<mac address='52:54:00:6a:1b:2c'/>",
        "<mac address='52:54:00:01:02:03'/>",
    );
    r(&mut want, "      <target dev='vnet3'/>\n", "");
    r(
        &mut want,
        "<source bridge='br0'/>\n      <model type='virtio'/>\n    </interface>",
        "<source bridge='br0'/>\n      <model type='virtio'/>\n      <mac address='52:54:00:04:05:06'/>\n    </interface>",
    );
    r(
        &mut want,
        "/var/log/libvirt/qemu/web01-serial0.log",
        "/var/log/libvirt/qemu/web02-serial0.log",
    );
    r(
        &mut want,
        "<source path='/var/log/web01.console'/>",
        "<source path='/var/log/web02.console'/>",
    );
    r(
        &mut want,
        "<source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-7-web01/org.qemu.guest_agent.0'/>",
        "<source mode='bind'/>",
    );
    r(
        &mut want,
        "/srv/sockets/web01-app.sock",
        "/srv/sockets/web02-app.sock",
    );
    r(
        &mut want,
        "<graphics type='spice' port='5901' tlsPort='5902' autoport='no'>",
        "<graphics type='spice' port='-1' tlsPort='-1' autoport='yes'>",
    );
    r(
        &mut want,
        "<graphics type='vnc' port='5910' autoport='no' websocket='5710' listen='127.0.0.1'>",
        "<graphics type='vnc' port='-1' autoport='yes' websocket='-1' listen='127.0.0.1'>",
    );
    r(
        &mut want,
        "<cid auto='no' address='3'/>",
        "<cid auto='yes'/>",
    );
    assert_eq!(out, want);

    // And the result reads back as the clone.
    let info = parse(&out).unwrap();
    assert_eq!(info.name, "web02");
    assert_eq!(info.uuid, NEW_UUID);
    assert!(!info.is_template, "a clone of a template is a normal VM");
    assert_eq!(
        info.nvram.as_deref(),
        Some("/var/lib/libvirt/qemu/nvram/web02_VARS.fd")
    );
    let got_macs: Vec<Option<String>> = info.interfaces.into_iter().map(|i| i.mac).collect();
    assert_eq!(got_macs, macs.into_iter().map(Some).collect::<Vec<_>>());
}

#[test]
fn rewrite_keeps_odd_names_comments_cdata_and_quotes() {
    let new_name = r#"b&a <'y"> ☃"#;
    let macs = macs(2);
    let disks = vec![
        Some(NewDisk {
            target: DiskTarget::Block(r#"/dev/vg0/b&a <'y"> ☃"#.into()),
            driver_type: Some("qcow2".into()),
            overlay: true,
        }),
        None,
        None,
        None,
        None,
    ];
    let nvram = PathBuf::from(r#"/var/lib/libvirt/qemu/nvram/b&a <'y"> ☃_VARS.fd"#);
    let edits = CloneEdits {
        nvram: Some(&nvram),
        ..plain_edits(new_name, &macs, &disks)
    };
    let out = rewrite(ODD, &edits).unwrap();

    let mut want = ODD.to_string();
    let r = |w: &mut String, a: &str, b: &str| replace_once(w, a, b);
    r(
        &mut want,
        "<name>a&amp;b &lt;\"x'&gt;</name>",
        "<name>b&amp;a &lt;'y\"&gt; ☃</name>",
    );
    r(
        &mut want,
        "<uuid>0F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0</uuid>",
        &format!("<uuid>{NEW_UUID}</uuid>"),
    );
    r(&mut want, "  <title>a&amp;b</title>\n", "");
    // Only our template was in <metadata>: it goes entirely.
    r(
        &mut want,
        "  <metadata>\n    <tpl:template xmlns:tpl=\"https://vmclone.org/xmlns/vmclone/1\"></tpl:template>\n  </metadata>\n",
        "",
    );
    r(
        &mut want,
        "<source file=\"/var/lib/libvirt/qemu/nvram/a&amp;b &lt;&quot;x&apos;&gt;_VARS.fd\"/>",
        "<source file=\"/var/lib/libvirt/qemu/nvram/b&amp;a &lt;'y&quot;> ☃_VARS.fd\"/>",
    );
    r(
        &mut want,
        "    <disk type=\"file\" device=\"disk\">\n      <source file=\"/srv/vm/a&amp;b &lt;&quot;x&apos;&gt;.qcow2\" index=\"2\"/>\n      <backingStore type=\"file\" index=\"3\">\n        <format type=\"raw\"/>\n        <source file=\"/srv/vm/base.raw\"/>\n        <backingStore/>\n      </backingStore>\n      <target dev=\"vda\" bus=\"virtio\"/>\n    </disk>",
        "    <disk type=\"block\" device=\"disk\">\n      <source index=\"2\" dev=\"/dev/vg0/b&amp;a &lt;'y&quot;> ☃\"/>\n      <target dev=\"vda\" bus=\"virtio\"/>\n      <driver name=\"qemu\" type=\"qcow2\"/>\n    </disk>",
    );
    r(
        &mut want,
        "<interface type=\"user\"/>",
        "<interface type=\"user\"><mac address=\"52:54:00:aa:bb:00\"/></interface>",
    );
    r(
        &mut want,
        "<model type=\"e1000\"/></interface>",
        "<model type=\"e1000\"/><mac address=\"52:54:00:aa:bb:01\"/></interface>",
    );
    r(
        &mut want,
        "<source path=\"/var/log/a&amp;b &lt;&quot;x&apos;&gt;.log\"/>",
        "<source path=\"/var/log/b&amp;a &lt;'y&quot;> ☃.log\"/>",
    );
    assert_eq!(out, want);

    let info = parse(&out).unwrap();
    assert_eq!(info.name, new_name, "the name round-trips");
    assert_eq!(info.nvram.as_deref(), nvram.to_str());
    assert_eq!(
        info.disks[0].source,
        DiskSource::Block(r#"/dev/vg0/b&a <'y"> ☃"#.into())
    );
    assert_eq!(info.disks[0].driver_type.as_deref(), Some("qcow2"));
    assert!(out.contains("<genid/>"), "an empty genid stays empty");
    assert!(out.contains("<![CDATA[Raw <text> & \"quotes\" stay]]>"));
}

#[test]
fn the_awkward_name_round_trips_through_rewrite() {
    let out = rewrite(WEB01, &plain_edits(ODD_NAME, &macs(2), &[None, None, None])).unwrap();
    assert_eq!(parse(&out).unwrap().name, ODD_NAME);
    assert!(out.contains("<name>a&amp;b &lt;\"x'&gt;</name>"));
}

#[test]
fn vcpus_and_memory_change_with_a_consistent_topology() {
    let macs = macs(2);
    let disks = [None, None, None];
    let with = |vcpus, memory_kib| {
        rewrite(
            WEB01,
            &CloneEdits {
                vcpus,
                memory_kib,
                ..plain_edits("web02", &macs, &disks)
            },
        )
        .unwrap()
    };

    // The new count is the current count too: all vCPUs are online.
    let out = with(Some(8), Some(8_388_608));
    assert!(out.contains("<vcpu placement='static'>8</vcpu>"));
    assert!(out.contains("<topology sockets='8' dies='1' cores='1' threads='1'/>"));
    assert!(out.contains("<memory unit='KiB'>8388608</memory>"));
    assert!(out.contains("<currentMemory unit='KiB'>8388608</currentMemory>"));
    let info = parse(&out).unwrap();
    assert_eq!((info.vcpus, info.memory_kib), (8, 8_388_608));

    let out = with(Some(1), None);
    assert!(out.contains("<vcpu placement='static'>1</vcpu>"));
    assert!(out.contains("<topology sockets='1' dies='1' cores='1' threads='1'/>"));
    assert!(out.contains("<memory unit='KiB'>4194304</memory>"));
    assert!(out.contains("<currentMemory unit='KiB'>2097152</currentMemory>"));

    // A topology that still fits is left alone.
    let out = with(Some(4), None);
    assert!(out.contains("<topology sockets='1' dies='1' cores='2' threads='2'/>"));

    // Other units become KiB.
    let out = rewrite(
        ODD,
        &CloneEdits {
            memory_kib: Some(1_048_576),
            vcpus: Some(2),
            ..plain_edits("x", &macs, &[None, None, None, None, None])
        },
    )
    .unwrap();
    assert!(out.contains("<memory unit=\"KiB\">1048576</memory>"));
    assert!(out.contains("<topology sockets=\"1\" cores=\"2\" threads=\"1\"/>"));
}

#[test]
fn per_vcpu_settings_go_when_the_count_changes() {
    let xml = format!(
        "<domain type='kvm'>\n  <name>v</name>\n  <uuid>{NEW_UUID}</uuid>\n  <memory>1048576</memory>\n  \
         <vcpu current='2'>2</vcpu>\n  <vcpus>\n    <vcpu id='0' enabled='yes' hotpluggable='no'/>\n    \
         <vcpu id='1' enabled='yes' hotpluggable='yes'/>\n  </vcpus>\n</domain>\n"
    );
    let edits = |vcpus| CloneEdits {
        vcpus,
        ..plain_edits("w", &[], &[])
    };
    let out = rewrite(&xml, &edits(Some(4))).unwrap();
    assert!(!out.contains("<vcpus>"), "{out}");
    assert!(out.contains("  <vcpu>4</vcpu>\n</domain>"), "{out}");
    let out = rewrite(&xml, &edits(Some(2))).unwrap();
    assert!(out.contains("<vcpus>"));
}

/// Found by fuzzing (fuzz/, README "Reliability"): vcpus asked of a VM whose
/// XML has no `<vcpu>` were silently dropped (the clone kept one vcpu, and a
/// `<topology>` was rewritten for a count nothing carried).
#[test]
fn vcpus_for_a_domain_without_vcpu_are_refused_not_ignored() {
    let xml = format!(
        "<domain type='kvm'><name>v</name><uuid>{NEW_UUID}</uuid><memory>1024</memory>\
         <cpu><topology sockets='1' cores='1' threads='1'/></cpu></domain>"
    );
    let edits = |vcpus| CloneEdits {
        vcpus,
        ..plain_edits("w", &[], &[])
    };
    let err = rewrite(&xml, &edits(Some(4))).unwrap_err();
    assert!(matches!(err, XmlError::Missing("vcpu")), "{err}");
    assert_eq!(err.to_string(), "The domain XML has no <vcpu> element");
    assert!(rewrite(&xml, &edits(None)).is_ok());
}

/// Found by fuzzing: quick-xml lets through much that is not XML, and the
/// rewrite copied it into the clone's XML, which libvirt then refused. Each
/// of these is now refused before anything is written.
#[test]
fn rewrite_refuses_what_is_not_well_formed_xml() {
    let doc = |before: &str, inside: &str, after: &str| {
        format!(
            "{before}<domain><name>v</name><uuid>{NEW_UUID}</uuid><memory>1</memory>\
             {inside}</domain>{after}"
        )
    };
    let malformed = [
        doc("junk", "", ""),
        doc("", "", "junk"),
        doc("<![CDATA[x]]>", "", ""),
        doc("", "", "<domain/>"),
        doc("", "<description>\u{1}</description>", ""),
        doc("", "<description>\u{fffe}</description>", ""),
        doc("", "<description>&#0;</description>", ""),
        doc("", "<x a='<'/>", ""),
        doc("", "<x a='&#1;'/>", ""),
        doc("", "<x a='1'b='2'/>", ""),
        doc("", "<1x/>", ""),
        doc("", "<x:y/>", ""),
        doc("", "<y x:a='1'/>", ""),
        doc("", "<!-- a -- b -->", ""),
        doc("", "<description>&undefined;</description>", ""),
        doc("", "<description>a]]>b</description>", ""),
        doc("<!--c--><?xml version='1.0'?>", "", ""),
        doc("", "<!DOCTYPE d>", ""),
        doc(
            "<!DOCTYPE d [<!ENTITY e 'x'>]>",
            "<description>&e;</description>",
            "",
        ),
    ];
    for xml in &malformed {
        let err = rewrite(xml, &plain_edits("w", &[], &[])).unwrap_err();
        assert!(matches!(err, XmlError::Malformed { .. }), "{xml}: {err}");
    }
    let err = rewrite(&doc("junk", "", ""), &plain_edits("w", &[], &[])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("The domain XML is not well-formed (near byte 0):"),
        "{err}"
    );
    // What XML allows still passes.
    let fine = doc(
        "<?xml version='1.0' encoding='UTF-8'?>\n<!-- c -->\n",
        "<description>&#x2603; &amp; <![CDATA[<&>]]></description><?pi x?>\
         <ü:x xmlns:ü='urn:u' ü:a='&quot;'/>",
        "\n<!-- after -->\n",
    );
    rewrite(&fine, &plain_edits("w", &[], &[])).unwrap();
}

/// Found by fuzzing: quick-xml trims the whitespace of `</disk  >`, and the
/// rewrite wrote such end tags as `</disk>`.
#[test]
fn end_tags_keep_their_whitespace() {
    let xml = format!(
        "<domain><name>v</name ><uuid>{NEW_UUID}</uuid\n><memory>1</memory><devices>\
         <disk type='file'><target dev='vda'/></disk   \n ><interface type='user'></interface\t>\
         </devices></domain >"
    );
    let out = rewrite(&xml, &plain_edits("w", &macs(1), &[None])).unwrap();
    let want = xml.replace("<name>v</name >", "<name>w</name >").replace(
        "</interface\t>",
        "<mac address='52:54:00:aa:bb:00'/></interface\t>",
    );
    assert_eq!(out, want);
}

/// Found by fuzzing: with a byte order mark in front, quick-xml's positions
/// are 3 bytes off, so end tags were written from the wrong bytes
/// (`</0</currentMem>`); and the mark itself was dropped.
#[test]
fn a_byte_order_mark_is_kept_and_shifts_nothing() {
    let xml = format!(
        "\u{feff}<domain><name>v</name><uuid>{NEW_UUID}</uuid><memory>1</memory></domain>\n"
    );
    let out = rewrite(&xml, &plain_edits("w", &[], &[])).unwrap();
    assert_eq!(out, xml.replace("<name>v<", "<name>w<"));
}

/// Found by fuzzing: a file already named after the clone was "renamed" to
/// itself on a second rewrite and its attribute written anew, with other
/// escapes (`&quot;` became `"`): a rewrite of a rewrite changed bytes.
#[test]
fn a_file_named_after_the_clone_is_left_as_written() {
    let xml = format!(
        "<domain><name>web01</name><uuid>{NEW_UUID}</uuid><memory>1</memory><devices>\
         <serial type='file'><source path='/var/log/{}.log'/></serial></devices></domain>",
        "a&amp;b &lt;&quot;x&apos;&gt;"
    );
    let edits = plain_edits(ODD_NAME, &[], &[]);
    let once = rewrite(&xml, &edits).unwrap();
    assert!(
        once.contains("path='/var/log/a&amp;b &lt;&quot;x&apos;&gt;.log'"),
        "{once}"
    );
    assert_eq!(rewrite(&once, &edits).unwrap(), once);
}

/// Found by fuzzing: the strict reader checks the form of an XML declaration
/// but not its values, so `version="1. x"` or `standalone='maybe'` (which
/// libxml2 refuses) went through, and so would an encoding other than the
/// UTF-8 the XML is in.
#[test]
fn rewrite_refuses_a_bad_xml_declaration() {
    let with = |decl: &str| {
        let xml = format!(
            "{decl}\n<domain><name>v</name><uuid>{NEW_UUID}</uuid><memory>1</memory></domain>"
        );
        rewrite(&xml, &plain_edits("w", &[], &[]))
    };
    for bad in [
        r#"<?xml version="1. current='1'0"?>"#,
        "<?xml version='2.0'?>",
        "<?xml version='1.0' standalone='maybe'?>",
        "<?xml version='1.0' encoding='ISO-8859-1'?>",
    ] {
        let err = with(bad).unwrap_err();
        assert!(
            matches!(err, XmlError::Malformed { position: 0, .. }),
            "{bad}: {err}"
        );
    }
    for good in [
        "<?xml version='1.0'?>",
        "<?xml version=\"1.1\" encoding=\"utf-8\" standalone=\"no\" ?>",
        "\u{feff}<?xml version = '1.0' encoding = 'UTF-8'?>",
        "<?xml-stylesheet href='x'?>",
    ] {
        with(good).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

/// Found by fuzzing: quick-xml splits `&quot;  ` into a reference and a
/// whitespace-only text, which the rewrite took for indentation: it went with
/// a dropped element, and an added `<mac>` went in front of it.
#[test]
fn whitespace_after_a_reference_stays_with_its_text() {
    let xml = format!(
        "<domain><name>v</name><uuid>{NEW_UUID}</uuid><memory>1</memory>&quot;  <title>t</title>\
         <devices><interface type='user'>&amp;  </interface></devices></domain>"
    );
    let out = rewrite(&xml, &plain_edits("w", &macs(1), &[])).unwrap();
    let want = xml
        .replace("<name>v<", "<name>w<")
        .replace("<title>t</title>", "")
        .replace("&amp;  </", "&amp;  <mac address='52:54:00:aa:bb:00'/></");
    assert_eq!(out, want);
}

#[test]
fn metadata_of_other_tools_is_kept_and_ours_dropped() {
    let xml = format!(
        "<domain type='kvm'>\n  <name>v</name>\n  <uuid>{NEW_UUID}</uuid>\n  <metadata>\n    \
         <template xmlns=\"https://vmclone.org/xmlns/vmclone/1\"/>\n    \
         <app:info xmlns:app=\"urn:example:app\" owner=\"x\">keep &amp; me</app:info>\n  </metadata>\n  \
         <memory>1024</memory>\n</domain>"
    );
    let out = rewrite(&xml, &plain_edits("w", &[], &[])).unwrap();
    let want = xml.replace("<name>v</name>", "<name>w</name>").replace(
        "    <template xmlns=\"https://vmclone.org/xmlns/vmclone/1\"/>\n",
        "",
    );
    assert_eq!(out, want);
}

#[test]
fn sysinfo_values_are_replaced_only_when_they_are_the_old_uuid() {
    let old = "0a0b0c0d-1111-4222-8333-444455556666";
    let xml = format!(
        "<domain><name>v</name><uuid>{old}</uuid><memory>1</memory>\
         <sysinfo type='fwcfg'><entry name='opt/a'> {} </entry><entry name='opt/b'>uuid={old}</entry>\
         <entry name='opt/c' file='/x'/></sysinfo>\
         <sysinfo type='smbios'><bios><entry name='vendor'>{old}</entry></bios></sysinfo></domain>",
        old.to_uppercase()
    );
    let out = rewrite(&xml, &plain_edits("w", &[], &[])).unwrap();
    assert!(
        out.contains(&format!("<entry name='opt/a'>{NEW_UUID}</entry>")),
        "{out}"
    );
    assert!(out.contains(&format!("<entry name='opt/b'>uuid={old}</entry>")));
    assert!(out.contains("<entry name='opt/c' file='/x'/>"));
    assert!(out.contains(&format!(
        "<bios><entry name='vendor'>{NEW_UUID}</entry></bios>"
    )));
}

#[test]
fn automatic_graphics_ports_are_left_as_they_are() {
    let xml = format!(
        "<domain><name>v</name><uuid>{NEW_UUID}</uuid><memory>1</memory><devices>\
         <graphics type='vnc' port='-1' autoport='yes'/>\
         <graphics type='spice' autoport='yes'><listen type='address'/></graphics>\
         <graphics type='vnc' socket='/run/v.sock'/>\
         <graphics type=\"vnc\" port=\"5900\"/></devices></domain>"
    );
    let out = rewrite(&xml, &plain_edits("w", &[], &[])).unwrap();
    assert!(out.contains("<graphics type='vnc' port='-1' autoport='yes'/>"));
    assert!(
        out.contains("<graphics type='spice' autoport='yes'><listen type='address'/></graphics>")
    );
    assert!(out.contains("<graphics type='vnc' socket='/run/v.sock'/>"));
    // Added attributes take the tag's own quote style.
    assert!(
        out.contains("<graphics type=\"vnc\" port=\"-1\" autoport=\"yes\"/>"),
        "{out}"
    );
}

#[test]
fn a_fixed_vsock_cid_becomes_automatic() {
    let xml = |cid: &str| {
        format!(
            "<domain><name>v</name><uuid>{NEW_UUID}</uuid><memory>1</memory><devices>\
             <vsock model='virtio'>{cid}</vsock></devices></domain>"
        )
    };
    let out = rewrite(
        &xml("<cid auto='no' address='3'/>"),
        &plain_edits("w", &[], &[]),
    )
    .unwrap();
    assert!(
        out.contains("<vsock model='virtio'><cid auto='yes'/></vsock>"),
        "{out}"
    );
    let out = rewrite(&xml("<cid address='7'/>"), &plain_edits("w", &[], &[])).unwrap();
    assert!(out.contains("<cid auto='yes'/>"), "{out}");
    let out = rewrite(&xml("<cid auto='yes'/>"), &plain_edits("w", &[], &[])).unwrap();
    assert!(out.contains("<cid auto='yes'/>"), "{out}");
}

#[test]
fn only_generated_channel_sockets_lose_their_path() {
    let xml = format!(
        "<domain><name>web01</name><uuid>{NEW_UUID}</uuid><memory>1</memory><devices>\
         <channel type='unix'><source mode='bind' path='/run/libvirt/qemu/channel/3-web01/org.qemu.guest_agent.0'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\
         <channel type='unix'><source mode='bind' path='/home/u/.config/libvirt/qemu/lib/domain-12-web01/org.qemu.guest_agent.0'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\
         <channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channel/target/web01.org.qemu.guest_agent.0'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\
         <channel type='unix'><source mode='connect' path='/srv/shared.sock'/><target type='virtio' name='x'/></channel>\
         <serial type='unix'><source mode='bind' path='/run/libvirt/qemu/channel/3-web01/serial'/></serial>\
         <serial type='unix'><source mode='connect' path='/tmp/web01.sock'/></serial>\
         <serial type='tcp'><source mode='bind' host='0.0.0.0' service='web01'/></serial>\
         <parallel type='file'><source path='/tmp/foo.log'/></parallel>\
         </devices></domain>"
    );
    let out = rewrite(&xml, &plain_edits("web02", &[], &[])).unwrap();
    assert_eq!(out.matches("<source mode='bind'/>").count(), 3, "{out}");
    assert!(out.contains("path='/srv/shared.sock'"));
    // libvirt requires a path on serial sockets: renamed, never dropped.
    assert!(out.contains("path='/run/libvirt/qemu/channel/3-web01/serial'"));
    assert!(out.contains("path='/tmp/web02.sock'"));
    assert!(out.contains("service='web01'"));
    assert!(out.contains("path='/tmp/foo.log'"));
}

#[test]
fn disk_kinds_can_change_between_file_block_and_volume() {
    let xml = format!(
        "<domain><name>v</name><uuid>{NEW_UUID}</uuid><memory>1</memory><devices>\
         <disk type='volume' device='disk'><source pool='iscsi' volume='unit:0:0:1' mode='host'/><target dev='sda'/></disk>\
         <disk type='volume' device='disk'><source pool='p' volume='a' mode='host'/></disk>\
         <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/i/a.raw'/></disk>\
         <disk type='file' device='cdrom'><target dev='hdc'/></disk>\
         </devices></domain>"
    );
    let disks = [
        Some(NewDisk {
            target: DiskTarget::File("/i/v.raw".into()),
            driver_type: None,
            overlay: false,
        }),
        Some(NewDisk {
            target: DiskTarget::Volume {
                pool: "p".into(),
                volume: "b".into(),
            },
            driver_type: None,
            overlay: false,
        }),
        Some(NewDisk {
            target: DiskTarget::Volume {
                pool: "default".into(),
                volume: "v.qcow2".into(),
            },
            driver_type: Some("qcow2".into()),
            overlay: true,
        }),
        Some(NewDisk {
            target: DiskTarget::File("/i/new.iso".into()),
            driver_type: None,
            overlay: false,
        }),
    ];
    let out = rewrite(&xml, &plain_edits("w", &[], &disks)).unwrap();
    assert!(
        out.contains(
            "<disk type='file' device='disk'><source file='/i/v.raw'/><target dev='sda'/></disk>"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "<disk type='volume' device='disk'><source pool='p' volume='b' mode='host'/></disk>"
        ),
        "{out}"
    );
    assert!(out.contains("<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='default' volume='v.qcow2'/></disk>"), "{out}");
    assert!(out.contains("<disk type='file' device='cdrom'><target dev='hdc'/><source file='/i/new.iso'/></disk>"), "{out}");
}

#[test]
fn rewrite_refuses_plans_that_do_not_fit_the_vm() {
    let two = macs(2);
    let err = rewrite(WEB01, &plain_edits("w", &two[..1], &[None, None, None])).unwrap_err();
    assert!(matches!(
        err,
        XmlError::MacCount {
            expected: 2,
            given: 1
        }
    ));
    assert_eq!(
        err.to_string(),
        "The VM has 2 network interface(s) but 1 MAC address(es) were given; \
         give exactly one per interface, in interface order"
    );
    let err = rewrite(WEB01, &plain_edits("w", &two, &[None])).unwrap_err();
    assert!(matches!(
        err,
        XmlError::DiskCount {
            expected: 3,
            given: 1
        }
    ));

    let mut disks = vec![None; 5];
    disks[3] = Some(NewDisk {
        target: DiskTarget::File("/x".into()),
        driver_type: None,
        overlay: false,
    });
    let err = rewrite(ODD, &plain_edits("w", &two, &disks)).unwrap_err();
    assert!(matches!(
        err,
        XmlError::UnsupportedDiskEdit {
            index: 3,
            source_kind: "network disk"
        }
    ));

    assert!(matches!(
        rewrite("<domain><name>x</name>", &plain_edits("w", &[], &[])),
        Err(XmlError::Malformed { .. })
    ));
}

#[test]
fn a_minimal_clone_changes_only_the_fixed_rules() {
    // No disks copied, no NVRAM, no resources: the rest of the document is
    // exactly the source's, comments and all.
    let out = rewrite(
        WEB01,
        &plain_edits("web01 copy", &macs(2), &[None, None, None]),
    )
    .unwrap();
    let removed_lines = [
        "  <title>Web server 01</title>",
        "      <target dev='vnet3'/>",
        "    <vmclone:template xmlns:vmclone=\"https://vmclone.org/xmlns/vmclone/1\"/>",
    ];
    let src: Vec<&str> = WEB01
        .lines()
        .filter(|l| !removed_lines.contains(l))
        .collect();
    let got: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains("<mac address='52:54:00:aa:bb:01'/>"))
        .collect();
    assert_eq!(src.len(), got.len());
    let changed: Vec<(&str, &str)> = src
        .iter()
        .zip(&got)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (*a, *b))
        .collect();
    let changed_src: Vec<&str> = changed.iter().map(|c| c.0.trim()).collect();
    assert_eq!(
        changed_src,
        [
            "<domain type='kvm' id='7' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>",
            "<name>web01</name>",
            "<uuid>6b3c2a4e-8f3d-4c1e-9a7b-2f5d8e9c1a3b</uuid>",
            "<genid>a5a8e1d4-0c5b-4e7d-9f57-7d1e4a5c2b11</genid>",
            "<entry name='serial'>6B3C2A4E-8F3D-4C1E-9A7B-2F5D8E9C1A3B</entry>",
            "<entry name='uuid'>6b3c2a4e-8f3d-4c1e-9a7b-2f5d8e9c1a3b</entry>",
            "<mac address='52:54:00:6a:1b:2c'/>",
            "<log file='/var/log/libvirt/qemu/web01-serial0.log' append='on'/>",
            "<source path='/var/log/web01.console'/>",
            "<source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-7-web01/org.qemu.guest_agent.0'/>",
            "<source mode='bind' path='/srv/sockets/web01-app.sock'/>",
            "<graphics type='spice' port='5901' tlsPort='5902' autoport='no'>",
            "<graphics type='vnc' port='5910' autoport='no' websocket='5710' listen='127.0.0.1'>",
            "<cid auto='no' address='3'/>",
        ]
    );
    // Files named after the VM follow it, spaces and all.
    assert!(!out.contains("web01-serial0.log"));
    assert!(out.contains("/var/log/libvirt/qemu/web01 copy-serial0.log"));
}

/// libvirt accepts both fixtures and their clones (with overlays, new NVRAM,
/// vcpus and memory): each is defined in the test driver inside `virsh`.
#[test]
fn libvirt_accepts_the_fixtures_and_their_clones() {
    let mut definitions = Vec::new();
    for (i, src) in [WEB01, ODD].into_iter().enumerate() {
        let info = parse(src).unwrap();
        let macs = macs(info.interfaces.len());
        let disks: Vec<Option<NewDisk>> = info
            .disks
            .iter()
            .map(|d| {
                let copyable = matches!(d.source, DiskSource::File(_) | DiskSource::Volume { .. });
                (!d.is_shared() && copyable).then(|| NewDisk {
                    target: DiskTarget::File(format!("/i/clone-{i}.qcow2").into()),
                    driver_type: Some("qcow2".into()),
                    overlay: true,
                })
            })
            .collect();
        let new_name = format!("{} clone ☃", info.name);
        let nvram = PathBuf::from(format!("/nvram/{new_name}_VARS.fd"));
        let edits = CloneEdits {
            new_uuid: &crate::ids::new_uuid(|_| false),
            nvram: Some(&nvram),
            vcpus: Some(3),
            memory_kib: Some(1_048_576),
            ..plain_edits(&new_name, &macs, &disks)
        };
        let out = rewrite(src, &edits).unwrap();
        // The source and its clone side by side; the test driver only runs domains of type 'test'.
        for (tag, name, xml) in [("src", info.name, src.to_owned()), ("clone", new_name, out)] {
            let xml = xml.replacen("<domain type='kvm'", "<domain type='test'", 1);
            let xml = xml.replacen("<domain type=\"kvm\"", "<domain type=\"test\"", 1);
            definitions.push(Definition {
                file: format!("{i}-{tag}.xml"),
                name,
                xml,
                undefine: false,
            });
        }
    }
    define_in_test_driver("domain-xml", &definitions);
}

#[test]
fn a_fixed_svirt_label_becomes_dynamic_and_a_dac_one_stays() {
    let xml = format!(
        "<domain type='kvm'>\n  <name>v</name>\n  <uuid>{NEW_UUID}</uuid>\n  <memory>1</memory>\n  \
         <seclabel type='static' model='selinux' relabel='yes'>\n    \
         <label>system_u:system_r:svirt_t:s0:c10,c20</label>\n    \
         <imagelabel>system_u:object_r:svirt_image_t:s0:c10,c20</imagelabel>\n  </seclabel>\n  \
         <seclabel type='static' model='dac' relabel='no'>\n    <label>+107:+107</label>\n  </seclabel>\n\
         </domain>\n"
    );
    let info = parse(&xml).unwrap();
    assert_eq!(info.static_seclabel.as_deref(), Some("selinux"));
    let out = rewrite(&xml, &plain_edits("w", &[], &[])).unwrap();
    let mut want = xml.replace("<name>v</name>", "<name>w</name>");
    replace_once(
        &mut want,
        "<seclabel type='static' model='selinux' relabel='yes'>\n    \
         <label>system_u:system_r:svirt_t:s0:c10,c20</label>\n    \
         <imagelabel>system_u:object_r:svirt_image_t:s0:c10,c20</imagelabel>\n  </seclabel>",
        "<seclabel type='dynamic' model='selinux'>\n  </seclabel>",
    );
    assert_eq!(out, want);
    // A clone of the clone has nothing left to change.
    assert_eq!(parse(&out).unwrap().static_seclabel, None);
}
