//! Generators for every wire type, shared by the integration tests.
//!
//! Values are structurally arbitrary (any version, any amounts, any signatures): decoding must round-trip
//! whatever the encoder can produce, valid by the rules or not. Public keys are the exception: the decoder
//! validates them, so they are derived from seeds and are always real keys.

#![allow(dead_code, unreachable_pub)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use timecoin_types::{
    Address, Amount, Block, BlockHash, BlockHeader, ChainId, ChainParams, CommitCertificate,
    Genesis, GenesisValidator, Hash, LockProof, MasternodeRegistration, Network, OutPoint,
    Proposal, PublicKey, SecretKey, Signature, Tier, Transaction, TxId, TxIn, TxKind, TxOut, Vote,
    VotePhase,
};

pub fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash::from_bytes)
}

pub fn public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(|seed| SecretKey::from_seed(&seed).public_key())
}

pub fn signature() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(r, s)| {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r);
        bytes[32..].copy_from_slice(&s);
        Signature::from_bytes(bytes)
    })
}

pub fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 32]>().prop_map(Address::from_bytes)
}

/// Amounts skewed towards the varint length boundaries, where an encoder is most likely to slip.
pub fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        any::<u64>(),
        0u64..=300,
        Just(127u64),
        Just(128u64),
        Just(u64::MAX),
        Just(1u64 << 63),
    ]
    .prop_map(Amount::from_sat)
}

pub fn outpoint() -> impl Strategy<Value = OutPoint> {
    (hash(), any::<u32>()).prop_map(|(h, vout)| OutPoint {
        txid: TxId(h),
        vout,
    })
}

pub fn tx_out() -> impl Strategy<Value = TxOut> {
    (amount(), address()).prop_map(|(amount, address)| TxOut { amount, address })
}

pub fn tx_in() -> impl Strategy<Value = TxIn> {
    (outpoint(), public_key(), signature()).prop_map(|(prevout, public_key, signature)| TxIn {
        prevout,
        public_key,
        signature,
    })
}

pub fn tier() -> impl Strategy<Value = Tier> {
    prop::sample::select(Tier::ALL.to_vec())
}

pub fn registration() -> impl Strategy<Value = MasternodeRegistration> {
    (tier(), option::of(outpoint()), public_key()).prop_map(|(tier, collateral, operator_key)| {
        MasternodeRegistration {
            tier,
            collateral,
            operator_key,
        }
    })
}

pub fn tx_kind() -> impl Strategy<Value = TxKind> {
    prop_oneof![
        Just(TxKind::Transfer),
        registration().prop_map(TxKind::RegisterMasternode),
        public_key().prop_map(|operator_key| TxKind::DeregisterMasternode { operator_key }),
        any::<u64>().prop_map(|height| TxKind::Reward { height }),
    ]
}

pub fn transaction() -> impl Strategy<Value = Transaction> {
    (
        any::<u16>(),
        vec(tx_in(), 0..4),
        vec(tx_out(), 0..4),
        tx_kind(),
    )
        .prop_map(|(version, inputs, outputs, kind)| Transaction {
            version,
            inputs,
            outputs,
            kind,
        })
}

pub fn block_header() -> impl Strategy<Value = BlockHeader> {
    (
        any::<u32>(),
        any::<u64>(),
        any::<u32>(),
        hash(),
        any::<u64>(),
        public_key(),
        (hash(), hash()),
        (hash(), hash()),
    )
        .prop_map(
            |(
                chain,
                height,
                view,
                parent,
                timestamp_ms,
                proposer,
                (tx_root, witness_root),
                (utxo_commitment, validators_hash),
            )| {
                BlockHeader {
                    chain_id: ChainId(chain),
                    height,
                    view,
                    parent: BlockHash(parent),
                    timestamp_ms,
                    proposer,
                    tx_root,
                    witness_root,
                    utxo_commitment,
                    validators_hash,
                }
            },
        )
}

pub fn block() -> impl Strategy<Value = Block> {
    (block_header(), vec(transaction(), 0..4)).prop_map(|(header, transactions)| Block {
        header,
        transactions,
    })
}

pub fn vote_phase() -> impl Strategy<Value = VotePhase> {
    prop_oneof![Just(VotePhase::Prepare), Just(VotePhase::Commit)]
}

pub fn vote() -> impl Strategy<Value = Vote> {
    (
        vote_phase(),
        any::<u64>(),
        any::<u32>(),
        option::of(hash().prop_map(BlockHash)),
        public_key(),
        signature(),
    )
        .prop_map(|(phase, height, view, block_hash, voter, signature)| Vote {
            phase,
            height,
            view,
            block_hash,
            voter,
            signature,
        })
}

