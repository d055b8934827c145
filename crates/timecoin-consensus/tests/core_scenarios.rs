//! One core fed hand-made messages from the other validators: locking, re-proposal, equivocation,
//! restart from the WAL, view skipping, buffering and bounds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;

use common::{block_on, key, proposal, vote};
use timecoin_consensus::{
    CertifiedBlock, Config, ConsensusError, Core, Evidence, Input, MAX_PINNED_VIEWS, Message,
    Output, Step, Timeout, TimeoutKind, ValidatorSet, ValueAt, Verified, WalEntry,
};
use timecoin_crypto::{ChainId, PublicKey, SecretKey, Signature};
use timecoin_types::{
    Amount, Block, Genesis, Height, LockProof, Proposal, TxBuilder, View, Vote, VotePhase,
    WellFormedBlock, Wire,
};

use VotePhase::{Commit, Prepare};

/// A core under test among four Bronze validators.
struct Rig {
    chain: ChainId,
    config: Config,
    validators: Arc<ValidatorSet>,
    genesis_block: WellFormedBlock,
    me: usize,
    core: Core,
}

impl Rig {
    fn new(me: usize) -> Rig {
        Rig::with_config(me, |_| {})
    }

    fn with_config(me: usize, tweak: impl FnOnce(&mut Config)) -> Rig {
        let genesis = Genesis::local(4);
        let chain = genesis.params.chain_id;
        let mut config = Config::new(chain);
        tweak(&mut config);
        Rig {
            chain,
            validators: Arc::new(ValidatorSet::from_genesis(&genesis).unwrap()),
            genesis_block: genesis.block(),
            me,
            core: Core::new(config.clone(), key(me)),
            config,
        }
    }

    fn index_of(&self, pk: &PublicKey) -> usize {
        (0..4).find(|i| key(*i).public_key() == *pk).unwrap()
    }

    fn leader(&self, height: Height, view: View) -> usize {
        self.index_of(self.validators.leader(height, view))
    }

    /// The other validators, `me` excluded.
    fn others(&self) -> Vec<usize> {
        (0..4).filter(|i| *i != self.me).collect()
    }

    fn start(&mut self, height: Height) -> Vec<Output> {
        self.core.handle(Input::StartHeight {
            height,
            validators: self.validators.clone(),
        })
    }

    fn block(&self, height: Height, view: View, salt: u64) -> WellFormedBlock {
        block_on(&self.genesis_block, height, view, &key(0), salt)
    }

    /// Delivers the leader's proposal of `view` and answers the validity request with `valid`.
    fn propose(
        &mut self,
        height: Height,
        view: View,
        valid_view: Option<View>,
        block: &WellFormedBlock,
        valid: bool,
    ) -> Vec<Output> {
        let leader = key(self.leader(height, view));
        let mut out = self.core.handle(proposal(
            &leader,
            self.chain,
            height,
            view,
            valid_view,
            block.clone(),
        ));
        if out
            .iter()
            .any(|o| matches!(o, Output::RequestValidity { .. }))
        {
            out.extend(self.core.handle(Input::Validity {
                height,
                block_hash: block.hash(),
                valid,
            }));
        }
        out
    }

    fn votes_from(
        &mut self,
        who: &[usize],
        phase: VotePhase,
        height: Height,
        view: View,
        block: Option<&WellFormedBlock>,
    ) -> Vec<Output> {
        let mut out = vec![];
        for i in who {
            out.extend(self.core.handle(vote(
                &key(*i),
                self.chain,
                phase,
                height,
                view,
                block.map(WellFormedBlock::hash),
            )));
        }
        out
    }

    fn timeout(&mut self, height: Height, view: View, kind: TimeoutKind) -> Vec<Output> {
        self.core
            .handle(Input::Timeout(Timeout { height, view, kind }))
    }

    fn round(&self) -> &timecoin_consensus::round::RoundState {
        self.core.round_state().unwrap()
    }

    /// Picks `me` and a height such that `me` does not lead views `0..=1` and leads none of `avoid`.
    fn follower_height(me: usize) -> Height {
        let rig = Rig::new(me);
        (1..1_000)
            .find(|h| rig.leader(*h, 0) != me && rig.leader(*h, 1) != me)
            .unwrap()
    }
}

