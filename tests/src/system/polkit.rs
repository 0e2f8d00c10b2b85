//! polkit for the root tests: polkitd stopped and started again the way
//! tools/setup-host.sh starts it, rules that refuse an action, an administrator.

use std::time::{Duration, Instant};

use super::files::{place_rules, PlacedFile};
use super::users::TestUser;
use crate::client::Client;
use crate::process::{daemon, terminate, wait_until};

pub const POLKIT_NAME: &str = "org.freedesktop.PolicyKit1";
const POLKITD: &str = "/usr/lib/polkit-1/polkitd";
/// A higher-precedence activation file than polkit's own in /usr/share: while it is in
/// place the bus cannot start polkitd on demand (as `systemctl mask polkit` would).
const POLKIT_ACTIVATION_OVERRIDE: &str =
    "/usr/local/share/dbus-1/system-services/org.freedesktop.PolicyKit1.service";

/// polkitd stopped and not startable by the bus; on drop it is started again.
pub struct PolkitDown {
    mask: Option<PlacedFile>,
}

impl PolkitDown {
    pub fn stop() -> PolkitDown {
        let system = Client::system();
        let mask = PlacedFile::put(
            POLKIT_ACTIVATION_OVERRIDE.into(),
            "# vmclone test: polkitd is stopped on purpose (removed by the test)\n\
             [D-BUS Service]\nName=org.freedesktop.PolicyKit1\nExec=/bin/false\nUser=root\n",
            true,
        );
        let pid = system.owner_pid(POLKIT_NAME);
        let down = PolkitDown { mask: Some(mask) };
        terminate(pid);
        wait_until(Duration::from_secs(10), "polkitd to stop", || {
            !system.has_owner(POLKIT_NAME)
        });
        down
    }
}

impl Drop for PolkitDown {
    fn drop(&mut self) {
        let system = Client::system();
        // As tools/setup-host.sh: `/usr/lib/polkit-1/polkitd --no-debug >/var/log/polkitd.log 2>&1 &`
        // (in its own session, so it outlives this test).
        let started = daemon(&format!(
            "{POLKITD} --no-debug >/var/log/polkitd.log 2>&1 </dev/null"
        ))
        .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !system.has_owner(POLKIT_NAME) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Unmask only once it runs, so the bus does not start a second one meanwhile.
        self.mask.take();
        if !std::thread::panicking() {
            assert!(
                started.is_ok() && system.has_owner(POLKIT_NAME),
                "could not restart polkitd ({started:?}); run tools/setup-host.sh"
            );
        }
    }
}

/// A polkit rule (the file `file` in polkit's rules folder) that refuses `action` to
/// `user`, in force when this returns (polkitd loads rules files asynchronously);
/// removed on drop.
pub fn deny_rule(file: &str, user: &TestUser, action: &str) -> PlacedFile {
    let rule = place_rules(file, deny(&user.name, action));
    wait_until(
        Duration::from_secs(10),
        &format!("polkitd to load the rule in {file}"),
        || !user.polkit_allows(action),
    );
    rule
}

fn deny(user: &str, action: &str) -> String {
    format!(
        "polkit.addRule(function(action, subject) {{\n\
         \x20   if (action.id == \"{action}\" && subject.user == \"{user}\") {{\n\
         \x20       return polkit.Result.NO;\n\
         \x20   }}\n\
         }});\n"
    )
}

/// A user with a password who is the only one polkit asks for when an action needs
/// an administrator (so an agent asks no question of which admin), in force when
/// this returns; the rule is removed on drop.
pub struct PolkitAdmin {
    pub user: TestUser,
    pub password: String,
    _rule: PlacedFile,
}

impl PolkitAdmin {
    pub fn create(name: &str) -> PolkitAdmin {
        let user = TestUser::create(name, None);
        let password = format!("pw-{}-{:?}", std::process::id(), Instant::now());
        user.set_password(&password);
        // A canary in the same file (the admin may not list VMs) shows it is loaded.
        let canary = "org.vmclone.list-vms";
        let rule = place_rules(
            "40-vmclone-test-admin.rules",
            format!(
                "polkit.addAdminRule(function(action, subject) {{\n\
                 \x20   return [\"unix-user:{}\"];\n\
                 }});\n{}",
                user.name,
                deny(&user.name, canary)
            ),
        );
        wait_until(
            Duration::from_secs(10),
            "polkitd to load the admin rule",
            || !user.polkit_allows(canary),
        );
        PolkitAdmin {
            user,
            password,
            _rule: rule,
        }
    }
}
