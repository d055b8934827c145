//! The validator set of one height: members, weights, quorum arithmetic, the leader of each view, and
//! commit-certificate verification.

use serde::{Deserialize, Serialize};
use timecoin_crypto::{
    Address, BatchItem, ChainId, HashDomain, PublicKey, SigDomain, Signature, hash, verify_batch,
};
use timecoin_types::{
    CommitCertificate, Genesis, Height, MAX_VALIDATORS, OutPoint, Proposal, Tier, View, Vote,
    VotePhase,
};

use crate::ConsensusError;

/// One member of a validator set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    /// The key it signs proposals and votes with.
    pub key: PublicKey,
    /// Its tier; the weight is [`Tier::weight`].
    pub tier: Tier,
    /// Who may deregister it.
    pub owner: Address,
    /// The output locked as collateral (`None` for [`Tier::Free`] and genesis validators); spending it
    /// deregisters the validator.
    pub collateral: Option<OutPoint>,
}

impl Validator {
    /// Voting weight.
    pub fn weight(&self) -> u64 {
        self.tier.weight()
    }
}

/// An immutable snapshot of the validators of one height, sorted by key.
///
/// Shared as `Arc<ValidatorSet>`; a change of membership makes a new set (see
/// [`ValidatorRegistry`](crate::ValidatorRegistry)). Holds at most [`MAX_VALIDATORS`] members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    members: Vec<Validator>,
    /// `cumulative[i]` = weight of members `0..=i`; the leader lottery walks it.
    cumulative: Vec<u64>,
    total_weight: u64,
    /// The last member's key: a non-empty set always has one, so [`ValidatorSet::leader`] needs no panic.
    last_key: PublicKey,
}

impl Serialize for ValidatorSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.members.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ValidatorSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let members = Vec::<Validator>::deserialize(d)?;
        ValidatorSet::new(members).map_err(serde::de::Error::custom)
    }
}

impl ValidatorSet {
    /// Builds a set; members are sorted by key. Fails on an empty set, a repeated key, or more than
    /// [`MAX_VALIDATORS`] members.
    pub fn new(mut members: Vec<Validator>) -> Result<Self, ConsensusError> {
        if members.is_empty() {
            return Err(ConsensusError::EmptyValidatorSet);
        }
        if members.len() > MAX_VALIDATORS {
            return Err(ConsensusError::TooManyValidators {
                count: members.len(),
                max: MAX_VALIDATORS,
            });
        }
        members.sort_by_key(|a| a.key);
        for pair in members.windows(2) {
            if let [a, b] = pair
                && a.key == b.key
            {
                return Err(ConsensusError::DuplicateValidator {
                    key: Box::new(a.key),
                });
            }
        }
        let last_key = match members.last() {
            Some(m) => m.key,
            None => return Err(ConsensusError::EmptyValidatorSet),
        };
        let mut cumulative = Vec::with_capacity(members.len());
        let mut total = 0u64;
        for m in &members {
            total += m.weight();
            cumulative.push(total);
        }
        Ok(ValidatorSet {
            members,
            cumulative,
            total_weight: total,
            last_key,
        })
    }

    /// The genesis validators.
    pub fn from_genesis(genesis: &Genesis) -> Result<Self, ConsensusError> {
        ValidatorSet::new(
            genesis
                .validators
                .iter()
                .map(|v| Validator {
                    key: v.operator_key,
                    tier: v.tier,
                    owner: v.owner,
                    collateral: None,
                })
                .collect(),
        )
    }

    /// Members, sorted by key.
    pub fn members(&self) -> &[Validator] {
        &self.members
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Never true for a constructed set; present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sum of all weights.
    pub fn total_weight(&self) -> u64 {
        self.total_weight
    }

    /// The member with this key.
    pub fn get(&self, key: &PublicKey) -> Option<&Validator> {
        self.members
            .binary_search_by(|m| m.key.cmp(key))
            .ok()
            .and_then(|i| self.members.get(i))
    }

    /// Weight of a member, `None` for a non-member.
    pub fn weight_of(&self, key: &PublicKey) -> Option<u64> {
        self.get(key).map(Validator::weight)
    }

    /// Whether `key` is a member.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.get(key).is_some()
    }