/// The votes this core broadcast, in order.
fn sent_votes(out: &[Output]) -> Vec<Vote> {
    out.iter()
        .filter_map(|o| match o {
            Output::Broadcast(Message::Vote(v)) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn one_vote(out: &[Output], phase: VotePhase) -> Vote {
    let v: Vec<_> = sent_votes(out)
        .into_iter()
        .filter(|v| v.phase == phase)
        .collect();
    assert_eq!(v.len(), 1, "expected one {phase:?} in {out:#?}");
    v[0].clone()
}

#[test]
fn a_valid_proposal_is_prepared_and_a_prepare_quorum_locks_and_commits() {
    let h = Rig::follower_height(0);
    let mut rig = Rig::new(0);
    rig.start(h);
    let b = rig.block(h, 0, 1);
    let out = rig.propose(h, 0, None, &b, true);
    // L22-L24, persisted before it is sent.
    let prepare = one_vote(&out, Prepare);
    assert_eq!(prepare.block_hash, Some(b.hash()));
    let persist_at = out
        .iter()
        .position(|o| *o == Output::Persist(WalEntry::Voted(prepare.clone())))
        .unwrap();
    let send_at = out
        .iter()
        .position(|o| *o == Output::Broadcast(Message::Vote(prepare.clone())))
        .unwrap();
    assert!(persist_at < send_at, "persist before broadcast");

    // Two more Prepares: 30 of 40 > 2/3 → L36: lock and Commit.
    let others = rig.others();
    let out = rig.votes_from(&others[..1], Prepare, h, 0, Some(&b));
    assert!(sent_votes(&out).is_empty(), "20 of 40 is no quorum");
    let out = rig.votes_from(&others[1..2], Prepare, h, 0, Some(&b));
    assert_eq!(one_vote(&out, Commit).block_hash, Some(b.hash()));
    let locked = Some(ValueAt {
        view: 0,
        block_hash: b.hash(),
    });
    assert_eq!(rig.round().locked, locked);
    assert_eq!(rig.round().valid, locked);
    assert_eq!(rig.round().step, Step::Commit);

    // Commits from two others → L49: decided, with a certificate of exactly three signatures.
    let out = rig.votes_from(&others[..2], Commit, h, 0, Some(&b));
    let decided = out.iter().find_map(|o| match o {
        Output::Decided { block, certificate } => Some((block.clone(), certificate.clone())),
        _ => None,
    });
    let (block, cert) = decided.expect("decided");
    assert_eq!(block, b);
    assert_eq!(cert.signatures.len(), 3);
    rig.validators.verify_certificate(&cert, rig.chain).unwrap();
    assert_eq!(rig.round().step, Step::Finalized);
}

#[test]
fn an_invalid_block_is_prepared_nil() {
    let h = Rig::follower_height(1);
    let mut rig = Rig::new(1);
    rig.start(h);
    let b = rig.block(h, 0, 1);
    let out = rig.propose(h, 0, None, &b, false);
    assert_eq!(one_vote(&out, Prepare).block_hash, None);
}

#[test]
fn a_proposal_from_a_validator_that_does_not_lead_the_view_is_ignored() {
    let h = Rig::follower_height(2);
    let mut rig = Rig::new(2);
    rig.start(h);
    let leader = rig.leader(h, 0);
    let impostor = (0..4).find(|i| *i != leader && *i != 2).unwrap();
    let b = rig.block(h, 0, 1);
    let out = rig
        .core
        .handle(proposal(&key(impostor), rig.chain, h, 0, None, b));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(rig.round().step, Step::PrePrepare);
}

/// A genuine block of `rig`'s leader at `height` carrying one signed transfer, and its proposal.
fn proposal_with_a_transfer(rig: &Rig, height: Height) -> (WellFormedBlock, Proposal) {
    let genesis = Genesis::local(4);
    let (coin, out) = genesis.utxos()[0];
    let transfer = TxBuilder::new(rig.chain)
        .input(coin, out.amount, &key(0))
        .output(
            out.address,
            out.amount.checked_sub(Amount::from_sat(1_000)).unwrap(),
        )
        .sign();
    let mut body = rig.block(height, 0, 3).into_block();
    body.transactions = vec![transfer];
    let genuine = body.seal();
    let leader = key(rig.leader(height, 0));
    let proposal = Proposal::sign(&leader, rig.chain, height, 0, None, genuine.clone());
    (genuine, proposal)
}

/// The wire bytes of `proposal` as a relay would send them after swapping its block for `body` (a
/// `Message::Proposal` is variant 0, then the proposal's fields in order).
fn relayed_with_body(proposal: &Proposal, body: &Block) -> Vec<u8> {
    let mut bytes = vec![0u8];
    bytes.extend(timecoin_types::codec::encode(&(
        proposal.height,
        proposal.view,
        proposal.valid_view,
        body,
        proposal.proposer,
        proposal.signature,
        &proposal.lock_proof,
    )));
    bytes
}

/// Issue 11, proposal path and poisoning. The leader's signature covers the header hash only, and the
/// core caches validity by that hash. Before bodies were bound, a relay could swap the body: the core
/// judged one body and decided another, or, if the swapped copy arrived first, its "invalid" verdict
/// stuck to the hash and the genuine block was refused for the whole height.
#[test]
fn a_proposal_whose_body_a_relay_swapped_never_decodes_and_cannot_poison_the_genuine_one() {
    let h = Rig::follower_height(1);
    let mut rig = Rig::new(1);
    rig.start(h);
    let (genuine, proposal) = proposal_with_a_transfer(&rig, h);
    let genuine_bytes = Message::Proposal(proposal.clone()).encode();
    assert_eq!(relayed_with_body(&proposal, &genuine), genuine_bytes);

    // Swapped signatures (the txids, and so the header hash, stay the same) and swapped transactions.
    let mut resigned = genuine.clone().into_block();
    resigned.transactions[0].inputs[0].signature = Signature::from_bytes([9; 64]);
    assert_eq!(resigned.hash(), genuine.hash());
    let mut emptied = genuine.clone().into_block();
    emptied.transactions.clear();
    for forged in [resigned, emptied] {
        let bytes = relayed_with_body(&proposal, &forged);
        assert!(
            Message::decode(&bytes).is_err(),
            "a proposal with a swapped body decoded"
        );
    }

    // The genuine copy, arriving after the forgeries, is judged on its own body and prepared.
    let message = Message::decode(&genuine_bytes).unwrap();
    let verified = Verified::<Message>::verify(message, rig.chain, &rig.validators).unwrap();
    let out = rig.core.handle(verified.into());
    let judged = out.iter().find_map(|o| match o {
        Output::RequestValidity { block, .. } => Some(block.clone()),
        _ => None,
    });
    assert_eq!(
        judged.as_ref(),
        Some(&genuine),
        "the body judged is the genuine one"
    );
    let out = rig.core.handle(Input::Validity {
        height: h,
        block_hash: genuine.hash(),
        valid: true,
    });
    assert_eq!(one_vote(&out, Prepare).block_hash, Some(genuine.hash()));
}

/// The re-proposal in `out` (made without asking the application), checked to carry a valid proof of
/// lock for its `valid_view`.
fn re_proposal(rig: &Rig, out: &[Output]) -> Proposal {
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::RequestProposal { .. }))
    );
    let p = out
        .iter()
        .find_map(|o| match o {
            Output::Broadcast(Message::Proposal(p)) => Some(p.clone()),
            _ => None,
        })
        .expect("re-proposal");
    assert!(p.lock_proof.is_some(), "a re-proposal carries its proof");
    rig.validators.verify_lock_proof(&p, rig.chain).unwrap();
    p
}

