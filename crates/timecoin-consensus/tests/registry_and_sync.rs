//! The validator registry (set changes at agreed heights) and sync's fork resolution.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{block_on, key};
use timecoin_consensus::{
    CertifiedBlock, ConsensusError, ValidatorRegistry, ValidatorSet, Verified, resolve_height,
};
use timecoin_crypto::SecretKey;
use timecoin_types::{
    Block, CommitCertificate, Genesis, MasternodeRegistration, OutPoint, Tier, Transaction, TxId,
    TxIn, TxKind, Vote, VotePhase, WellFormedBlock, Wire,
};

fn tx(kind: TxKind, payer: &SecretKey, prevout: OutPoint) -> Transaction {
    Transaction {
        version: 1,
        inputs: vec![TxIn {
            prevout,
            public_key: payer.public_key(),
            signature: timecoin_crypto::Signature::from_bytes([0; 64]),
        }],
        outputs: vec![],
        kind,
    }
}

fn outpoint(n: u8) -> OutPoint {
    OutPoint {
        txid: TxId(timecoin_types::Hash::from_bytes([n; 32])),
        vout: 0,
    }
}

/// The same header fields over another body, sealed (its roots and so its hash follow the body).
fn with_transactions(block: WellFormedBlock, transactions: Vec<Transaction>) -> WellFormedBlock {
    let mut block = block.into_block();
    block.transactions = transactions;
    block.seal()
}

/// Finalizes empty blocks (or `with` at `at`) up to `height`.
fn finalize_to(
    registry: &ValidatorRegistry,
    genesis: &Genesis,
    height: u64,
    at: u64,
    with: &[Transaction],
) {
    let mut parent = genesis.block();
    for h in registry.finalized_height() + 1..=height {
        let mut b = block_on(&parent, h, 0, &key(0), 0);
        if h == at {
            b = with_transactions(b, with.to_vec());
        }
        registry.on_finalized(&b).unwrap();
        parent = b;
    }
}

#[test]
fn a_registration_takes_effect_delay_blocks_after_its_block_on_every_node() {
    let genesis = Genesis::local(4);
    assert_eq!(genesis.params.validator_set_delay, 2);
    let newcomer = SecretKey::from_seed(&[77; 32]);
    let reg = tx(
        TxKind::RegisterMasternode(MasternodeRegistration {
            tier: Tier::Silver,
            collateral: Some(outpoint(9)),
            operator_key: newcomer.public_key(),
        }),
        &key(0),
        outpoint(1),
    );
    let a = ValidatorRegistry::from_genesis(&genesis).unwrap();
    let b = ValidatorRegistry::from_genesis(&genesis).unwrap();
    finalize_to(&a, &genesis, 5, 5, std::slice::from_ref(&reg));
    finalize_to(&b, &genesis, 5, 5, &[reg]);
    // Block 5 registers; heights 6 and 7 are still decided by the old set; 7 = 5 + delay switches.
    assert!(!a.set_for(6).unwrap().contains(&newcomer.public_key()));
    let at7 = a.set_for(7).unwrap();
    assert!(at7.contains(&newcomer.public_key()));
    assert_eq!(at7.total_weight(), 4 * 10 + 25);
    assert_eq!(a.set_for(7), b.set_for(7), "every node agrees");
    assert!(
        a.set_for(8).is_none(),
        "beyond finalized + delay is unknown"
    );
    assert_eq!(*a.current(), *a.set_for(6).unwrap());
    finalize_to(&a, &genesis, 6, 0, &[]);
    assert!(
        a.current().contains(&newcomer.public_key()),
        "the set for 7 is now current"
    );
}

#[test]
fn deregistration_needs_the_owner_and_spending_collateral_deregisters() {
    let genesis = Genesis::local(4);
    let registry = ValidatorRegistry::from_genesis(&genesis).unwrap();
    let target = key(3).public_key();
    let by_stranger = tx(
        TxKind::DeregisterMasternode {
            operator_key: target,
        },
        &key(1),
        outpoint(1),
    );
    finalize_to(&registry, &genesis, 1, 1, &[by_stranger]);
    assert!(
        registry.set_for(3).unwrap().contains(&target),
        "only its owner may deregister it"
    );
    let by_owner = tx(
        TxKind::DeregisterMasternode {
            operator_key: target,
        },
        &key(3),
        outpoint(2),
    );
    finalize_to(&registry, &genesis, 2, 2, &[by_owner]);
    assert!(registry.set_for(3).unwrap().contains(&target));
    assert!(!registry.set_for(4).unwrap().contains(&target));

    // A registered Bronze with collateral; spending that output removes it.
    let node = SecretKey::from_seed(&[5; 32]);
    let reg = tx(
        TxKind::RegisterMasternode(MasternodeRegistration {
            tier: Tier::Bronze,
            collateral: Some(outpoint(50)),
            operator_key: node.public_key(),
        }),
        &key(0),
        outpoint(3),
    );
    finalize_to(&registry, &genesis, 3, 3, &[reg]);
    assert!(registry.set_for(5).unwrap().contains(&node.public_key()));
    let spend = tx(TxKind::Transfer, &key(0), outpoint(50));
    finalize_to(&registry, &genesis, 4, 4, &[spend]);
    assert!(!registry.set_for(6).unwrap().contains(&node.public_key()));
}

