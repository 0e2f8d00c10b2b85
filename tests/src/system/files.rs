//! Files placed under /etc and /usr for one test, and the project's policies among them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::client::Client;
use crate::paths::workspace_root;
use crate::process::{stdout_ok, wait_until};

/// Where the system bus reads the project's policy (with the default prefix).
const BUS_POLICY: &str = "/etc/dbus-1/system.d/org.vmclone.Manager.conf";
/// Where polkitd reads the project's actions.
const POLKIT_ACTIONS: &str = "/usr/share/polkit-1/actions/org.vmclone.policy";
const RULES_DIR: &str = "/etc/polkit-1/rules.d";

/// Writes a file for the duration of a test, restoring what was there before.
pub struct PlacedFile {
    path: PathBuf,
    previous: Option<Vec<u8>>,
    /// Folders made for the file, innermost first; removed again.
    created_dirs: Vec<PathBuf>,
    reload_bus: bool,
}

impl PlacedFile {
    /// Writes `contents` to `path`; with `reload_bus`, the system bus rereads its
    /// configuration now and after the file is gone.
    pub fn put(path: PathBuf, contents: impl AsRef<[u8]>, reload_bus: bool) -> PlacedFile {
        let previous = fs::read(&path).ok();
        let created_dirs: Vec<PathBuf> = path
            .ancestors()
            .skip(1)
            .take_while(|dir| !dir.exists())
            .map(Path::to_path_buf)
            .collect();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        if reload_bus {
            reload_system_bus();
        }
        PlacedFile {
            path,
            previous,
            created_dirs,
            reload_bus,
        }
    }
}

impl Drop for PlacedFile {
    fn drop(&mut self) {
        let _ = match &self.previous {
            Some(bytes) => fs::write(&self.path, bytes),
            None => fs::remove_file(&self.path),
        };
        for dir in &self.created_dirs {
            let _ = fs::remove_dir(dir);
        }
        if self.reload_bus {
            reload_system_bus();
        }
    }
}

/// The system bus rereads its configuration.
pub fn reload_system_bus() {
    stdout_ok(&Client::system().bus_driver_call("ReloadConfig", &[]));
}

/// A polkit rules file for the duration of a test (polkitd rereads the folder by itself).
pub fn place_rules(file: &str, rules: String) -> PlacedFile {
    PlacedFile::put(
        Path::new(RULES_DIR).join(file),
        format!("// vmclone test rule (removed by the test)\n{rules}"),
        false,
    )
}

/// The project's bus policy in the system bus and its actions in polkitd, as shipped.
pub struct ProjectPolicies {
    _bus: PlacedFile,
    _polkit: PlacedFile,
}

impl ProjectPolicies {
    pub fn install() -> ProjectPolicies {
        let data = workspace_root().join("data");
        let bus = PlacedFile::put(
            BUS_POLICY.into(),
            fs::read(data.join("org.vmclone.Manager.conf")).unwrap(),
            true,
        );
        let polkit = PlacedFile::put(
            POLKIT_ACTIONS.into(),
            fs::read(data.join("org.vmclone.policy")).unwrap(),
            false,
        );
        // polkitd notices new action files by itself (inotify).
        wait_until(
            Duration::from_secs(10),
            "polkitd to load org.vmclone.policy",
            || {
                Command::new("pkaction")
                    .args(["--action-id", "org.vmclone.manage-templates"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            },
        );
        ProjectPolicies {
            _bus: bus,
            _polkit: polkit,
        }
    }
}