/// Issue 8, finding 3 on one core: a node that counted a double voter's nil in view 0 never sees a
/// Prepare quorum for B there, yet accepts B's re-proposal in view 1 on the proof it carries; a proof
/// short of a quorum, or naming a view not below the proposal's, is refused at the door.
#[test]
fn a_re_proposal_with_its_proof_of_lock_is_accepted_by_a_node_that_never_saw_the_quorum() {
    let me = 1;
    let h = (1..1_000)
        .find(|h| {
            let rig = Rig::new(me);
            rig.leader(*h, 0) != me && rig.leader(*h, 1) != me
        })
        .unwrap();
    let mut rig = Rig::new(me);
    rig.start(h);
    let b = rig.block(h, 0, 5);
    let leader1 = rig.leader(h, 1);
    let double = (0..4).find(|i| *i != me && *i != leader1).unwrap();
    // View 0: no proposal reaches this node; it hears the double voter's nil, then the view ends.
    rig.votes_from(&[double], Prepare, h, 0, None);
    rig.timeout(h, 0, TimeoutKind::Propose);
    let nils: Vec<usize> = (0..4).filter(|i| *i != me).collect();
    rig.votes_from(&nils, Commit, h, 0, None);
    rig.timeout(h, 0, TimeoutKind::Commit);
    assert_eq!(rig.round().view, 1);

    // The three Prepares for B in view 0 that the leader of view 1 holds (the double voter's included).
    let signers: Vec<usize> = (0..4).filter(|i| *i != me).collect();
    let proof_of = |who: &[usize]| {
        let mut signatures: Vec<_> = who
            .iter()
            .map(|i| {
                let v = Vote::sign(&key(*i), rig.chain, Prepare, h, 0, Some(b.hash()));
                (v.voter, v.signature)
            })
            .collect();
        signatures.sort_by_key(|s| s.0);
        LockProof { signatures }
    };
    let leader_key = key(leader1);
    let re_proposal = Proposal::sign(&leader_key, rig.chain, h, 1, Some(0), b.clone());

    // Refused at the door: two signers are no quorum; a proof must name a view below the proposal's.
    let short = re_proposal.clone().with_lock_proof(proof_of(&signers[..2]));
    assert!(matches!(
        Verified::<Proposal>::verify(short, rig.chain, &rig.validators),
        Err(ConsensusError::InsufficientWeight { .. })
    ));
    let same_view = Proposal::sign(&leader_key, rig.chain, h, 1, Some(1), b.clone())
        .with_lock_proof(proof_of(&signers));
    assert!(matches!(
        Verified::<Proposal>::verify(same_view, rig.chain, &rig.validators),
        Err(ConsensusError::InvalidLockProof { .. })
    ));

    // Accepted with the full proof: validity is asked, then this node Prepares B through L28.
    let full = re_proposal.with_lock_proof(proof_of(&signers));
    let verified = Verified::<Proposal>::verify(full, rig.chain, &rig.validators).unwrap();
    let out = rig.core.handle(Input::Proposal(verified));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::RequestValidity { .. })),
        "{out:?}"
    );
    let out = rig.core.handle(Input::Validity {
        height: h,
        block_hash: b.hash(),
        valid: true,
    });
    assert_eq!(one_vote(&out, Prepare).block_hash, Some(b.hash()));
}

/// Locks on B in view 0 while the others Commit nil, then moves to view 1.
fn locked_in_view_0(me: usize) -> (Rig, Height, WellFormedBlock) {
    locked_in_view_0_with(Rig::new(me))
}

/// [`locked_in_view_0`] on a given rig, fresh.
fn locked_in_view_0_with(mut rig: Rig) -> (Rig, Height, WellFormedBlock) {
    let h = Rig::follower_height(rig.me);
    rig.start(h);
    let b = rig.block(h, 0, 1);
    rig.propose(h, 0, None, &b, true);
    let others = rig.others();
    rig.votes_from(&others[..2], Prepare, h, 0, Some(&b));
    assert_eq!(rig.round().locked.map(|l| l.block_hash), Some(b.hash()));
    // The others did not see the quorum and Commit nil; 3 Commits of anything → L47 → timer.
    let out = rig.votes_from(&others[..2], Commit, h, 0, None);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::ScheduleTimeout {
            timeout: Timeout {
                kind: TimeoutKind::Commit,
                ..
            },
            ..
        }
    )));
    rig.timeout(h, 0, TimeoutKind::Commit); // L65 → view 1
    assert_eq!(rig.round().view, 1);
    (rig, h, b)
}

#[test]
fn a_locked_validator_prepares_nil_for_a_different_block_in_a_later_view() {
    let (mut rig, h, b) = locked_in_view_0(3);
    let other = rig.block(h, 1, 2);
    let out = rig.propose(h, 1, None, &other, true);
    // L23: locked on B, so nil for anything else.
    assert_eq!(one_vote(&out, Prepare).block_hash, None);
    assert_eq!(rig.round().locked.map(|l| l.block_hash), Some(b.hash()));
}

#[test]
fn a_locked_validator_prepares_its_locked_block_when_re_proposed() {
    let (mut rig, h, b) = locked_in_view_0(3);
    // L28-L30: re-proposal of B with proof-of-lock view 0, whose Prepare quorum this node holds.
    let out = rig.propose(h, 1, Some(0), &b, true);
    assert_eq!(one_vote(&out, Prepare).block_hash, Some(b.hash()));
}

#[test]
fn a_newer_prepare_quorum_unlocks_a_validator() {
    let (mut rig, h, b) = locked_in_view_0(0);
    // View 1: everyone else Prepares C, which this node (locked on B) refuses …
    let c = rig.block(h, 1, 3);
    let out = rig.propose(h, 1, None, &c, true);
    assert_eq!(one_vote(&out, Prepare).block_hash, None);
    let others = rig.others();
    let out = rig.votes_from(&others, Prepare, h, 1, Some(&c));
    assert_eq!(one_vote(&out, Commit).block_hash, Some(c.hash()));
    // … but a Prepare quorum for C in a newer view than its lock moves the lock (L36-L39: the node is in
    // the Prepare step, having Prepared nil) and makes C the valid value (L42).
    assert_eq!(
        rig.round().valid,
        Some(ValueAt {
            view: 1,
            block_hash: c.hash()
        })
    );
    assert_eq!(
        rig.round().locked,
        Some(ValueAt {
            view: 1,
            block_hash: c.hash()
        })
    );
    assert_ne!(b.hash(), c.hash());
}

