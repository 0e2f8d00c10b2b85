//! The service's pauses at the steps of a clone (`service/src/failpoint.rs`):
//! a test asks the service to stop at some steps, waits until a clone stands
//! there, does something to the host (kills the service, fills a disk, starts
//! the source, …) and lets it go on.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::temp::TempDir;

/// The steps a service pauses at, and the folder where it says so.
pub struct Pauses {
    dir: TempDir,
    steps: Vec<String>,
}

impl Pauses {
    pub fn at(steps: &[&str]) -> Pauses {
        Pauses {
            dir: TempDir::new("pauses"),
            steps: steps.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The environment that makes the service pause.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("VMCLONE_PAUSE_AT", self.steps.join(",")),
            ("VMCLONE_PAUSE_DIR", self.dir.path().display().to_string()),
        ]
    }

    fn marker(&self, step: &str) -> PathBuf {
        self.dir.join(step)
    }

    /// Whether a clone stands at `step` now.
    pub fn reached(&self, step: &str) -> bool {
        self.marker(step).exists()
    }

    /// Waits until a clone stands at `step`; panics after `timeout`.
    pub fn wait(&self, step: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.reached(step) {
            assert!(
                Instant::now() < deadline,
                "no clone reached the step {step} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets the clone standing at `step` go on.
    pub fn release(&self, step: &str) {
        let _ = std::fs::remove_file(self.marker(step));
    }
}
