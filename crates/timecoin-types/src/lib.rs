//! TimeCoin's data types and the rules both the mempool and block validation apply: amounts,
//! transactions, blocks, consensus messages, the genesis document, a canonical size-limited encoding, and
//! the transaction checks (stateless, and against a [`UtxoView`]).
//!
//! # Examples
//! ```
//! use std::collections::HashMap;
//! use timecoin_crypto::Address;
//! use timecoin_types::{check_tx, Amount, Genesis, Transaction, TxBuilder, Wire};
//!
//! // A local chain whose validator 0 holds coins at genesis.
//! let genesis = Genesis::local(4);
//! let utxos: HashMap<_, _> = genesis.utxos().into_iter().collect();
//! let alice = Genesis::local_validator_key(0);
//! let (coin, out) = genesis.utxos()[0];
//!
//! let bob = Address::from_public_key(&Genesis::local_validator_key(1).public_key());
//! let tx = TxBuilder::new(genesis.params.chain_id)
//!     .input(coin, out.amount, &alice)
//!     .output(bob, Amount::from_time(5).unwrap())
//!     .output(out.address, out.amount.checked_sub(Amount::from_time(6).unwrap()).unwrap())
//!     .sign();
//!
//! // Fee = inputs − outputs = 1 TIME.
//! assert_eq!(check_tx(&tx, &utxos, &genesis.params), Ok(Amount::from_time(1).unwrap()));
//!
//! // The wire form is canonical and size-checked; the id ignores signatures.
//! let bytes = tx.encode();
//! assert_eq!(Transaction::decode(&bytes).unwrap(), tx);
//! let mut resigned = tx.clone();
//! resigned.inputs[0].signature = timecoin_crypto::Signature::from_bytes([0; 64]);
//! assert_eq!(resigned.txid(), tx.txid());
//! ```
//!
//! ## Feature flags
//! None.

#![forbid(unsafe_code)]

mod amount;
mod block;
pub mod codec;
mod consensus;
mod error;
mod genesis;
mod masternode;
mod params;
mod rules;
mod tx;

pub use amount::{Amount, COIN};
pub use block::{
    Block, BlockHash, BlockHeader, BodyRoots, Height, View, WellFormedBlock, apply_to_commitment,
    utxo_element,
};
pub use codec::Wire;
pub use consensus::{
    CommitCertificate, LOCK_PROOF_BYTES_PER_SIGNER, LockProof, Proposal, Vote, VotePhase,
};
pub use error::TypesError;
pub use genesis::{Genesis, GenesisValidator};
pub use masternode::{MasternodeRegistration, Tier};
pub use params::*;
pub use rules::{
    BlockDelta, CheckedTx, UtxoView, block_utxo_delta, check_block, check_block_with, check_tx,
    check_tx_context, signature_messages, verify_signatures,
};
pub use timecoin_crypto::{Address, ChainId, Hash, Network, PublicKey, SecretKey, Signature};
pub use tx::{
    INPUT_MESSAGE_LEN, OutPoint, TX_VERSION, Transaction, TxBuilder, TxId, TxIn, TxKind, TxOut,
};
