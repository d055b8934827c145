//! Consensus cost per height with the signatures checked: validator 0 of `Genesis::local(n)` takes one
//! height from `StartHeight` to `Decided` while the leader's proposal and the other validators' Prepares
//! and Commits arrive signed but not verified. Each of the three batches (the proposal, then the
//! Prepares, then the Commits) is checked as the node's door checks a batch of consensus messages, then
//! fed to the `Core`, which signs the validator's own two votes and builds the certificate. Block
//! validity is answered at once (the block is empty); nothing is decoded, stored or sent.
//!
//! In the same run: the signature-bound limit (the same 2·(n−1)+1 signatures alone, one batch and both
//! threads) and the parts the height is made of. Run with
//! `cargo bench -p timecoin-benches --bench consensus_height`; figures are in docs/BENCHMARKS.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::Criterion;
use rayon::prelude::*;
use timecoin_benches::metered;
use timecoin_consensus::{Config, Core, Input, Message, Output, ValidatorSet, Verified};
use timecoin_crypto::{BatchItem, SigDomain, verify_batch, verify_batch_parallel};
use timecoin_types::{
    ChainId, CommitCertificate, Genesis, Height, Proposal, SecretKey, Vote, VotePhase, Wire,
};

/// The door's fewest votes per rayon task (`MIN_VOTE_CHUNK` in timecoin-node's `engine/door.rs`,
/// which is not public, so its batching is repeated here): a batch is split evenly over the pool's
/// threads, in chunks of at least this many.
const DOOR_MIN_CHUNK: usize = 32;

/// `door`'s chunk argument for the door's own split of each batch of votes.
const DOOR: usize = 0;

/// One height as validator 0 receives it: every message signed by its sender, none verified.
struct Setup {
    n: usize,
    chain: ChainId,
    me: SecretKey,
    validators: Arc<ValidatorSet>,
    height: Height,
    proposal: Proposal,
    /// The other n − 1 validators' Prepares, then their Commits, for the proposal's block.
    prepares: Vec<Vote>,
    commits: Vec<Vote>,
}

fn setup(n: usize) -> Setup {
    let timecoin_benches::LocalHeight {
        chain,
        keys,
        validators,
        height,
        block,
        leader,
    } = timecoin_benches::LocalHeight::new(n);
    let leader = &keys[leader];
    let hash = block.hash();
    let votes = |phase| -> Vec<Vote> {
        keys[1..]
            .iter()
            .map(|k| Vote::sign(k, chain, phase, height, 0, Some(hash)))
            .collect()
    };
    Setup {
        n,
        chain,
        me: Genesis::local_validator_key(0),
        validators,
        height,
        proposal: Proposal::sign(leader, chain, height, 0, None, block),
        prepares: votes(VotePhase::Prepare),
        commits: votes(VotePhase::Commit),
    }
}

impl Setup {
    /// The three batches the height arrives in, as the door hands them on.
    fn batches(&self) -> [Vec<Message>; 3] {
        [
            vec![Message::Proposal(self.proposal.clone())],
            self.prepares.iter().cloned().map(Message::Vote).collect(),
            self.commits.iter().cloned().map(Message::Vote).collect(),
        ]
    }

    fn core(&self) -> Core {
        Core::new(Config::new(self.chain), Genesis::local_validator_key(0))
    }

    /// The signing messages of the proposal and every vote, for the limit rows.
    fn signing_messages(&self) -> Vec<Vec<u8>> {
        let p = &self.proposal;
        std::iter::once(Proposal::signing_message(
            p.height,
            p.view,
            p.valid_view,
            &p.block.hash(),
        ))
        .chain(
            self.prepares
                .iter()
                .chain(&self.commits)
                .map(|v| Vote::signing_message(v.phase, v.height, v.view, v.block_hash)),
        )
        .collect()
    }