#[test]
fn the_registry_refuses_blocks_out_of_order_and_never_empties_the_set() {
    let genesis = Genesis::local(1);
    let registry = ValidatorRegistry::from_genesis(&genesis).unwrap();
    let b2 = block_on(&genesis.block(), 2, 0, &key(0), 0);
    assert!(matches!(
        registry.on_finalized(&b2),
        Err(ConsensusError::RegistryOutOfOrder {
            expected: 1,
            got: 2
        })
    ));
    let only = key(0).public_key();
    let leave = tx(
        TxKind::DeregisterMasternode { operator_key: only },
        &key(0),
        outpoint(1),
    );
    finalize_to(&registry, &genesis, 1, 1, &[leave]);
    assert!(registry.set_for(3).unwrap().contains(&only));
}

/// A Free-tier registration of a key derived from `h`, paid by validator 0.
fn free_registration(h: u64) -> Transaction {
    let k = SecretKey::from_seed(&[h as u8 + 100; 32]);
    tx(
        TxKind::RegisterMasternode(MasternodeRegistration {
            tier: Tier::Free,
            collateral: None,
            operator_key: k.public_key(),
        }),
        &key(0),
        outpoint(h as u8),
    )
}

#[test]
fn registry_history_is_bounded() {
    let genesis = Genesis::local(4);
    let registry = ValidatorRegistry::from_genesis(&genesis).unwrap();
    let mut parent = genesis.block();
    for h in 1..=40u64 {
        let b = with_transactions(
            block_on(&parent, h, 0, &key(0), 0),
            vec![free_registration(h)],
        );
        registry.on_finalized(&b).unwrap();
        parent = b;
    }
    assert!(registry.set_for(10).is_none(), "old sets are forgotten");
    assert_eq!(registry.set_for(42).unwrap().len(), 4 + 40);
}

struct Chain {
    genesis: Genesis,
    set: ValidatorSet,
}

impl Chain {
    fn new() -> Chain {
        let genesis = Genesis::local(4);
        let set = ValidatorSet::from_genesis(&genesis).unwrap();
        Chain { genesis, set }
    }

    fn certify(&self, block: &WellFormedBlock, signers: &[usize]) -> CertifiedBlock {
        let chain = self.genesis.params.chain_id;
        let mut signatures: Vec<_> = signers
            .iter()
            .map(|i| {
                let v = Vote::sign(
                    &key(*i),
                    chain,
                    VotePhase::Commit,
                    block.header.height,
                    0,
                    Some(block.hash()),
                );
                (v.voter, v.signature)
            })
            .collect();
        signatures.sort_by_key(|s| s.0);
        CertifiedBlock {
            block: block.clone(),
            certificate: CommitCertificate {
                height: block.header.height,
                view: 0,
                block_hash: block.hash(),
                signatures,
            },
        }
    }
}

#[test]
fn sync_accepts_a_certified_block_and_rejects_uncertified_ones() {
    let c = Chain::new();
    let chain = c.genesis.params.chain_id;
    let tip = c.genesis.block();
    let good = block_on(&tip, 1, 0, &key(0), 0);
    let weak = c.certify(&block_on(&tip, 1, 0, &key(0), 7), &[0, 1]);
    let wrong_height = c.certify(&block_on(&tip, 2, 0, &key(0), 0), &[0, 1, 2]);
    let mut other = good.clone().into_block();
    other.header.timestamp_ms += 1;
    let mismatched = CertifiedBlock {
        block: other.seal(),
        certificate: c.certify(&good, &[0, 1, 2]).certificate,
    };
    let candidates = vec![weak, wrong_height, mismatched, c.certify(&good, &[1, 2, 3])];
    let r = resolve_height(chain, &c.set, 1, tip.hash(), None, &candidates).unwrap();
    assert_eq!(r.accepted, Some(3));
    assert_eq!(r.rejected.len(), 3);
    assert!(matches!(
        r.rejected[0].1,
        ConsensusError::InsufficientWeight { .. }
    ));
    assert!(matches!(
        r.rejected[1].1,
        ConsensusError::WrongHeight { .. }
    ));
    assert!(matches!(
        r.rejected[2].1,
        ConsensusError::CertificateMismatch { .. }
    ));
    // Two certificates for the same block (different signers) are no conflict.
    let again = vec![c.certify(&good, &[0, 1, 2]), c.certify(&good, &[1, 2, 3])];
    assert_eq!(
        resolve_height(chain, &c.set, 1, tip.hash(), None, &again)
            .unwrap()
            .accepted,
        Some(0)
    );
}

