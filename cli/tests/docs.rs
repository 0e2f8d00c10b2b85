//! The man pages and shell completions that `make` writes with vmclonectl-gen:
//! the scripts load in bash and zsh and complete VM names from the real
//! service; `man -l` renders every page; `make install` puts them in place and
//! `make uninstall` removes them.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;
use vmclone_tests::{workspace_root, TempDir};

const GEN: &str = env!("CARGO_BIN_EXE_vmclonectl-gen");

/// vmclonectl-gen's output in a fresh folder.
fn generated() -> TempDir {
    let dir = TempDir::new("cli-docs");
    let status = Command::new(GEN)
        .arg(dir.path())
        .status()
        .expect("run vmclonectl-gen");
    assert!(status.success());
    dir
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (out.status.success(), stdout(&out), stderr(&out))
}

/// PATH with the built vmclonectl first, as an installed one would be.
fn path_with_ctl() -> String {
    let bin = Path::new(CTL).parent().unwrap().display().to_string();
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}

#[test]
fn bash_completion_loads_and_offers_commands_and_the_services_vm_names() {
    let docs = generated();
    let script = docs.path().join("completions/vmclonectl");
    let (ok, _, err) = run(Command::new("bash").arg("-n").arg(&script));
    assert!(ok, "bash -n: {err}");
    let demo = Demo::start();
    // What bash does on TAB: COMP_LINE up to the cursor, then the function.
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let program = format!(
            "source {script}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=({words}); \
             COMP_CWORD={cword}; complete -p vmclonectl; _vmclonectl_vms vmclonectl '{cur}' '{prev}'; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script = script.display(),
            words = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            cword = words.len() - 1,
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let (ok, out, err) = run(Command::new("bash")
            .arg("-c")
            .arg(program)
            .env("PATH", path_with_ctl()));
        assert!(ok, "{line}: {err}");
        let mut lines: Vec<String> = out
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        let registration = lines.remove(0);
        assert!(
            registration.contains("-F _vmclonectl_vms"),
            "{registration}"
        );
        lines
    };
    let address = format!("--address={}", demo.bus.address());
    assert_eq!(
        complete(&format!("vmclonectl {address} show w")),
        ["web01", "win11"]
    );
    assert_eq!(
        complete(&format!("vmclonectl {address} clone d")),
        ["db01", "debian12-template"]
    );
    assert_eq!(
        complete(&format!("vmclonectl {address} plan w")),
        ["web01", "win11"]
    );
    let spaced = format!("vmclonectl --address {} template ", demo.bus.address());
    assert_eq!(complete(&spaced).len(), 5, "every VM");
    assert_eq!(complete("vmclonectl ch"), ["check-name"]);
    assert!(complete(&format!("vmclonectl {address} clone web01 --l"))
        .contains(&"--linked".to_string()));
    // The second argument of clone is a new name: no VM names offered.
    assert!(complete(&format!("vmclonectl {address} clone web01 w")).is_empty());
}

#[test]
fn zsh_completion_parses_and_loads_with_compinit() {
    let docs = generated();
    let script = docs.path().join("completions/_vmclonectl");
    let (ok, _, err) = run(Command::new("zsh").arg("-n").arg(&script));
    assert!(ok, "zsh -n: {err}");
    let program = format!(
        "autoload -U compinit && compinit -u -D && source {} && whence -w _vmclonectl _vmclonectl_vms && print $_comps[vmclonectl]",
        script.display()
    );
    let (ok, out, err) = run(Command::new("zsh").arg("-f").arg("-c").arg(program));
    assert!(ok, "zsh: {err}");
    assert_eq!(
        out, "_vmclonectl: function\n_vmclonectl_vms: function\n_vmclonectl\n",
        "{err}"
    );
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        text.contains("':source -- The VM to clone\\: name or UUID:_vmclonectl_vms'"),
        "{text}"
    );
}