#[test]
fn a_proof_of_lock_older_than_the_lock_does_not_unlock() {
    let (mut rig, h, _b) = locked_in_view_0(1);
    // Move to view 2 through nil quorums in view 1.
    let others = rig.others();
    rig.timeout(h, 1, TimeoutKind::Propose);
    rig.votes_from(&others, Prepare, h, 1, None);
    rig.votes_from(&others, Commit, h, 1, None);
    rig.timeout(h, 1, TimeoutKind::Commit);
    let view = rig.round().view;
    assert_eq!(view, 2);
    // A re-proposal of D claiming proof-of-lock view 0, with no Prepare quorum for D in view 0: L28 does
    // not hold, so the node waits for the propose timer instead of Preparing.
    let d = rig.block(h, 0, 4);
    let out = rig.propose(h, 2, Some(0), &d, true);
    assert!(sent_votes(&out).is_empty(), "{out:?}");
    let out = rig.timeout(h, 2, TimeoutKind::Propose);
    assert_eq!(one_vote(&out, Prepare).block_hash, None);
}

#[test]
fn the_leader_re_proposes_its_valid_block_with_its_view() {
    // Find a validator that does not lead view 0 but leads view 1 of some height.
    let genesis_rig = Rig::new(0);
    let (me, h) = (0..4)
        .flat_map(|me| (1..1_000u64).map(move |h| (me, h)))
        .find(|(me, h)| genesis_rig.leader(*h, 0) != *me && genesis_rig.leader(*h, 1) == *me)
        .unwrap();
    let mut rig = Rig::new(me);
    rig.start(h);
    let b = rig.block(h, 0, 1);
    rig.propose(h, 0, None, &b, true);
    let others = rig.others();
    rig.votes_from(&others[..2], Prepare, h, 0, Some(&b));
    rig.votes_from(&others[..2], Commit, h, 0, None);
    let out = rig.timeout(h, 0, TimeoutKind::Commit);
    // L15-L16, L19: the proposal of view 1 is B with valid_view 0, without asking the application.
    let p = re_proposal(&rig, &out);
    assert_eq!(
        (p.view, p.valid_view, p.block.hash()),
        (1, Some(0), b.hash())
    );
    // And it Prepares its own re-proposal through L28.
    assert_eq!(one_vote(&out, Prepare).block_hash, Some(b.hash()));
}