pub fn proposal() -> impl Strategy<Value = Proposal> {
    (
        any::<u64>(),
        any::<u32>(),
        option::of(any::<u32>()),
        block().prop_map(Block::seal),
        public_key(),
        signature(),
        option::of(vec((public_key(), signature()), 0..4)),
    )
        .prop_map(
            |(height, view, valid_view, block, proposer, signature, proof)| Proposal {
                height,
                view,
                valid_view,
                block,
                proposer,
                signature,
                lock_proof: proof.map(|signatures| LockProof { signatures }),
            },
        )
}

pub fn commit_certificate() -> impl Strategy<Value = CommitCertificate> {
    (
        any::<u64>(),
        any::<u32>(),
        hash(),
        vec((public_key(), signature()), 0..5),
    )
        .prop_map(|(height, view, block_hash, signatures)| CommitCertificate {
            height,
            view,
            block_hash: BlockHash(block_hash),
            signatures,
        })
}

pub fn network() -> impl Strategy<Value = Network> {
    prop_oneof![
        Just(Network::Mainnet),
        Just(Network::Testnet),
        Just(Network::Local)
    ]
}

pub fn chain_params() -> impl Strategy<Value = ChainParams> {
    (
        any::<u32>(),
        network(),
        amount(),
        amount(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        amount(),
        any::<u64>(),
    )
        .prop_map(
            |(
                chain,
                network,
                min_tx_fee,
                min_dust,
                max_tx_bytes,
                max_block_bytes,
                validator_set_delay,
                block_subsidy,
                reward_interval,
            )| ChainParams {
                chain_id: ChainId(chain),
                network,
                min_tx_fee,
                min_dust,
                max_tx_bytes,
                max_block_bytes,
                validator_set_delay,
                block_subsidy,
                reward_interval,
            },
        )
}

pub fn genesis() -> impl Strategy<Value = Genesis> {
    (
        chain_params(),
        any::<u64>(),
        vec(tx_out(), 0..5),
        vec(
            (public_key(), tier(), address()).prop_map(|(operator_key, tier, owner)| {
                GenesisValidator {
                    operator_key,
                    tier,
                    owner,
                }
            }),
            0..5,
        ),
    )
        .prop_map(|(params, timestamp_ms, allocations, validators)| Genesis {
            params,
            timestamp_ms,
            allocations,
            validators,
        })
}

/// One way of damaging an encoding.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Flip one bit (the index wraps around the input length).
    FlipBit(usize, u8),
    /// Overwrite one byte.
    SetByte(usize, u8),
    /// Keep only a prefix.
    Truncate(usize),
    /// Append bytes.
    Extend(Vec<u8>),
    /// Insert bytes in the middle.
    Insert(usize, Vec<u8>),
    /// Remove a range.
    Remove(usize, usize),
    /// Throw the encoding away and use random bytes.
    Replace(Vec<u8>),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        2 => any::<usize>().prop_map(Mutation::Truncate),
        1 => vec(any::<u8>(), 1..16).prop_map(Mutation::Extend),
        1 => (any::<usize>(), vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => vec(any::<u8>(), 0..300).prop_map(Mutation::Replace),
    ]
}

impl Mutation {
    /// Applies the mutations in order to a copy of `bytes`.
    pub fn apply_all(mutations: &[Mutation], bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for m in mutations {
            m.apply(&mut out);
        }
        out
    }

    fn apply(&self, out: &mut Vec<u8>) {
        let len = out.len();
        match self {
            Mutation::FlipBit(i, bit) if len > 0 => out[i % len] ^= 1 << bit,
            Mutation::SetByte(i, v) if len > 0 => out[i % len] = *v,
            Mutation::Truncate(n) => out.truncate(n % (len + 1)),
            Mutation::Extend(extra) => out.extend_from_slice(extra),
            Mutation::Insert(i, extra) => {
                let at = i % (len + 1);
                out.splice(at..at, extra.iter().copied());
            }
            Mutation::Remove(i, n) if len > 0 => {
                let at = i % len;
                let end = (at + n).min(len);
                out.drain(at..end);
            }
            Mutation::Replace(bytes) => *out = bytes.clone(),
            _ => {}
        }
    }
}

/// Secret keys derived from a small index, so tests can refer to "key 3" across steps.
pub fn key(i: u8) -> SecretKey {
    SecretKey::from_seed(&[i.wrapping_add(1); 32])
}