    fn batch_items<'a>(&'a self, messages: &'a [Vec<u8>]) -> Vec<BatchItem<'a>> {
        let p = &self.proposal;
        let proposal = BatchItem {
            key: &p.proposer,
            domain: SigDomain::Proposal,
            chain: self.chain,
            message: &messages[0],
            signature: &p.signature,
        };
        let votes = self
            .prepares
            .iter()
            .chain(&self.commits)
            .zip(&messages[1..])
            .map(|(v, message)| BatchItem {
                key: &v.voter,
                domain: SigDomain::Vote,
                chain: self.chain,
                message,
                signature: &v.signature,
            });
        std::iter::once(proposal).chain(votes).collect()
    }
}

/// What the door does with the consensus messages of one height that arrived together, less the
/// decoding and the seen-cache: votes checked `chunk` at a time with `Verified::<Vote>::verify_many`
/// as rayon tasks, each proposal with `Verified::<Message>::verify` as its own task.
fn door(
    messages: Vec<Message>,
    chain: ChainId,
    set: &Arc<ValidatorSet>,
    // Votes per rayon task, or `DOOR` for the door's own split.
    chunk: usize,
) -> Vec<Verified<Message>> {
    let (votes, proposals): (Vec<Message>, Vec<Message>) = messages
        .into_iter()
        .partition(|m| matches!(m, Message::Vote(_)));
    let mut votes: Vec<Vote> = votes
        .into_iter()
        .map(|m| match m {
            Message::Vote(v) => v,
            Message::Proposal(_) => unreachable!("partitioned"),
        })
        .collect();
    let chunk = match chunk {
        DOOR => votes
            .len()
            .div_ceil(rayon::current_num_threads().max(1))
            .max(DOOR_MIN_CHUNK),
        other => other,
    };
    let mut chunks: Vec<(Arc<ValidatorSet>, Vec<Vote>)> = Vec::new();
    while !votes.is_empty() {
        let rest = votes.split_off(votes.len().min(chunk));
        chunks.push((set.clone(), std::mem::replace(&mut votes, rest)));
    }
    let mut checked: Vec<Verified<Message>> = chunks
        .into_par_iter()
        .flat_map_iter(|(set, votes)| {
            Verified::<Vote>::verify_many(votes, chain, &set)
                .into_iter()
                .map(|r| Verified::assume_verified(Message::Vote(r.unwrap().into_inner())))
        })
        .collect();
    checked.extend(
        proposals
            .into_par_iter()
            .map(|m| Verified::<Message>::verify(m, chain, set).unwrap())
            .collect::<Vec<_>>(),
    );
    checked
}

/// Hands `input` to the core, answers its validity request at once (valid), and keeps the certificate
/// of a decision.
fn feed(core: &mut Core, input: Input, decided: &mut Option<CommitCertificate>) {
    let mut pending = vec![input];
    while let Some(input) = pending.pop() {
        for output in core.handle(input) {
            match output {
                Output::RequestValidity { height, block, .. } => pending.push(Input::Validity {
                    height,
                    block_hash: block.hash(),
                    valid: true,
                }),
                Output::Decided { certificate, .. } => *decided = Some(certificate),
                _ => {}
            }
        }
    }
}

/// One height from `StartHeight` to the decision: each batch through `check` (the door, or nothing for
/// messages already verified), then into the core.
fn run_height(
    s: &Setup,
    mut core: Core,
    batches: [Vec<Message>; 3],
    check: impl Fn(Vec<Message>) -> Vec<Verified<Message>>,
) -> CommitCertificate {
    let mut decided = None;
    feed(
        &mut core,
        Input::StartHeight {
            height: s.height,
            validators: s.validators.clone(),
        },
        &mut decided,
    );
    for batch in batches {
        for message in check(batch) {
            feed(&mut core, Input::from(message), &mut decided);
        }
    }
    decided.expect("the height was decided")
}

/// Chunks that spread a batch evenly over rayon's threads.
fn even_chunk(len: usize) -> usize {
    len.div_ceil(rayon::current_num_threads().max(1)).max(1)
}