#[test]
fn a_double_vote_is_evidence_and_its_weight_counts_once() {
    let h = Rig::follower_height(0);
    let mut rig = Rig::new(0);
    rig.start(h);
    let b = rig.block(h, 0, 1);
    rig.propose(h, 0, None, &b, true); // me: Prepare B (10)
    let [x, y, _] = rig.others()[..] else {
        panic!()
    };
    rig.votes_from(&[x], Prepare, h, 0, None); // x: nil
    let out = rig.votes_from(&[x], Prepare, h, 0, Some(&b)); // x again: B
    let evidence: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Evidence(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(evidence.len(), 1);
    let e = &evidence[0];
    assert!(matches!(e, Evidence::DoubleVote { .. }));
    assert_eq!(e.offender(), key(x).public_key());
    e.verify(rig.chain).unwrap();
    assert_eq!(Evidence::decode(&e.encode()).unwrap(), *e);
    assert_eq!(rig.core.evidence().count(), 1);
    // B holds me (10) + y (10) = 20, x's second vote did not count: still no quorum.
    let out = rig.votes_from(&[y], Prepare, h, 0, Some(&b));
    assert!(sent_votes(&out).is_empty(), "x counted twice: {out:?}");
    // A third conflicting vote of x is not reported again.
    let out = rig.votes_from(&[x], Prepare, h, 0, Some(&rig.block(h, 0, 9)));
    assert!(!out.iter().any(|o| matches!(o, Output::Evidence(_))));
}

#[test]
fn a_double_proposal_is_evidence() {
    let h = Rig::follower_height(0);
    let mut rig = Rig::new(0);
    rig.start(h);
    let leader = key(rig.leader(h, 0));
    let (b1, b2) = (rig.block(h, 0, 1), rig.block(h, 0, 2));
    rig.core
        .handle(proposal(&leader, rig.chain, h, 0, None, b1));
    let out = rig
        .core
        .handle(proposal(&leader, rig.chain, h, 0, None, b2));
    let e = out
        .iter()
        .find_map(|o| match o {
            Output::Evidence(e) => Some(e.clone()),
            _ => None,
        })
        .expect("evidence");
    assert!(matches!(e, Evidence::DoubleProposal { .. }));
    e.verify(rig.chain).unwrap();
    assert!(e.verify(ChainId(rig.chain.0 + 1)).is_err());
}

#[test]
fn a_restart_between_persist_and_broadcast_re_sends_the_same_vote_and_never_another() {
    let h = Rig::follower_height(0);
    let mut rig = Rig::new(0);
    rig.start(h);
    let b = rig.block(h, 0, 1);
    let out = rig.propose(h, 0, None, &b, true);
    // The host persisted the Prepare, then crashed before sending it.
    let wal: Vec<WalEntry> = out
        .iter()
        .filter_map(|o| match o {
            Output::Persist(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    let original = one_vote(&out, Prepare);
    let stored: Vec<Vec<u8>> = wal.iter().map(Wire::encode).collect();

    let replay = stored.iter().map(|b| WalEntry::decode(b).unwrap());
    let mut restarted = Core::restore(rig.config.clone(), key(0), replay).unwrap();
    let mut out = restarted.handle(Input::StartHeight {
        height: h,
        validators: rig.validators.clone(),
    });
    assert!(
        sent_votes(&out).contains(&original),
        "re-sent after restart: {out:?}"
    );
    assert!(
        !out.iter().any(|o| matches!(o, Output::Persist(_))),
        "nothing new signed"
    );
    // Everything that could make it Prepare again: the proposal, the propose timer, retransmits.
    let leader = key(rig.leader(h, 0));
    out.extend(restarted.handle(proposal(&leader, rig.chain, h, 0, None, b.clone())));
    out.extend(restarted.handle(Input::Validity {
        height: h,
        block_hash: b.hash(),
        valid: true,
    }));
    out.extend(restarted.handle(Input::Timeout(Timeout {
        height: h,
        view: 0,
        kind: TimeoutKind::Propose,
    })));
    out.extend(restarted.handle(Input::Timeout(Timeout {
        height: h,
        view: 0,
        kind: TimeoutKind::Retransmit,
    })));
    for v in sent_votes(&out) {
        if v.phase == Prepare && v.view == 0 {
            assert_eq!(v, original, "a different Prepare for a signed slot");
        }
    }
}

/// `me` locks on a block in view 0 of `h` (its proposal, then Prepares from two others); returns the rig,
/// the block and everything the core asked to persist, in order.
fn locked_with_wal(me: usize, h: Height) -> (Rig, WellFormedBlock, Vec<WalEntry>) {
    let mut rig = Rig::new(me);
    let mut out = rig.start(h);
    let b = rig.block(h, 0, 1);
    out.extend(rig.propose(h, 0, None, &b, true));
    let others = rig.others();
    out.extend(rig.votes_from(&others[..2], Prepare, h, 0, Some(&b)));
    assert_eq!(rig.round().locked.map(|l| l.block_hash), Some(b.hash()));
    let wal: Vec<WalEntry> = out
        .into_iter()
        .filter_map(|o| match o {
            Output::Persist(e) => Some(e),
            _ => None,
        })
        .collect();
    (rig, b, wal)
}

#[test]
fn a_restart_keeps_the_lock() {
    let h = Rig::follower_height(2);
    let (rig, b, wal) = locked_with_wal(2, h);
    let others = rig.others();

    let mut restarted = Rig::new(2);
    restarted.core = Core::restore(rig.config.clone(), key(2), wal).unwrap();
    restarted.start(h);
    assert_eq!(
        restarted.round().locked.map(|l| l.block_hash),
        Some(b.hash())
    );
    assert_eq!(restarted.round().step, Step::Commit);
    // The lock binds after the restart: in view 1, another block gets a nil Prepare (L23).
    restarted.votes_from(&others[..2], Commit, h, 0, None);
    restarted.timeout(h, 0, TimeoutKind::Commit);
    let c = restarted.block(h, 1, 2);
    let out = restarted.propose(h, 1, None, &c, true);
    assert_eq!(one_vote(&out, Prepare).block_hash, None);
}

/// Issue 8, restart: a validator locked on B crashes and restarts from its WAL alone (every vote it had
/// counted is gone). When it leads the next view it re-proposes B, not a fresh block, with B's proof of
/// lock restored from the WAL, so nodes that never saw the quorum accept it.
#[test]
fn a_restarted_locked_leader_re_proposes_its_locked_block_with_its_proof() {
    let me = 2;
    let h = (1..1_000)
        .find(|h| {
            let rig = Rig::new(me);
            rig.leader(*h, 0) != me && rig.leader(*h, 1) == me
        })
        .unwrap();
    let (rig, b, wal) = locked_with_wal(me, h);
    let others = rig.others();
    assert!(
        wal.iter()
            .any(|e| matches!(e, WalEntry::Locked { block, .. } if block.hash() == b.hash())),
        "the lock's Commit is persisted with its block"
    );

    let mut restarted = Rig::new(me);
    restarted.core = Core::restore(rig.config.clone(), key(me), wal).unwrap();
    restarted.start(h);
    restarted.votes_from(&others[..2], Commit, h, 0, None);
    let out = restarted.timeout(h, 0, TimeoutKind::Commit);
    assert_eq!(restarted.round().view, 1);
    let p = re_proposal(&restarted, &out);
    assert_eq!((p.view, p.valid_view), (1, Some(0)));
    assert_eq!(p.block, b, "the locked block, not a fresh one");
}

#[test]
fn a_wal_of_another_validator_is_refused() {
    let chain = ChainId(1337);
    let foreign = Vote::sign(&key(1), chain, Prepare, 1, 0, None);
    let err =
        Core::restore(Config::new(chain), key(0), vec![WalEntry::Voted(foreign)]).unwrap_err();
    assert!(matches!(err, ConsensusError::ForeignWal { .. }));
}

#[test]
fn messages_from_more_than_a_third_of_the_weight_in_a_later_view_skip_to_it() {
    let h = Rig::follower_height(0);
    let mut rig = Rig::new(0);
    rig.start(h);
    let others = rig.others();
    // One validator (10 of 40) is not enough.
    rig.votes_from(&others[..1], Prepare, h, 7, None);
    assert_eq!(rig.round().view, 0);
    // A second one, even far beyond the kept window, makes 20 of 40 > 1/3: L55.
    let out = rig.votes_from(&others[1..2], Commit, h, 50, None);
    assert_eq!(rig.round().view, 7, "the highest view both reached");
    assert!(out.iter().any(|o| matches!(
        o,
        Output::ScheduleTimeout {
            timeout: Timeout {
                view: 7,
                kind: TimeoutKind::Propose,
                ..
            },
            ..
        }
    )));
}

#[test]
fn messages_for_the_next_height_are_buffered_and_used_when_it_starts() {
    let mut rig = Rig::new(0);
    let h = (2..1_000).find(|h| rig.leader(*h, 0) != 0).unwrap();
    rig.start(h - 1);
    let b = rig.block(h, 0, 1);
    let leader = key(rig.leader(h, 0));
    let others = rig.others();
    assert!(
        rig.core
            .handle(proposal(&leader, rig.chain, h, 0, None, b.clone()))
            .is_empty()
    );
    assert!(rig.votes_from(&others, Prepare, h, 0, Some(&b)).is_empty());
    assert!(rig.votes_from(&others, Commit, h, 0, Some(&b)).is_empty());
    assert_eq!(rig.core.votes_held(), 7);

    // The height starts: the application is asked about the buffered proposal, and once it answers, the
    // buffered quorums decide at once.
    let out = rig.start(h);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::RequestValidity { .. }))
    );
    let out = rig.core.handle(Input::Validity {
        height: h,
        block_hash: b.hash(),
        valid: true,
    });
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Decided { block, .. } if *block == b))
    );
}