#[test]
fn two_valid_certificates_for_one_height_are_a_safety_violation_never_a_choice() {
    let c = Chain::new();
    let chain = c.genesis.params.chain_id;
    let tip = c.genesis.block();
    let a = c.certify(&block_on(&tip, 1, 0, &key(0), 1), &[0, 1, 2]);
    let b = c.certify(&block_on(&tip, 1, 0, &key(0), 2), &[1, 2, 3]);
    let err =
        resolve_height(chain, &c.set, 1, tip.hash(), None, &[a.clone(), b.clone()]).unwrap_err();
    let ConsensusError::SafetyViolation(v) = err else {
        panic!("{err:?}")
    };
    assert_eq!(v.height, 1);
    let mut both = vec![key(1).public_key(), key(2).public_key()];
    both.sort();
    assert_eq!(v.offenders(), both, "signers of both certificates");
    // Against our own finalized block too.
    let err = resolve_height(chain, &c.set, 1, tip.hash(), Some(&a.certificate), &[b]).unwrap_err();
    assert!(matches!(err, ConsensusError::SafetyViolation(_)));
}

#[test]
fn a_certified_block_on_another_parent_is_reported() {
    let c = Chain::new();
    let chain = c.genesis.params.chain_id;
    let tip = c.genesis.block();
    let elsewhere = block_on(&block_on(&tip, 1, 0, &key(0), 9), 2, 0, &key(0), 0);
    let ours = block_on(&tip, 1, 0, &key(0), 1);
    let err = resolve_height(
        chain,
        &c.set,
        2,
        ours.hash(),
        None,
        &[c.certify(&elsewhere, &[0, 1, 2])],
    )
    .unwrap_err();
    assert!(matches!(err, ConsensusError::ParentMismatch { .. }));
}

/// Issue 11, sync path: a relay keeps a genuine header and certificate and swaps the body for one that
/// registers a Gold masternode. Before bodies were bound, this decoded, passed
/// `Verified::<CertifiedBlock>::verify`, and "the same" block gave a registry of weight 40 on one node and
/// 90 on another.
#[test]
fn a_certified_block_with_a_swapped_body_never_decodes_so_registries_cannot_diverge() {
    let c = Chain::new();
    let chain = c.genesis.params.chain_id;
    let genuine = c.certify(&block_on(&c.genesis.block(), 1, 0, &key(0), 0), &[0, 1, 2]);
    let gold = SecretKey::from_seed(&[50; 32]);
    let registration = tx(
        TxKind::RegisterMasternode(MasternodeRegistration {
            tier: Tier::Gold,
            collateral: Some(outpoint(1)),
            operator_key: gold.public_key(),
        }),
        &key(0),
        outpoint(2),
    );
    let forged_body = Block {
        header: genuine.block.header.clone(),
        transactions: vec![registration],
    };
    // The forgery on the wire: the same layout as a certified block.
    let bytes = timecoin_types::codec::encode(&(&forged_body, &genuine.certificate));
    let decoded = CertifiedBlock::decode(&bytes);
    assert!(
        decoded.is_err(),
        "a swapped body must not decode: {decoded:?}"
    );
    assert_eq!(
        WellFormedBlock::check(forged_body),
        Err(timecoin_types::TypesError::TxRootMismatch)
    );

    // The genuine bytes decode and verify, and every node that applies them gets the same registry.
    let decoded = CertifiedBlock::decode(&genuine.encode()).unwrap();
    let verified = Verified::<CertifiedBlock>::verify(decoded, chain, &c.set).unwrap();
    let (one, two) = (
        ValidatorRegistry::from_genesis(&c.genesis).unwrap(),
        ValidatorRegistry::from_genesis(&c.genesis).unwrap(),
    );
    one.on_finalized(&verified.block).unwrap();
    two.on_finalized(&genuine.block).unwrap();
    let later = 1 + c.genesis.params.validator_set_delay;
    assert_eq!(
        one.set_for(later).unwrap().total_weight(),
        two.set_for(later).unwrap().total_weight()
    );
    assert_eq!(one.set_for(later).unwrap().total_weight(), 40);
}

