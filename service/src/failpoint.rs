//! Pauses at the steps of a clone, for the fault-injection tests: with
//! `VMCLONE_PAUSE_AT=STEP[,STEP…]` and `VMCLONE_PAUSE_DIR=DIR` in the
//! service's environment, a clone reaching a named step creates `DIR/STEP`
//! and waits until that file is removed (or the clone is cancelled), so a
//! test can fill a disk, stop libvirtd or kill the service at exactly that
//! moment. Without both variables nothing ever pauses.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

struct Pauses {
    steps: Vec<String>,
    dir: PathBuf,
}

fn pauses() -> Option<&'static Pauses> {
    static PAUSES: OnceLock<Option<Pauses>> = OnceLock::new();
    PAUSES
        .get_or_init(|| {
            let steps = std::env::var("VMCLONE_PAUSE_AT").ok()?;
            let dir = std::env::var_os("VMCLONE_PAUSE_DIR")?;
            Some(Pauses {
                steps: steps.split(',').map(str::to_owned).collect(),
                dir: PathBuf::from(dir),
            })
        })
        .as_ref()
}

/// Waits at `step` when the environment asks for it.
pub fn step(step: &str, cancelled: &AtomicBool) {
    let Some(p) = pauses() else {
        return;
    };
    if !p.steps.iter().any(|s| s == step) {
        return;
    }
    let marker = p.dir.join(step);
    if let Err(e) = std::fs::write(&marker, b"") {
        tracing::error!("cannot pause at {step}: {}: {e}", marker.display());
        return;
    }
    tracing::warn!("paused at {step} until {} is removed", marker.display());
    while marker.exists() && !cancelled.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
    }
    // A cancel ends the pause too: the marker goes either way.
    let _ = std::fs::remove_file(&marker);
    tracing::warn!("going on after {step}");
}
