//! Cryptography for TimeCoin: Ed25519 keys and domain-separated signatures, single and batch verification
//! that accept exactly the same signatures, BLAKE3 hashing, Merkle roots, a homomorphic multiset hash for
//! the UTXO set, and bech32m addresses.
//!
//! # Examples
//! ```
//! use timecoin_crypto::{Address, BatchItem, ChainId, Network, SecretKey, SigDomain, verify_batch};
//!
//! let chain = ChainId(1);
//! let alice = SecretKey::generate_os();
//! let sig = alice.sign(SigDomain::TxInput, chain, b"pay bob 5 TIME");
//!
//! // The signature is bound to its purpose and its chain.
//! let pk = alice.public_key();
//! assert!(pk.verify(SigDomain::TxInput, chain, b"pay bob 5 TIME", &sig).is_ok());
//! assert!(pk.verify(SigDomain::Vote, chain, b"pay bob 5 TIME", &sig).is_err());
//! assert!(pk.verify(SigDomain::TxInput, ChainId(2), b"pay bob 5 TIME", &sig).is_err());
//!
//! // Batches accept exactly what single verification accepts.
//! let item = BatchItem { key: &pk, domain: SigDomain::TxInput, chain, message: b"pay bob 5 TIME", signature: &sig };
//! assert!(verify_batch(&[item, item]).is_ok());
//!
//! // Addresses carry their network in the prefix and a bech32m checksum.
//! let text = Address::from_public_key(&pk).encode(Network::Testnet);
//! assert!(text.starts_with("ttime1"));
//! assert!(Address::decode_for(&text, Network::Mainnet).is_err());
//! ```
//!
//! # Choices
//! - **ed25519-dalek 2.x**, not 3.x: 2.x is the line audited and deployed across the ecosystem, and its
//!   `rand_core` 0.6 matches the rest of our tree; we use it for key handling and RFC 8032 signing only.
//!   Verification is our own composition of `curve25519-dalek` primitives, because the rule we need
//!   (strict encodings + cofactored equation, see [`sig`]) is the only one under which batch and single
//!   verification agree, and dalek implements the cofactorless one.
//! - **BLAKE3** for every hash (see [`hash`] for why not double SHA-256).
//! - **LtHash** for the UTXO-set commitment (see [`lthash`]).
//!
//! ## Feature flags
//! None. Parallel batch verification uses the global rayon pool.

#![forbid(unsafe_code)]

mod address;
mod bytes;
mod domain;
mod error;
pub mod hash;
pub mod key_cache;
mod keys;
pub mod lthash;
pub mod sig;

pub use address::{Address, Network};
pub use domain::{ChainId, HashDomain, SigDomain};
pub use error::CryptoError;
pub use hash::{HASH_LEN, Hash, Hasher, hash, merkle_root};
pub use keys::{PUBLIC_KEY_LEN, PublicKey, SECRET_KEY_LEN, SecretKey, Signer};
pub use lthash::LtHash;
pub use sig::{BatchItem, SIGNATURE_LEN, Signature, verify, verify_batch, verify_batch_parallel};
