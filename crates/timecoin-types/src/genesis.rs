//! The genesis document: the chain's rules, its first coins and its first validators.

use serde::{Deserialize, Serialize};
use timecoin_crypto::{Address, Hash, HashDomain, LtHash, Network, PublicKey, SecretKey, hash};

use crate::{
    Amount, Block, BlockHash, BlockHeader, ChainParams, OutPoint, Tier, TxId, TxOut,
    WellFormedBlock, Wire, apply_to_commitment, codec,
};

/// A validator present from the first block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisValidator {
    /// Key it signs consensus messages with.
    pub operator_key: PublicKey,
    /// Tier, which sets its weight.
    pub tier: Tier,
    /// Who may deregister it.
    pub owner: Address,
}

/// Everything a node needs to start a chain. Its hash is the chain's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Rules.
    pub params: ChainParams,
    /// Genesis time, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Initial coins; allocation `i` is spendable as `OutPoint { txid: allocation_txid(), vout: i }`.
    pub allocations: Vec<TxOut>,
    /// Initial validator set.
    pub validators: Vec<GenesisValidator>,
}

impl Wire for Genesis {
    const NAME: &'static str = "genesis";
    const MAX_ENCODED_LEN: usize = crate::MAX_GENESIS_BYTES;
}

impl Genesis {
    /// The pseudo transaction id the allocations are spent from.
    pub fn allocation_txid(&self) -> TxId {
        TxId(hash(HashDomain::GenesisAllocations, &codec::encode(self)))
    }

    /// The initial UTXO set.
    pub fn utxos(&self) -> Vec<(OutPoint, TxOut)> {
        let txid = self.allocation_txid();
        self.allocations
            .iter()
            .enumerate()
            .map(|(i, out)| {
                (
                    OutPoint {
                        txid,
                        vout: i as u32,
                    },
                    *out,
                )
            })
            .collect()
    }

    /// The UTXO multiset hash after genesis.
    pub fn utxo_hash(&self) -> LtHash {
        let mut h = LtHash::new();
        apply_to_commitment(&mut h, &[], &self.utxos());
        h
    }

    /// Block 0. Its proposer is the first validator (by key order), its body is empty, and its header
    /// commits to the allocations.
    pub fn block(&self) -> WellFormedBlock {
        let proposer = self.validators.iter().map(|v| v.operator_key).min();
        let proposer = proposer.unwrap_or_else(|| SecretKey::from_seed(&[0; 32]).public_key());
        let block = Block {
            header: BlockHeader {
                chain_id: self.params.chain_id,
                height: 0,
                view: 0,
                parent: BlockHash(Hash::ZERO),
                timestamp_ms: self.timestamp_ms,
                proposer,
                tx_root: Hash::ZERO,
                witness_root: Hash::ZERO,
                utxo_commitment: self.utxo_hash().checksum(),
                validators_hash: Hash::ZERO,
            },
            transactions: Vec::new(),
        };
        block.seal()
    }

    /// A local development network with `n` Bronze validators whose keys come from
    /// [`Genesis::local_validator_key`], each validator also holding 1,000,000 TIME.
    pub fn local(n: usize) -> Genesis {
        let params = ChainParams::for_network(Network::Local);
        let keys: Vec<SecretKey> = (0..n).map(Self::local_validator_key).collect();
        let allocations = keys
            .iter()
            .map(|k| TxOut {
                amount: Amount::from_time(1_000_000).unwrap_or(Amount::ZERO),
                address: Address::from_public_key(&k.public_key()),
            })
            .collect();
        let validators = keys
            .iter()
            .map(|k| GenesisValidator {
                operator_key: k.public_key(),
                tier: Tier::Bronze,
                owner: Address::from_public_key(&k.public_key()),
            })
            .collect();
        Genesis {
            params,
            timestamp_ms: 1_764_000_000_000,
            allocations,
            validators,
        }
    }

    /// The well-known key of local validator `i`. For development networks only: anyone can derive it.
    pub fn local_validator_key(i: usize) -> SecretKey {
        let seed = hash(
            HashDomain::Custom("timecoin 2026-11 local devnet key v1"),
            &(i as u64).to_le_bytes(),
        );
        SecretKey::from_seed(seed.as_bytes())
    }
}