    /// Strictly more than 2/3 of the total weight (`3·w > 2·total`, in integers): Tendermint's `2f + 1`.
    pub fn is_quorum(&self, weight: u64) -> bool {
        3 * u128::from(weight) > 2 * u128::from(self.total_weight)
    }

    /// Strictly more than 1/3 of the total weight: Tendermint's `f + 1`, enough to contain one honest
    /// validator when faulty weight is below 1/3.
    pub fn is_one_third(&self, weight: u64) -> bool {
        3 * u128::from(weight) > u128::from(self.total_weight)
    }

    /// The leader of `(height, view)`: a point drawn by hashing `(height, view)` into `[0, total_weight)`
    /// selects the member whose weight interval holds it, so a member leads in proportion to its weight
    /// and every node computes the same leader.
    pub fn leader(&self, height: Height, view: View) -> &PublicKey {
        let mut bytes = [0u8; 12];
        let (h, v) = bytes.split_at_mut(8);
        h.copy_from_slice(&height.to_le_bytes());
        v.copy_from_slice(&view.to_le_bytes());
        let digest = hash(
            HashDomain::Custom("timecoin 2026-11 leader lottery v1"),
            &bytes,
        );
        let mut wide = [0u8; 16];
        wide.copy_from_slice(digest.as_ref().get(..16).unwrap_or(&[0u8; 16]));
        // 128 random bits modulo a weight below 2^40 leaves a bias under 2^-88.
        let point = (u128::from_le_bytes(wide) % u128::from(self.total_weight.max(1))) as u64;
        let index = self.cumulative.partition_point(|&c| c <= point);
        // `point < total_weight = last cumulative`, so `index` is always in range; the fallback keeps the
        // function total without a panic path.
        self.members.get(index).map_or(&self.last_key, |m| &m.key)
    }

    /// Checks a commit certificate against this set: voters strictly sorted (so none twice), all members,
    /// more than 2/3 of the weight, and every signature valid (checked as one batch).
    pub fn verify_certificate(
        &self,
        certificate: &CommitCertificate,
        chain: ChainId,
    ) -> Result<(), ConsensusError> {
        self.verify_quorum_signatures(
            &certificate.signatures,
            &certificate.signing_message(),
            chain,
        )
    }

    /// Checks a re-proposal's proof of lock: it names a view below the proposal's, and its signatures
    /// are Prepares of more than 2/3 of this set's weight for the proposed block in that view. A proposal
    /// without a proof passes (the node may hold the Prepares itself); a proof without a `valid_view`
    /// does not.
    pub fn verify_lock_proof(
        &self,
        proposal: &Proposal,
        chain: ChainId,
    ) -> Result<(), ConsensusError> {
        let Some(proof) = &proposal.lock_proof else {
            return Ok(());
        };
        let Some(valid_view) = proposal.valid_view else {
            return Err(ConsensusError::InvalidLockProof {
                reason: "a proof of lock on a proposal that names no valid view",
            });
        };
        if valid_view >= proposal.view {
            return Err(ConsensusError::InvalidLockProof {
                reason: "the proof's view is not below the proposal's",
            });
        }
        let message = Vote::signing_message(
            VotePhase::Prepare,
            proposal.height,
            valid_view,
            Some(proposal.block.hash()),
        );
        self.verify_quorum_signatures(&proof.signatures, &message, chain)
    }

