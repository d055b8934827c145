//! Fork resolution as block sync sees it: which of the certified blocks peers offer for a height may be
//! applied, and what two conflicting certificates prove.
//!
//! There is no fork choice in a BFT chain: a block is final once more than 2/3 of the weight committed
//! it, and an honest supermajority never commits two blocks at one height. So sync accepts a block only
//! with a valid certificate from the validator set of its height, and two valid certificates for
//! different blocks at one height are reported as a [`SafetyViolation`], never silently chosen between.

use serde::{Deserialize, Serialize};
use timecoin_crypto::{ChainId, PublicKey};
use timecoin_types::{BlockHash, CommitCertificate, Height, WellFormedBlock, Wire};

use crate::{ConsensusError, ValidatorSet};

/// A block with the certificate that finalized it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedBlock {
    /// The block; decoding refuses one whose body does not match its header, so the certificate, which
    /// signs the header's hash, covers the transactions too.
    pub block: WellFormedBlock,
    /// More than 2/3 of the weight's Commit signatures on it.
    pub certificate: CommitCertificate,
}

impl Wire for CertifiedBlock {
    const NAME: &'static str = "certified block";
    const MAX_ENCODED_LEN: usize =
        WellFormedBlock::MAX_ENCODED_LEN + CommitCertificate::MAX_ENCODED_LEN;
}

impl CertifiedBlock {
    /// Height of the block.
    pub fn height(&self) -> Height {
        self.block.header.height
    }

    /// Checks that the block is of `chain`, that block and certificate name the same hash and height, and
    /// that the certificate is valid for `validators` (the set of that height).
    pub fn check(&self, chain: ChainId, validators: &ValidatorSet) -> Result<(), ConsensusError> {
        if self.block.header.chain_id != chain {
            return Err(ConsensusError::WrongChain {
                expected: chain.0,
                got: self.block.header.chain_id.0,
            });
        }
        let block_hash = self.block.hash();
        if block_hash != self.certificate.block_hash
            || self.block.header.height != self.certificate.height
        {
            return Err(ConsensusError::CertificateMismatch {
                block_hash,
                block_height: self.block.header.height,
                cert_hash: self.certificate.block_hash,
                cert_height: self.certificate.height,
            });
        }
        validators.verify_certificate(&self.certificate, chain)
    }
}

/// Two valid commit certificates for different blocks at one height.
///
/// With validator weights summing to `W`, each certificate carries more than `2W/3`, so their signers
/// overlap in more than `W/3`: every key in [`SafetyViolation::offenders`] committed two blocks at one
/// height, which the protocol forbids. The chain needs operators, not code, from here on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyViolation {
    /// The height with two final blocks.
    pub height: Height,
    /// One certificate.
    pub first: CommitCertificate,
    /// The other, for a different block.
    pub second: CommitCertificate,
}

impl SafetyViolation {
    /// Validators that signed both certificates (if both were cast in one view, a double vote each;
    /// across views, a violation of the locking rule each).
    pub fn offenders(&self) -> Vec<PublicKey> {
        let second: std::collections::BTreeSet<&PublicKey> =
            self.second.signatures.iter().map(|(k, _)| k).collect();
        self.first
            .signatures
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| second.contains(k))
            .collect()
    }
}

/// The outcome of [`resolve_height`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Index (into the candidates) of the block to apply, if any candidate was valid.
    pub accepted: Option<usize>,
    /// Candidates refused, with the rule each broke; their senders misbehaved or lag behind.
    pub rejected: Vec<(usize, ConsensusError)>,
}

/// Decides which of the certified blocks offered by peers for `height` may be applied on top of `tip`.
///
/// - A candidate is valid when its block matches its certificate and the certificate is valid for
///   `validators` (the set of `height`, from [`ValidatorRegistry::set_for`](crate::ValidatorRegistry::set_for)).
/// - Invalid candidates are listed in [`Resolution::rejected`].
/// - Two valid candidates for different blocks, or one for a different block than `local` (our own
///   finalized block at this height, if we have one), are a [`ConsensusError::SafetyViolation`].
/// - The accepted block must build on `tip`; if a valid one does not, our chain and the certified one
///   split below `height`, reported as [`ConsensusError::ParentMismatch`].
pub fn resolve_height(
    chain: ChainId,
    validators: &ValidatorSet,
    height: Height,
    tip: BlockHash,
    local: Option<&CommitCertificate>,
    candidates: &[CertifiedBlock],
) -> Result<Resolution, ConsensusError> {
    let mut resolution = Resolution::default();
    let mut chosen: Option<(usize, &CommitCertificate)> = None;
    for (index, candidate) in candidates.iter().enumerate() {
        if candidate.height() != height {
            resolution.rejected.push((
                index,
                ConsensusError::WrongHeight {
                    expected: height,
                    got: candidate.height(),
                },
            ));
            continue;
        }
        if let Err(e) = candidate.check(chain, validators) {
            resolution.rejected.push((index, e));
            continue;
        }
        let cert = &candidate.certificate;
        let against = local.or(chosen.map(|(_, c)| c));
        if let Some(other) = against
            && other.block_hash != cert.block_hash
        {
            return Err(ConsensusError::SafetyViolation(Box::new(SafetyViolation {
                height,
                first: other.clone(),
                second: cert.clone(),
            })));
        }
        if chosen.is_none() {
            chosen = Some((index, cert));
        }
    }
    if let Some((index, _)) = chosen {
        let parent = candidates
            .get(index)
            .map(|c| c.block.header.parent)
            .unwrap_or(tip);
        if parent != tip {
            return Err(ConsensusError::ParentMismatch {
                height,
                parent,
                tip,
            });
        }
        resolution.accepted = Some(index);
    }
    Ok(resolution)
}
