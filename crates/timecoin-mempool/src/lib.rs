//! TimeCoin's transaction pool: admits transactions that are valid against the finalized UTXO set, locks
//! the outputs they spend, keeps the best-paying within its limits, and builds block templates.
//!
//! # Examples
//! ```
//! use std::collections::HashMap;
//! use timecoin_crypto::Address;
//! use timecoin_mempool::{Config, Mempool, MempoolError, TxPool};
//! use timecoin_types::{Amount, Genesis, TxBuilder};
//!
//! // A pool over a local chain's genesis UTXO set (a node passes its storage's view instead).
//! let genesis = Genesis::local(2);
//! let utxos: HashMap<_, _> = genesis.utxos().into_iter().collect();
//! let pool = TxPool::new(Config::default(), genesis.params.clone(), utxos);
//!
//! let alice = Genesis::local_validator_key(0);
//! let bob = Address::from_public_key(&Genesis::local_validator_key(1).public_key());
//! let (coin, out) = genesis.utxos()[0];
//! let pay_bob = |fee: u64| {
//!     let five = Amount::from_time(5).unwrap();
//!     let change = Amount::from_sat(out.amount.as_sat() - five.as_sat() - fee);
//!     TxBuilder::new(genesis.params.chain_id)
//!         .input(coin, out.amount, &alice)
//!         .output(bob, five)
//!         .output(out.address, change)
//!         .sign()
//! };
//!
//! let first = pool.insert(pay_bob(1_000))?;
//! // Spending the same coin again is a double spend: one more satoshi is not enough to replace it...
//! assert!(matches!(pool.insert(pay_bob(1_001)), Err(MempoolError::ReplacementFeeTooLow { .. })));
//! // ...paying the replaced fee again, plus 1 sat per byte of the replacement, is.
//! let bumped = pool.insert(pay_bob(2_000))?;
//! assert!(!pool.contains(&first) && pool.contains(&bumped));
//!
//! // The leader asks for a template; once the block is final, the pool forgets what it included.
//! let template = pool.template(genesis.params.block_limit());
//! assert_eq!(template.len(), 1);
//! let mut block = genesis.block().into_block();
//! block.transactions = template.iter().map(|tx| (**tx).clone()).collect();
//! pool.on_finalized(&block.seal());
//! assert!(pool.is_empty());
//! # Ok::<(), MempoolError>(())
//! ```
//!
//! # Shape
//! [`Mempool`] is the boundary the node and consensus use; [`TxPool`] is the default implementation
//! (its docs state the admission, replacement and eviction policy, and `pool.rs` why it is race-free).
//! The async functions [`insert_async`], [`insert_batch_async`] and [`template_async`] run the CPU work
//! on the rayon pool so the async runtime never blocks on signature arithmetic.
//!
//! ## Feature flags
//! None.

#![forbid(unsafe_code)]

use std::sync::Arc;

use timecoin_types::{Block, OutPoint, Transaction, TxId};

mod clock;
mod config;
mod error;
mod fee_index;
mod fee_rate;
mod occupancy;
mod offload;
mod pool;
mod rejection_cache;
mod stats;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::*;
pub use error::MempoolError;
pub use fee_rate::FeeRate;
pub use offload::{insert_async, insert_batch_async, template_async};
pub use pool::{PooledTx, TxPool};
pub use rejection_cache::RejectionCache;
pub use stats::MempoolStats;

/// A pool of valid, unfinalized transactions that a block proposer draws from.
///
/// An implementation must guarantee, at every moment another thread can observe:
/// - every pooled transaction was valid against the UTXO view when admitted, and no two pooled
///   transactions spend one outpoint;
/// - its limits hold;
/// - [`template`](Mempool::template) returns transactions that are valid together, in block order, against
///   the view at the time of the call.
///
/// It may assume that the caller applies a finalized block to the UTXO view *before* calling
/// [`on_finalized`](Mempool::on_finalized), and that blocks are finalized once (no reorganisations: the
/// chain has instant finality).
///
/// Every method may be called from many threads at once; the CPU-heavy ones
/// ([`insert`](Mempool::insert), [`insert_batch`](Mempool::insert_batch), [`template`](Mempool::template))
/// block for up to milliseconds, so async code calls them through [`insert_async`] and friends.
pub trait Mempool: Send + Sync {
    /// Validates `tx` against the UTXO view and pools it; returns its id.
    fn insert(&self, tx: Transaction) -> Result<TxId, MempoolError>;

    /// Inserts many transactions, verifying their signatures together; one result per transaction, in
    /// order.
    ///
    /// Equivalent to inserting them one by one in that order, except that an implementation may screen
    /// all of them (rejection cache, duplicates, chain rules, conflicts, room) against the pool as it was
    /// before the batch: then a transaction turned away there is not reconsidered after earlier ones in
    /// the batch were admitted, and one that fails several checks may report another of its failures.
    /// The caller bounds the batch: its work and memory grow with the inputs of all its transactions.
    fn insert_batch(&self, txs: Vec<Transaction>) -> Vec<Result<TxId, MempoolError>> {
        txs.into_iter().map(|tx| self.insert(tx)).collect()
    }

    /// Whether `txid` is pooled.
    fn contains(&self, txid: &TxId) -> bool;

    /// The pooled transaction that spends `outpoint`, if any, so a wallet can leave a coin that is
    /// already being spent out of its next payment. The default knows of none.
    fn spender(&self, outpoint: &OutPoint) -> Option<TxId> {
        let _ = outpoint;
        None
    }

    /// The pooled transaction `txid`.
    fn get(&self, txid: &TxId) -> Option<Arc<Transaction>>;

    /// Whether exactly this transaction (signatures included) is pooled, so its signatures were verified
    /// on admission. Block validation may skip the signature check of such a transaction and check only
    /// the rest; a transaction that differs in any byte (even one with the same txid and another valid
    /// signature) gets `false`.
    fn holds_verified(&self, tx: &Transaction) -> bool {
        self.get(&tx.txid()).is_some_and(|pooled| *pooled == *tx)
    }

    /// The best-paying transactions that fit in `max_bytes` (the sum of their encoded sizes; the caller
    /// leaves room for the header and framing): highest fee rate first, ties by txid, never two that
    /// spend one outpoint, never one whose inputs are not in the view now.
    fn template(&self, max_bytes: usize) -> Vec<Arc<Transaction>>;

    /// Forgets what `block` included, and every pooled transaction that spends an outpoint the block
    /// spent, releasing their locks.
    fn on_finalized(&self, block: &Block);

    /// Transactions pooled.
    fn len(&self) -> usize;

    /// Whether nothing is pooled.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encoded bytes pooled.
    fn bytes(&self) -> usize;

    /// Size and counters, for metrics.
    fn stats(&self) -> MempoolStats;
}