/// Every set a registry answers for, from far below its history to past what it knows.
fn answers(registry: &ValidatorRegistry) -> Vec<Option<std::sync::Arc<ValidatorSet>>> {
    let top = registry.finalized_height() + 4;
    (0..=top).map(|h| registry.set_for(h)).collect()
}

#[test]
fn a_registry_restored_from_its_last_snapshot_answers_as_the_replayed_one_at_every_height() {
    let genesis = Genesis::local(4);
    let delay = genesis.params.validator_set_delay;
    let live = ValidatorRegistry::from_genesis(&genesis).unwrap();
    let mut parent = genesis.block();
    let mut last_snapshot = None;
    // Registrations at a few heights, close enough that several changes are pending at once and far
    // enough apart that history is trimmed between them.
    let changes_at = [3u64, 4, 9, 10, 11, 25, 26, 27, 28, 29, 30, 31, 32, 33, 40];
    for h in 1..=50u64 {
        let mut b = block_on(&parent, h, 0, &key(0), 0);
        if changes_at.contains(&h) {
            b = with_transactions(b, vec![free_registration(h)]);
        }
        let update = live.prepare(&b).unwrap();
        let snapshot = update.snapshot();
        assert_eq!(snapshot.is_some(), changes_at.contains(&h));
        if let Some(s) = snapshot {
            // What a store keeps: the encoding.
            last_snapshot =
                Some(timecoin_consensus::RegistrySnapshot::decode(&s.encode()).unwrap());
        }
        live.commit(update);
        let restored = match &last_snapshot {
            Some(s) => ValidatorRegistry::restore(s.clone(), h, delay).unwrap(),
            None => ValidatorRegistry::new(ValidatorSet::from_genesis(&genesis).unwrap(), h, delay),
        };
        assert_eq!(answers(&restored), answers(&live), "height {h}");
        assert_eq!(restored.current(), live.current(), "height {h}");
        parent = b;
    }
    // A snapshot newer than the tip, or one with its sets out of order, is refused.
    let s = last_snapshot.unwrap();
    assert!(ValidatorRegistry::restore(s.clone(), s.finalized - 1, delay).is_err());
    let mut shuffled = s.clone();
    shuffled.sets.reverse();
    assert!(ValidatorRegistry::restore(shuffled, s.finalized, delay).is_err());
}

/// What a state-syncing node does: it follows the chain from headers alone, asking for a body only
/// when the header's schedule hash changed. Its registry must commit to the same hash as the live one
/// at every height, and a body withheld where one was needed must show as a mismatch.
#[test]
fn a_registry_following_headers_matches_the_schedule_hash_the_live_one_commits_to() {
    let genesis = Genesis::local(4);
    let live = ValidatorRegistry::from_genesis(&genesis).unwrap();
    let follower = ValidatorRegistry::from_genesis(&genesis).unwrap();
    let mut parent = genesis.block();
    let mut previous_hash = live.schedule_hash();
    let changes_at = [3u64, 4, 9, 10, 11, 25, 26, 27, 40];
    let mut bodies_needed = 0;
    for h in 1..=50u64 {
        let mut b = block_on(&parent, h, 0, &key(0), 0);
        if changes_at.contains(&h) {
            b = with_transactions(b, vec![free_registration(h)]);
        }
        let update = live.prepare(&b).unwrap();
        let committed = update.schedule_hash();
        live.commit(update);
        assert_eq!(committed, live.schedule_hash());
        // The follower: a body only where the hash moved.
        let followed = if committed == previous_hash {
            follower.prepare_unchanged(h).unwrap()
        } else {
            bodies_needed += 1;
            // Withholding the body of a block that changed the membership is caught.
            if changes_at.contains(&h) {
                assert_ne!(
                    follower.prepare_unchanged(h).unwrap().schedule_hash(),
                    committed,
                    "height {h}: a missing body went unnoticed"
                );
            }
            follower.prepare(&b).unwrap()
        };
        assert_eq!(followed.schedule_hash(), committed, "height {h}");
        follower.commit(followed);
        // A registry restored from the follower's state, with no history, commits to the same hash.
        let restored =
            ValidatorRegistry::restore(follower.snapshot(), h, genesis.params.validator_set_delay)
                .unwrap();
        assert_eq!(restored.schedule_hash(), committed, "height {h}");
        previous_hash = committed;
        parent = b;
    }
    // Each change moves the hash twice (scheduled, then in force); the rest of the chain needs no body.
    assert!(bodies_needed <= 2 * changes_at.len() + 1, "{bodies_needed}");
}
