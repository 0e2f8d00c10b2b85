//! The app's desktop integration files pass the freedesktop validators, in
//! English and as installed with their translations merged in, and the
//! translations are complete and current.

use std::path::Path;
use std::process::Command;

use vmclone_tests::process::try_run_command;
use vmclone_tests::{workspace_root, TempDir};

/// `program ARGS…` in the repository, which must succeed; `package` provides it.
fn run(program: &str, package: &str, args: &[&str]) {
    try_run_command(
        Command::new(program)
            .args(args)
            .current_dir(workspace_root()),
    )
    .unwrap_or_else(|e| panic!("{e}\n({program} is in the Debian package {package})"));
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn desktop_file_is_valid_in_every_language() {
    let desktop = "data/org.vmclone.VmClone.desktop";
    run("desktop-file-validate", "desktop-file-utils", &[desktop]);
    let dir = TempDir::new("desktop");
    let merged = dir.path().join("org.vmclone.VmClone.desktop");
    let template = format!("--template={desktop}");
    run(
        "msgfmt",
        "gettext",
        &["--desktop", &template, "-d", "po", "-o", path(&merged)],
    );
    run(
        "desktop-file-validate",
        "desktop-file-utils",
        &[path(&merged)],
    );
    let text = std::fs::read_to_string(&merged).unwrap();
    assert!(text.contains("Name[de]=VM-Klon"), "translated: {text}");
    assert!(text.contains("Icon=org.vmclone.VmClone"));
}

#[test]
fn metainfo_is_valid_and_lists_existing_screenshots() {
    let metainfo = "data/org.vmclone.VmClone.metainfo.xml";
    run(
        "appstreamcli",
        "appstream",
        &["validate", "--no-net", metainfo],
    );
    let dir = TempDir::new("metainfo");
    let merged = dir.path().join("org.vmclone.VmClone.metainfo.xml");
    let template = format!("--template={metainfo}");
    run(
        "msgfmt",
        "gettext",
        &["--xml", &template, "-d", "po", "-o", path(&merged)],
    );
    run(
        "appstreamcli",
        "appstream",
        &["validate", "--no-net", path(&merged)],
    );

    let text = std::fs::read_to_string(workspace_root().join(metainfo)).unwrap();
    let images: Vec<&str> = text
        .split("<image>")
        .skip(1)
        .map(|s| s.split("</image>").next().unwrap())
        .collect();
    assert!(images.len() >= 3, "screenshots are listed: {images:?}");
    for url in images {
        // The URLs point into the repository: the files must exist there.
        let file = url.split("/main/").nth(1).expect("a repository URL");
        assert!(
            workspace_root().join(file).is_file(),
            "{url}: {file} is not in the repository"
        );
    }
}

#[test]
fn icons_are_svg_in_the_hicolor_layout() {
    for icon in [
        "data/icons/hicolor/scalable/apps/org.vmclone.VmClone.svg",
        "data/icons/hicolor/symbolic/apps/org.vmclone.VmClone-symbolic.svg",
    ] {
        let text = std::fs::read_to_string(workspace_root().join(icon))
            .unwrap_or_else(|e| panic!("{icon}: {e}"));
        let mut reader = quick_xml::Reader::from_str(&text);
        let root = loop {
            match reader
                .read_event()
                .unwrap_or_else(|e| panic!("{icon}: {e}"))
            {
                quick_xml::events::Event::Start(e) => break e.name().as_ref().to_string(),
                quick_xml::events::Event::Eof => panic!("{icon}: no element"),
                _ => {}
            }
        };
        assert_eq!(root, "svg", "{icon} is an SVG");
    }
}

#[test]
fn translations_are_complete_and_the_template_is_current() {
    run("sh", "dash", &["tools/update-po.sh", "--check"]);
}
