//! One listing of the host at a time: callers that ask while a listing runs
//! share its answer, so a user looping `ListVms` costs libvirt one listing
//! after another, never many at once.

use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::blocking;
use crate::clone::Engine;
use crate::error::Result;
use crate::host::VmSummary;

type Answer = Result<Arc<Vec<VmSummary>>>;

#[derive(Default)]
pub struct SharedListing {
    running: Mutex<Option<Arc<OnceCell<Answer>>>>,
}

impl SharedListing {
    /// Every VM on the host: the listing under way, or a new one.
    pub async fn get(&self, engine: &Arc<Engine>) -> Answer {
        let cell = self
            .running
            .lock()
            .expect("listing lock")
            .get_or_insert_with(Default::default)
            .clone();
        let answer = cell
            .get_or_init(|| {
                let engine = engine.clone();
                async move { blocking(move || engine.host().list()).await.map(Arc::new) }
            })
            .await
            .clone();
        // The next caller lists anew.
        let mut running = self.running.lock().expect("listing lock");
        if running.as_ref().is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            *running = None;
        }
        answer
    }
}
