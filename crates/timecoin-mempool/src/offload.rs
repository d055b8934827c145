//! Async entry points that run the pool's CPU work off the async runtime.
//!
//! Checking a transaction costs tens of microseconds of signature arithmetic; a batch, milliseconds.
//! Done on a runtime worker it would stall every other task on that worker, so these functions hand the
//! work to the rayon pool (sized to the cores, so a flood of submissions queues instead of spawning
//! threads, as `spawn_blocking` would) and await the answer on a oneshot channel.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use timecoin_types::{Transaction, TxId};

use crate::{Mempool, MempoolError};

/// Runs `work` on the rayon pool and awaits its result. A panic in `work` is caught and reported as
/// [`MempoolError::WorkerFailed`] (rayon would otherwise abort the process).
async fn on_cpu_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, MempoolError> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let result = catch_unwind(AssertUnwindSafe(work));
        // The caller may have stopped waiting; then nobody needs the answer.
        let _ = answer.send(result);
    });
    match answered.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(MempoolError::WorkerFailed {
            reason: "the check panicked".to_string(),
        }),
        Err(_) => Err(MempoolError::WorkerFailed {
            reason: "the CPU pool dropped the task".to_string(),
        }),
    }
}

/// [`Mempool::insert`] on the rayon pool; the calling task only awaits.
pub async fn insert_async<M: Mempool + ?Sized + 'static>(
    pool: Arc<M>,
    tx: Transaction,
) -> Result<TxId, MempoolError> {
    on_cpu_pool(move || pool.insert(tx)).await?
}

/// [`Mempool::insert_batch`] on the rayon pool: one parallel signature batch for all of `txs`. If the
/// worker fails, every transaction gets [`MempoolError::WorkerFailed`].
pub async fn insert_batch_async<M: Mempool + ?Sized + 'static>(
    pool: Arc<M>,
    txs: Vec<Transaction>,
) -> Vec<Result<TxId, MempoolError>> {
    let n = txs.len();
    match on_cpu_pool(move || pool.insert_batch(txs)).await {
        Ok(results) => results,
        Err(e) => vec![Err(e); n],
    }
}

/// [`Mempool::template`] on the rayon pool (sorting and re-checking a full pool takes milliseconds).
pub async fn template_async<M: Mempool + ?Sized + 'static>(
    pool: Arc<M>,
    max_bytes: usize,
) -> Result<Vec<Arc<Transaction>>, MempoolError> {
    on_cpu_pool(move || pool.template(max_bytes)).await
}