#[test]
fn a_flood_of_far_future_messages_stays_within_the_bounds() {
    let mut rig = Rig::new(0);
    rig.start(1);
    let spammer = key(1);
    for i in 0..5_000u32 {
        let height = 2 + u64::from(i % 10);
        rig.core
            .handle(vote(&spammer, rig.chain, Prepare, height, i, None));
        rig.core
            .handle(vote(&spammer, rig.chain, Commit, 1, i, None));
    }
    let cfg = &rig.config;
    let per_height_bound = 2 * (cfg.max_past_views + cfg.max_future_views + 1) as usize;
    assert!(
        rig.core.votes_held() <= cfg.max_future_messages_per_validator + per_height_bound,
        "held {}",
        rig.core.votes_held()
    );
}

/// The views a height keeps at most (`Core`'s documented bound), each with at most one proposal and
/// `2·n` votes: the window and the pinned views.
fn kept_views(cfg: &Config) -> usize {
    (cfg.max_past_views + cfg.max_future_views + 1) as usize + MAX_PINNED_VIEWS
}

/// How many `RequestValidity` outputs `out` holds.
fn validity_requests(out: &[Output]) -> usize {
    out.iter()
        .filter(|o| matches!(o, Output::RequestValidity { .. }))
        .count()
}

/// Issue 11, memory bound escape. Each kept proposal's `valid_view` was kept and accepted outside the
/// view window, and the proposal of such a view was kept too and named the next: one Byzantine leader
/// chained 2,000 far views into a node in view 0, which stored every proposal (and asked the
/// application about each block) and every vote of those views.
#[test]
fn a_chain_of_valid_views_from_one_byzantine_leader_stays_within_the_bounds() {
    let h = Rig::follower_height(0);
    let mut rig = Rig::new(0);
    rig.start(h);
    let cfg = rig.config.clone();
    // A validator that leads some view of the window, and 2,000 views beyond the window it leads too.
    let byzantine = (1..=cfg.max_future_views)
        .map(|v| rig.leader(h, v))
        .find(|l| *l != rig.me)
        .unwrap();
    let entry = (1..=cfg.max_future_views)
        .find(|v| rig.leader(h, *v) == byzantine)
        .unwrap();
    let far: Vec<View> = (cfg.max_future_views + 1..)
        .filter(|v| rig.leader(h, *v) == byzantine)
        .take(2_000)
        .collect();
    let signer = key(byzantine);
    let mut requests = validity_requests(&rig.core.handle(proposal(
        &signer,
        rig.chain,
        h,
        entry,
        Some(far[0]),
        rig.block(h, entry, 0),
    )));
    for (i, view) in far.iter().enumerate() {
        let block = rig.block(h, *view, i as u64 + 1);
        rig.votes_from(&[byzantine], Prepare, h, *view, Some(&block));
        rig.votes_from(&[byzantine], Commit, h, *view, Some(&block));
        let next = far.get(i + 1).copied();
        let out = rig
            .core
            .handle(proposal(&signer, rig.chain, h, *view, next, block));
        requests += validity_requests(&out);
    }
    assert_eq!(rig.round().view, 0, "one validator alone cannot skip views");
    let kept_views = kept_views(&cfg);
    let n = rig.validators.len();
    let (proposals, votes) = (rig.core.proposals_held(), rig.core.votes_held());
    let held = format!(
        "held {proposals} proposals and {votes} votes after {requests} validity requests; bounds \
         {kept_views} proposals and requests, {} votes",
        2 * n * kept_views
    );
    assert!(proposals <= kept_views, "{held}");
    assert!(requests <= kept_views, "{held}");
    assert!(votes <= 2 * n * kept_views, "{held}");
    // Nothing lies below view 0 to pin: only the entry proposal, inside the window, is kept.
    assert_eq!((proposals, requests, votes), (1, 1, 0), "{held}");
}

/// Moves `rig`'s core to `view` by the skip rule (L55): two of the others (20 of 40 > 1/3) Prepare nil
/// there.
fn skip_to(rig: &mut Rig, height: Height, view: View) -> Vec<Output> {
    let others = rig.others();
    let out = rig.votes_from(&others[..2], Prepare, height, view, None);
    assert_eq!(rig.round().view, view);
    out
}

/// The first view above the window of view 0 that `who` does (or does not) lead.
fn a_view_past_the_window(rig: &Rig, height: Height, who: usize, leads: bool) -> View {
    (rig.config.max_past_views + 2..)
        .find(|v| (rig.leader(height, *v) == who) == leads)
        .unwrap()
}

/// Simulator finding 2, on one core: the Prepares that prove this node's lock stay kept after the lock's
/// view falls below the window and past the vote TTL, so a re-proposal of the locked block long after
/// still gets its Prepare (L28-L30).
#[test]
fn a_lock_older_than_the_view_window_and_the_ttl_still_proves_its_re_proposal() {
    let (mut rig, h, b) = locked_in_view_0(3);
    let far = a_view_past_the_window(&rig, h, rig.me, false);
    skip_to(&mut rig, h, far);
    let ttl = rig.config.vote_ttl.as_millis() as u64;
    rig.core.handle(Input::Tick { now_ms: 2 * ttl });
    let out = rig.propose(h, far, Some(0), &b, true);
    assert_eq!(one_vote(&out, Prepare).block_hash, Some(b.hash()));
}