#[test]
fn man_pages_render_with_the_exit_statuses() {
    let docs = generated();
    let man = docs.path().join("man");
    let mut pages: Vec<String> = std::fs::read_dir(&man)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let commands = [
        "cancel",
        "check-name",
        "clone",
        "destinations",
        "jobs",
        "list",
        "monitor",
        "plan",
        "show",
        "template",
    ];
    let mut expected: Vec<String> = commands
        .iter()
        .map(|c| format!("vmclonectl-{c}.1"))
        .collect();
    expected.push("vmclonectl.1".into());
    assert_eq!(pages, expected);
    for page in &pages {
        let (ok, text, err) = run(Command::new("man")
            .arg("-l")
            .arg(man.join(page))
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("LC_ALL", "C.UTF-8"));
        assert!(ok && err.is_empty(), "man -l {page}: {err}");
        assert!(
            text.contains("NAME") && text.contains("SYNOPSIS"),
            "{page}: {text}"
        );
        if page == "vmclonectl.1" {
            assert!(
                text.contains("EXIT STATUS") && text.contains("SEE ALSO"),
                "{text}"
            );
            assert!(text.contains("vmclonectl-clone(1)"), "{text}");
            for line in [
                "no such VM or job (NotFound)",
                "the name is taken or invalid (NameExists, InvalidName)",
                "plan: the clone would not fit in the free space",
            ] {
                assert!(text.contains(line), "{line} in\n{text}");
            }
        }
        if page == "vmclonectl-plan.1" {
            // The clone's options, but nothing that only a clone under way has.
            for option in [
                "--linked",
                "--vcpus",
                "--memory",
                "--target-dir",
                "--mac",
                "--uuid",
                "--copies",
                "--json",
            ] {
                assert!(text.contains(option), "{option} in\n{text}");
            }
            assert!(!text.contains("--no-wait"), "{text}");
            let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(words.contains("or 11 when it would not fit"), "{text}");
        }
        if page == "vmclonectl-clone.1" {
            for option in [
                "--linked",
                "--vcpus",
                "--memory",
                "--target-dir",
                "--mac",
                "--uuid",
                "--copies",
                "--no-wait",
            ] {
                assert!(text.contains(option), "{option} in\n{text}");
            }
        }
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn make_install_puts_vmclonectl_its_man_pages_and_completions_in_place() {
    // What `make` leaves in TARGET_DIR: the binaries (the service and the app
    // stand in as empty programs: this test is about vmclonectl's files) and
    // vmclonectl-gen's output.
    let target = TempDir::new("cli-target");
    let release = target.path().join("release");
    std::fs::create_dir(&release).unwrap();
    for stand_in in ["vmclone-service", "vmclone"] {
        let p = release.join(stand_in);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::os::unix::fs::symlink(CTL, release.join("vmclonectl")).unwrap();
    assert!(Command::new(GEN)
        .arg(target.path().join("vmclonectl"))
        .status()
        .unwrap()
        .success());

    for (prefix, zsh_dir) in [
        ("/usr", "usr/share/zsh/vendor-completions"),
        ("/usr/local", "usr/local/share/zsh/site-functions"),
    ] {
        let dest = TempDir::new("cli-destdir");
        let make = |goal: &str| {
            let (ok, _, err) = run(Command::new("make")
                .current_dir(workspace_root())
                .args(["-s", goal])
                .arg(format!("DESTDIR={}", dest.path().display()))
                .arg(format!("prefix={prefix}"))
                .arg(format!("TARGET_DIR={}", target.path().display())));
            assert!(ok, "make {goal} prefix={prefix}: {err}");
        };
        make("install");
        let p = prefix.trim_start_matches('/');
        let installed = files_under(dest.path());
        let mut expected: Vec<String> = vec![
            format!("{p}/bin/vmclonectl"),
            format!("{p}/share/bash-completion/completions/vmclonectl"),
            format!("{zsh_dir}/_vmclonectl"),
            format!("{p}/share/fish/vendor_completions.d/vmclonectl.fish"),
            format!("{p}/share/man/man1/vmclonectl.1"),
        ];
        for c in [
            "cancel",
            "check-name",
            "clone",
            "destinations",
            "jobs",
            "list",
            "monitor",
            "plan",
            "show",
            "template",
        ] {
            expected.push(format!("{p}/share/man/man1/vmclonectl-{c}.1"));
        }
        for file in &expected {
            assert!(
                installed.contains(file),
                "{file} not installed; got {installed:?}"
            );
        }
        let bin: PathBuf = dest.path().join(format!("{p}/bin/vmclonectl"));
        let (ok, version, _) = run(Command::new(&bin).arg("--version"));
        assert!(ok && version.starts_with("vmclonectl "), "{version}");
        let (ok, _, err) = run(Command::new("man")
            .arg("-l")
            .arg(dest.path().join(&expected[4]))
            .env("MANPAGER", "cat"));
        assert!(ok && err.is_empty(), "installed man page: {err}");

        make("uninstall");
        let left: Vec<String> = files_under(dest.path())
            .into_iter()
            .filter(|f| f.contains("vmclonectl"))
            .collect();
        assert!(
            left.is_empty(),
            "make uninstall prefix={prefix} left {left:?}"
        );
    }
}