    /// Sorted, distinct members holding more than 2/3 of the weight, each with a valid Vote-domain
    /// signature over `message` (one batch).
    fn verify_quorum_signatures(
        &self,
        signatures: &[(PublicKey, Signature)],
        message: &[u8],
        chain: ChainId,
    ) -> Result<(), ConsensusError> {
        if signatures.len() > self.members.len() {
            // More signatures than members means a repeat or a stranger; refuse before any work.
            return Err(ConsensusError::CertificateNotSorted);
        }
        let mut weight = 0u64;
        let mut previous: Option<&PublicKey> = None;
        for (voter, _) in signatures {
            if previous.is_some_and(|p| p >= voter) {
                return Err(ConsensusError::CertificateNotSorted);
            }
            previous = Some(voter);
            weight += self.weight_of(voter).ok_or(ConsensusError::NotAValidator {
                key: Box::new(*voter),
            })?;
        }
        if !self.is_quorum(weight) {
            return Err(ConsensusError::InsufficientWeight {
                have: weight,
                total: self.total_weight,
            });
        }
        let items: Vec<BatchItem<'_>> = signatures
            .iter()
            .map(|(key, signature)| BatchItem {
                key,
                domain: SigDomain::Vote,
                chain,
                message,
                signature,
            })
            .collect();
        verify_batch(&items)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_crypto::SecretKey;
    use timecoin_types::{BlockHash, Hash, Vote, VotePhase};

    fn member(seed: u8, tier: Tier) -> (SecretKey, Validator) {
        let sk = SecretKey::from_seed(&[seed; 32]);
        let key = sk.public_key();
        (
            sk,
            Validator {
                key,
                tier,
                owner: Address::from_public_key(&key),
                collateral: None,
            },
        )
    }

    #[test]
    fn quorum_is_strictly_more_than_two_thirds() {
        let set = ValidatorSet::new((1..=3).map(|i| member(i, Tier::Bronze).1).collect()).unwrap();
        assert_eq!(set.total_weight(), 30);
        assert!(!set.is_quorum(20), "exactly 2/3 is not a quorum");
        assert!(set.is_quorum(21));
        assert!(!set.is_one_third(10), "exactly 1/3 is not f+1");
        assert!(set.is_one_third(11));
    }

    #[test]
    fn empty_and_duplicate_sets_are_refused() {
        assert_eq!(
            ValidatorSet::new(vec![]),
            Err(ConsensusError::EmptyValidatorSet)
        );
        let (_, a) = member(1, Tier::Gold);
        assert!(matches!(
            ValidatorSet::new(vec![a.clone(), a]),
            Err(ConsensusError::DuplicateValidator { .. })
        ));
    }

    #[test]
    fn leader_frequency_follows_weight() {
        let (_, gold) = member(1, Tier::Gold);
        let bronzes: Vec<_> = (2..=6).map(|i| member(i, Tier::Bronze).1).collect();
        let mut all = bronzes.clone();
        all.push(gold.clone());
        let set = ValidatorSet::new(all).unwrap();
        // Gold weighs 50 of 100.
        let gold_turns = (0..10_000u32)
            .filter(|v| *set.leader(7, *v) == gold.key)
            .count();
        assert!((4_500..5_500).contains(&gold_turns), "{gold_turns}");
        // Deterministic.
        assert_eq!(set.leader(3, 4), set.clone().leader(3, 4));
    }

    #[test]
    fn certificate_needs_quorum_sorted_members_and_valid_signatures() {
        let chain = ChainId(9);
        let members: Vec<_> = (1..=4).map(|i| member(i, Tier::Bronze)).collect();
        let set = ValidatorSet::new(members.iter().map(|m| m.1.clone()).collect()).unwrap();
        let block = BlockHash(Hash::from_bytes([7; 32]));
        let mut sigs: Vec<_> = members
            .iter()
            .map(|(sk, _)| {
                let v = Vote::sign(sk, chain, VotePhase::Commit, 5, 1, Some(block));
                (v.voter, v.signature)
            })
            .collect();
        sigs.sort_by_key(|a| a.0);
        let cert = CommitCertificate {
            height: 5,
            view: 1,
            block_hash: block,
            signatures: sigs.clone(),
        };
        assert_eq!(set.verify_certificate(&cert, chain), Ok(()));
        assert!(set.verify_certificate(&cert, ChainId(10)).is_err());

        let two = CommitCertificate {
            signatures: sigs[..2].to_vec(),
            ..cert.clone()
        };
        assert!(matches!(
            set.verify_certificate(&two, chain),
            Err(ConsensusError::InsufficientWeight {
                have: 20,
                total: 40
            })
        ));
        let mut dup = cert.clone();
        dup.signatures[1] = dup.signatures[0];
        assert_eq!(
            set.verify_certificate(&dup, chain),
            Err(ConsensusError::CertificateNotSorted)
        );
        let mut forged = cert.clone();
        forged.view = 2;
        assert!(matches!(
            set.verify_certificate(&forged, chain),
            Err(ConsensusError::BadSignature(_))
        ));
    }
}