/// Simulator finding 2, the unlocked side: a node that never saw the proof of lock accepts it once the
/// current view's re-proposal names its view, even far below the window (and not before).
#[test]
fn a_re_proposal_pins_its_proof_of_lock_view_below_the_window() {
    let h = Rig::follower_height(2);
    let mut rig = Rig::new(2);
    rig.start(h);
    let b = rig.block(h, 0, 1);
    // View 0: this node Prepares B but sees no quorum for it.
    rig.propose(h, 0, None, &b, true);
    let far = a_view_past_the_window(&rig, h, rig.me, false);
    skip_to(&mut rig, h, far);
    let others = rig.others();
    // Before anything names view 0, its Prepares are dropped with it.
    let held = rig.core.votes_held();
    rig.votes_from(&others, Prepare, h, 0, Some(&b));
    assert_eq!(rig.core.votes_held(), held, "view 0 is outside the window");
    let out = rig.propose(h, far, Some(0), &b, true);
    assert!(sent_votes(&out).is_empty(), "no proof yet: {out:?}");
    // The proof, sent again, now counts: L28.
    let out = rig.votes_from(&others, Prepare, h, 0, Some(&b));
    assert_eq!(one_vote(&out, Prepare).block_hash, Some(b.hash()));
}

/// The locked block stays at hand with the proposal of the lock's view, so a leader long past its lock
/// re-proposes it (L15-L16, L19) instead of asking for a new block.
#[test]
fn a_leader_long_past_its_lock_re_proposes_the_locked_block() {
    let (mut rig, h, b) = locked_in_view_0(3);
    let far = a_view_past_the_window(&rig, h, rig.me, true);
    let out = skip_to(&mut rig, h, far);
    let p = re_proposal(&rig, &out);
    assert_eq!(
        (p.view, p.valid_view, p.block.hash()),
        (far, Some(0), b.hash())
    );
    assert_eq!(one_vote(&out, Prepare).block_hash, Some(b.hash()));
}

/// The pinned set is capped, nearest first after the node's own lock. One Byzantine validator (alone it
/// cannot make the node skip ahead) leads many views ahead in a wide window, and its proposal of each,
/// sent farthest first, names another old view below the window; the others' votes fill each named
/// view, and the old views' leaders propose there, naming further views. After every input the height
/// stays within the bound, and the lock's proof survives the flood.
#[test]
fn a_flood_of_proof_of_lock_views_stays_within_the_bounds_and_keeps_the_lock() {
    let wide = Rig::with_config(3, |c| c.max_future_views = 40);
    let (mut rig, h, b) = locked_in_view_0_with(wide);
    let cfg = rig.config.clone();
    let (kept, n) = (kept_views(&cfg), rig.validators.len());
    let view = (3 * cfg.max_past_views..)
        .find(|v| rig.leader(h, *v) != rig.me)
        .unwrap();
    skip_to(&mut rig, h, view);
    let others = rig.others();
    let byzantine = rig.leader(h, view);
    let ahead: Vec<View> = (view + 1..=view + cfg.max_future_views)
        .rev()
        .filter(|w| rig.leader(h, *w) == byzantine)
        .collect();
    assert!(
        ahead.len() > MAX_PINNED_VIEWS,
        "the flood names more views than can be pinned"
    );
    // Held so far: the skip's votes in the window, and the lock's view 0 (pinned) with its proposal and
    // votes. The flood adds proposals ahead, inside the window, and everything else lies below it, where
    // only the pinned views other than the lock's can hold anything.
    let (base_proposals, base_votes) = (rig.core.proposals_held(), rig.core.votes_held());
    let other_pins = MAX_PINNED_VIEWS - 1;
    let within = |rig: &Rig, ahead_sent: usize, what: &str| {
        let (proposals, votes) = (rig.core.proposals_held(), rig.core.votes_held());
        assert!(
            proposals <= kept && votes <= 2 * n * kept,
            "after {what}: {proposals} proposals, {votes} votes; bounds {kept}, {}",
            2 * n * kept
        );
        let (below_proposals, below_votes) =
            (proposals - base_proposals - ahead_sent, votes - base_votes);
        assert!(
            below_proposals <= other_pins && below_votes <= 2 * n * other_pins,
            "after {what}: {below_proposals} proposals and {below_votes} votes below the window"
        );
    };
    for (i, (old, w)) in (1..).zip(ahead).enumerate() {
        assert!(old < view - cfg.max_past_views, "below the window");
        let named = rig.block(h, w, 100);
        rig.core
            .handle(proposal(&key(byzantine), rig.chain, h, w, Some(old), named));
        let ahead_sent = i + 1;
        within(&rig, ahead_sent, "a proposal ahead");
        // Votes for a block no proposal carries, so that no Commit quorum decides anything.
        let unknown = rig.block(h, old, 1);
        for phase in [Prepare, Commit] {
            for o in &others {
                rig.core.handle(vote(
                    &key(*o),
                    rig.chain,
                    phase,
                    h,
                    old,
                    Some(unknown.hash()),
                ));
                within(&rig, ahead_sent, "a vote of a named view");
            }
        }
        let old_leader = rig.leader(h, old);
        if old_leader != rig.me {
            let block = rig.block(h, old, 2);
            rig.core.handle(proposal(
                &key(old_leader),
                rig.chain,
                h,
                old,
                Some(old + 1_000),
                block,
            ));
            within(&rig, ahead_sent, "a proposal of a named view");
        }
    }
    assert_eq!(rig.round().view, view);
    let out = rig.propose(h, view, Some(0), &b, true);
    assert_eq!(one_vote(&out, Prepare).block_hash, Some(b.hash()));
    let (proposals, votes) = (rig.core.proposals_held(), rig.core.votes_held());
    assert!(proposals <= kept && votes <= 2 * n * kept);
}

