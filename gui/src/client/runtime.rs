//! The one tokio runtime zbus runs on, and how the GTK side awaits its tasks.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// The process's tokio runtime, started on first use. One worker thread is
/// plenty for a few calls and signals, and keeps D-Bus off the GTK main thread.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vmclone-dbus")
            .enable_all()
            .build()
            .expect("the tokio runtime starts")
    })
}

/// Runs `task` on the runtime. Awaiting it from a `glib::spawn_future_local`
/// future only parks that future: the GTK main loop runs on meanwhile.
pub async fn run<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> T {
    join(runtime().spawn(task)).await
}

/// The result of a task spawned on the runtime.
pub async fn join<T>(task: JoinHandle<T>) -> T {
    match task.await {
        Ok(value) => value,
        // Nothing aborts these tasks and the runtime lives as long as the
        // process: only a panic ends one early, and it goes on here.
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}