fn consensus_height(c: &mut Criterion) {
    let mut meters: Vec<(String, timecoin_benches::Meter)> = Vec::new();
    let mut group = c.benchmark_group("consensus_height");
    let g = &mut group;
    // What the meter itself costs around a run that does nothing: the two schedstat readings.
    metered(g, &mut meters, "meter_overhead", || (), |()| {});
    for n in [4usize, 21, 100] {
        let s = setup(n);
        let (chain, set) = (s.chain, s.validators.clone());

        // Untimed: the bench's own flow decides, with a certificate the validator set accepts and that
        // holds the validator's own Commit, so its own signing is part of every timed height.
        let cert = run_height(&s, s.core(), s.batches(), |b| door(b, chain, &set, DOOR));
        set.verify_certificate(&cert, chain).unwrap();
        assert_eq!(cert.height, s.height);
        let me = s.me.public_key();
        assert!(cert.signatures.iter().any(|(voter, _)| *voter == me));

        let messages = s.signing_messages();
        let items = s.batch_items(&messages);
        assert_eq!(items.len(), 2 * (s.n - 1) + 1);
        verify_batch(&items).unwrap();

        metered(
            g,
            &mut meters,
            &format!("height/{n}"),
            || (s.core(), s.batches()),
            |(core, batches)| {
                black_box(run_height(&s, core, batches, |b| {
                    door(b, chain, &set, DOOR)
                }));
            },
        );
        metered(
            g,
            &mut meters,
            &format!("limit_verify_batch/{n}"),
            || (),
            |()| verify_batch(black_box(&items)).unwrap(),
        );
        metered(
            g,
            &mut meters,
            &format!("limit_verify_batch_parallel/{n}"),
            || (),
            |()| verify_batch_parallel(black_box(&items), 1).unwrap(),
        );
        metered(
            g,
            &mut meters,
            &format!("part_door_verify/{n}"),
            || s.batches(),
            |batches| {
                for batch in batches {
                    black_box(door(batch, chain, &set, DOOR));
                }
            },
        );
        metered(
            g,
            &mut meters,
            &format!("part_door_proposal/{n}"),
            || vec![Message::Proposal(s.proposal.clone())],
            |batch| {
                black_box(door(batch, chain, &set, DOOR));
            },
        );
        metered(
            g,
            &mut meters,
            &format!("part_core_preverified/{n}"),
            || (s.core(), s.batches()),
            |(core, batches)| {
                black_box(run_height(&s, core, batches, |b| {
                    b.into_iter().map(Verified::assume_verified).collect()
                }));
            },
        );
        metered(
            g,
            &mut meters,
            &format!("part_own_two_signatures/{n}"),
            || (),
            |()| {
                let hash = Some(s.proposal.block.hash());
                for phase in [VotePhase::Prepare, VotePhase::Commit] {
                    black_box(Vote::sign(&s.me, chain, phase, s.height, 0, hash));
                }
            },
        );
        // Not in `height`: the door decodes each message before checking it (its voter's key is
        // decompressed then), so a node pays this on top.
        let encoded: Vec<Vec<u8>> = s
            .batches()
            .into_iter()
            .flatten()
            .map(|m| m.encode())
            .collect();
        metered(
            g,
            &mut meters,
            &format!("context_decode_all/{n}"),
            || (),
            |()| {
                for bytes in &encoded {
                    black_box(timecoin_node::wire::decode_consensus(black_box(bytes)).unwrap());
                }
            },
        );
        // Two alternatives to the door's split: each batch split evenly with no floor, and each batch
        // checked whole (one rayon task per phase).
        metered(
            g,
            &mut meters,
            &format!("suggest_door_verify_even/{n}"),
            || s.batches(),
            |batches| {
                for batch in batches {
                    let chunk = even_chunk(batch.len());
                    black_box(door(batch, chain, &set, chunk));
                }
            },
        );
        metered(
            g,
            &mut meters,
            &format!("suggest_door_verify_whole_batch/{n}"),
            || s.batches(),
            |batches| {
                for batch in batches {
                    black_box(door(batch, chain, &set, usize::MAX));
                }
            },
        );
    }
    group.finish();
    eprintln!(
        "rayon threads: {}; CPU meter readings are means over all runs, warm-up included",
        rayon::current_num_threads()
    );
    for (name, meter) in &meters {
        meter.report(name);
    }
}

timecoin_benches::bench_main!(timecoin_benches::config(20, 1, 3); consensus_height);