#[test]
fn buffered_messages_expire_after_the_ttl() {
    let mut rig = Rig::new(0);
    rig.start(1);
    rig.core.handle(Input::Tick { now_ms: 1_000 });
    rig.votes_from(&[1, 2], Prepare, 2, 0, None);
    assert_eq!(rig.core.votes_held(), 2);
    let ttl = rig.config.vote_ttl.as_millis() as u64;
    rig.core.handle(Input::Tick {
        now_ms: 1_000 + ttl - 1,
    });
    assert_eq!(rig.core.votes_held(), 2);
    rig.core.handle(Input::Tick {
        now_ms: 1_001 + ttl,
    });
    assert_eq!(rig.core.votes_held(), 0);
}

#[test]
fn a_certified_block_from_sync_decides_the_current_height() {
    let h = Rig::follower_height(0);
    let mut rig = Rig::new(0);
    rig.start(h);
    let b = rig.block(h, 0, 1);
    let mut signatures: Vec<_> = [1, 2, 3]
        .iter()
        .map(|i| {
            let v = Vote::sign(&key(*i), rig.chain, Commit, h, 0, Some(b.hash()));
            (v.voter, v.signature)
        })
        .collect();
    signatures.sort_by_key(|s| s.0);
    let certified = CertifiedBlock {
        block: b.clone(),
        certificate: timecoin_types::CommitCertificate {
            height: h,
            view: 0,
            block_hash: b.hash(),
            signatures,
        },
    };
    let verified =
        Verified::<CertifiedBlock>::verify(certified.clone(), rig.chain, &rig.validators).unwrap();
    let out = rig.core.handle(Input::Certified(verified));
    assert_eq!(
        out,
        vec![Output::Decided {
            block: b,
            certificate: certified.certificate.clone()
        }]
    );
    // A tampered certificate does not verify.
    let mut bad = certified;
    bad.certificate.signatures.pop();
    assert!(Verified::<CertifiedBlock>::verify(bad, rig.chain, &rig.validators).is_err());
}

#[test]
fn stale_timers_and_old_heights_change_nothing() {
    let h = Rig::follower_height(0);
    let mut rig = Rig::new(0);
    rig.start(h);
    let before = rig.round().clone();
    assert!(rig.timeout(h, 3, TimeoutKind::Propose).is_empty());
    assert!(rig.timeout(h - 1, 0, TimeoutKind::Propose).is_empty());
    assert!(
        rig.votes_from(&[1, 2, 3], Prepare, h - 1, 0, None)
            .is_empty()
    );
    assert_eq!(rig.round(), &before);
}

#[test]
fn unverified_messages_cannot_enter_verified() {
    let genesis = Genesis::local(4);
    let chain = genesis.params.chain_id;
    let set = ValidatorSet::from_genesis(&genesis).unwrap();
    let mut forged = Vote::sign(&key(1), chain, Prepare, 1, 0, None);
    forged.view = 1;
    assert!(matches!(
        Verified::<Vote>::verify(forged.clone(), chain, &set),
        Err(ConsensusError::BadSignature(_))
    ));
    let stranger = SecretKey::from_seed(&[42; 32]);
    let outsider = Vote::sign(&stranger, chain, Prepare, 1, 0, None);
    assert!(matches!(
        Verified::<Vote>::verify(outsider.clone(), chain, &set),
        Err(ConsensusError::NotAValidator { .. })
    ));
    let good = Vote::sign(&key(2), chain, Prepare, 1, 0, None);
    let results =
        Verified::<Vote>::verify_many(vec![good.clone(), forged, outsider, good], chain, &set);
    let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(ok, vec![true, false, false, true]);
}

#[test]
fn an_observer_outside_the_set_decides_without_signing() {
    let genesis = Genesis::local(4);
    let chain = genesis.params.chain_id;
    let validators = Arc::new(ValidatorSet::from_genesis(&genesis).unwrap());
    let observer = SecretKey::from_seed(&[99; 32]);
    let mut core = Core::new(Config::new(chain), observer);
    let mut out = core.handle(Input::StartHeight {
        height: 1,
        validators: validators.clone(),
    });
    let rig = Rig::new(0);
    let b = rig.block(1, 0, 1);
    let leader = key(rig.leader(1, 0));
    out.extend(core.handle(proposal(&leader, chain, 1, 0, None, b.clone())));
    out.extend(core.handle(Input::Validity {
        height: 1,
        block_hash: b.hash(),
        valid: true,
    }));
    for i in 0..3 {
        out.extend(core.handle(vote(&key(i), chain, Prepare, 1, 0, Some(b.hash()))));
        out.extend(core.handle(vote(&key(i), chain, Commit, 1, 0, Some(b.hash()))));
    }
    assert!(!out.iter().any(|o| matches!(
        o,
        Output::Persist(_) | Output::Broadcast(_) | Output::RequestProposal { .. }
    )));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Decided { block, .. } if *block == b))
    );
}

#[cfg(feature = "fault-injection")]
#[test]
fn the_ignore_lock_fault_makes_a_locked_validator_prepare_another_block() {
    let (mut rig, h, b) = locked_in_view_0(3);
    // Same history, replayed into a core with the fault switched on.
    let mut config = rig.config.clone();
    config.faults.ignore_lock = true;
    let wal: Vec<WalEntry> = vec![];
    let mut faulty = Rig::new(3);
    faulty.core = Core::restore(config, key(3), wal).unwrap();
    faulty.start(h);
    faulty.propose(h, 0, None, &b, true);
    let others = faulty.others();
    faulty.votes_from(&others[..2], Prepare, h, 0, Some(&b));
    faulty.votes_from(&others[..2], Commit, h, 0, None);
    faulty.timeout(h, 0, TimeoutKind::Commit);
    assert_eq!(faulty.round().locked.map(|l| l.block_hash), Some(b.hash()));
    let other = faulty.block(h, 1, 2);
    let out = faulty.propose(h, 1, None, &other, true);
    assert_eq!(
        one_vote(&out, Prepare).block_hash,
        Some(other.hash()),
        "lock ignored"
    );
    // The honest core refuses the same proposal.
    let out = rig.propose(h, 1, None, &other, true);
    assert_eq!(one_vote(&out, Prepare).block_hash, None);
}
