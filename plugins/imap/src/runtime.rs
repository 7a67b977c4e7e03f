//! The plugin's own tokio runtime. Host calls (kv, config, staging, log) must be made on the
//! thread the host called us on, so connector methods stay synchronous there and hand their
//! network work to this runtime, waiting on a plain channel. That works whatever thread the
//! host uses (its blocking pool or a worker inside `block_in_place`), because we never enter
//! a runtime on the calling thread.

use std::future::Future;
use std::sync::mpsc;
use std::sync::OnceLock;

use crate::error::{ImapError, Result};

fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("switchboard-imap")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| ImapError::Config(format!("cannot start the connector's runtime: {e}")))
}

/// Start `fut` on the connector runtime; its output arrives on the returned channel (nothing
/// arrives if it panicked).
pub fn spawn<T, F>(fut: F) -> Result<mpsc::Receiver<T>>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = tx.send(fut.await);
    });
    Ok(rx)
}

/// Wait for a [`spawn`]ed result.
pub fn wait<T>(rx: mpsc::Receiver<Result<T>>) -> Result<T> {
    rx.recv()
        .unwrap_or_else(|_| Err(ImapError::Protocol("the connector task failed".into())))
}

/// Run `fut` on the connector runtime and wait for it on this thread.
pub fn block<T, F>(fut: F) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    wait(spawn(fut)?)
}
