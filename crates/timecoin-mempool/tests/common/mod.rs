//! Fixtures shared by the integration tests: a chain of funded keys whose UTXO set the tests can change.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use timecoin_crypto::{Address, HashDomain, Network, SecretKey, Signature, hash};
use timecoin_mempool::{Config, ManualClock, TxPool};
use timecoin_types::{
    Amount, Block, BlockHash, BlockHeader, ChainParams, Hash, OutPoint, Transaction, TxBuilder,
    TxId, TxOut, TypesError, UtxoView, WellFormedBlock, block_utxo_delta,
};

/// A UTXO set shared between a test and the pool, changed as blocks are finalized.
#[derive(Clone, Debug, Default)]
pub struct SharedView(pub Arc<RwLock<HashMap<OutPoint, TxOut>>>);

impl UtxoView for SharedView {
    fn get_utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, TypesError> {
        Ok(self.0.read().get(outpoint).copied())
    }
}

impl SharedView {
    /// Applies a block's spends and creations, as storage does before the mempool hears of it.
    pub fn apply(&self, block: &Block) {
        let delta = block_utxo_delta(block).expect("test blocks are consistent");
        let mut set = self.0.write();
        for op in delta.spent {
            set.remove(&op);
        }
        set.extend(delta.created);
    }

    pub fn contains(&self, op: &OutPoint) -> bool {
        self.0.read().contains_key(op)
    }

    pub fn remove(&self, op: &OutPoint) {
        self.0.write().remove(op);
    }
}

/// One funded coin: where it is, what it holds, and which key owns it.
#[derive(Clone, Debug)]
pub struct Coin {
    pub outpoint: OutPoint,
    pub amount: Amount,
    pub key: usize,
}

/// A local chain with `keys.len()` keys, each owning one funding coin.
pub struct Chain {
    pub params: ChainParams,
    pub keys: Vec<SecretKey>,
    pub coins: Vec<Coin>,
    pub view: SharedView,
}

pub const FUNDING: u64 = 10_000_000_000; // 100 TIME per coin

impl Chain {
    /// `n` keys from fixed seeds, each funded with one coin of `FUNDING` satoshis.
    pub fn new(n: usize) -> Chain {
        Self::with_amount(n, Amount::from_sat(FUNDING))
    }

    pub fn with_amount(n: usize, amount: Amount) -> Chain {
        let params = ChainParams::for_network(Network::Local);
        let mut keys = Vec::with_capacity(n);
        let mut coins = Vec::with_capacity(n);
        let view = SharedView::default();
        for i in 0..n {
            let mut seed = [0x4du8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let key = SecretKey::from_seed(&seed);
            let outpoint = OutPoint {
                txid: TxId(hash(
                    HashDomain::Custom("mempool test funding"),
                    &(i as u64).to_le_bytes(),
                )),
                vout: 0,
            };
            view.0.write().insert(
                outpoint,
                TxOut {
                    amount,
                    address: Address::from_public_key(&key.public_key()),
                },
            );
            keys.push(key);
            coins.push(Coin {
                outpoint,
                amount,
                key: i,
            });
        }
        Chain {
            params,
            keys,
            coins,
            view,
        }
    }

    pub fn address(&self, key: usize) -> Address {
        Address::from_public_key(&self.keys[key].public_key())
    }

    /// Spends `coins` (by index into `self.coins`), paying `fee` and splitting the rest into `outputs`
    /// equal-ish outputs back to the first coin's owner.
    pub fn pay(&self, coins: &[usize], fee: u64, outputs: usize) -> Transaction {
        let spent: Vec<&Coin> = coins.iter().map(|i| &self.coins[*i]).collect();
        self.spend(&spent, fee, outputs)
    }

    /// Like [`Chain::pay`], for arbitrary coins owned by the chain's keys.
    pub fn spend(&self, coins: &[&Coin], fee: u64, outputs: usize) -> Transaction {
        let total: u64 = coins.iter().map(|c| c.amount.as_sat()).sum();
        let rest = total - fee;
        let each = rest / outputs as u64;
        let to = self.address(coins[0].key);
        let mut b = TxBuilder::new(self.params.chain_id);
        for c in coins {
            b = b.input(c.outpoint, c.amount, &self.keys[c.key]);
        }
        for i in 0..outputs {
            let amount = if i == 0 {
                rest - each * (outputs as u64 - 1)
            } else {
                each
            };
            b = b.output(to, Amount::from_sat(amount));
        }
        b.sign()
    }

    /// The outputs of `tx` as coins (they are paid to the first input's owner, see [`Chain::pay`]).
    pub fn outputs_of(&self, tx: &Transaction, key: usize) -> Vec<Coin> {
        let txid = tx.txid();
        tx.outputs
            .iter()
            .enumerate()
            .map(|(vout, out)| Coin {
                outpoint: OutPoint {
                    txid,
                    vout: vout as u32,
                },
                amount: out.amount,
                key,
            })
            .collect()
    }

    /// A block holding `txs` (the header does not matter to the pool).
    pub fn block(&self, height: u64, txs: Vec<Transaction>) -> WellFormedBlock {
        Block {
            header: BlockHeader {
                chain_id: self.params.chain_id,
                height,
                view: 0,
                parent: BlockHash(Hash::ZERO),
                timestamp_ms: 0,
                proposer: self.keys[0].public_key(),
                tx_root: Hash::ZERO,
                witness_root: Hash::ZERO,
                utxo_commitment: Hash::ZERO,
                validators_hash: Hash::ZERO,
            },
            transactions: txs,
        }
        .seal()
    }

    /// Applies `block` to the view, then tells the pool: the node's order.
    pub fn finalize(&self, pool: &TxPool<SharedView>, block: &Block) {
        use timecoin_mempool::Mempool;
        self.view.apply(block);
        pool.on_finalized(block);
    }

    pub fn pool(&self, config: Config) -> (TxPool<SharedView>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let pool = TxPool::with_clock(
            config,
            self.params.clone(),
            self.view.clone(),
            clock.clone(),
        );
        (pool, clock)
    }
}

/// `tx` with the signature of input 0 mangled: same txid, different bytes, invalid.
pub fn mangled(tx: &Transaction) -> Transaction {
    let mut bad = tx.clone();
    let mut bytes = bad.inputs[0].signature.to_bytes();
    bytes[5] ^= 0x01;
    bad.inputs[0].signature = Signature::from_bytes(bytes);
    bad
}
