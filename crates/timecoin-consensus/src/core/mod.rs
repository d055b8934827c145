//! The driver: turns inputs into round events (checking leaders, quorums and validity), runs the round
//! state machine, signs what it says to sign (persisting first), and moves across views.
//!
//! `mod.rs` holds the state and the public API, `inputs.rs` what each input does, `rules.rs` the search
//! for the next rule to fire and the execution of its actions.

mod inputs;
mod rules;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use timecoin_crypto::PublicKey;
use timecoin_types::{
    BlockHash, Height, LockProof, Proposal, View, Vote, VotePhase, WellFormedBlock,
};
use tracing::{debug, info, warn};

use crate::buffer::FutureBuffer;
use crate::round::{
    self, LockRule, RoundAction, RoundEvent, RoundState, Step, Transition, ValueAt,
};
use crate::sync::CertifiedBlock;
use crate::votes::{AddOutcome, VoteKeeper};
use crate::{
    Config, ConsensusError, Evidence, Input, Message, Output, ProposalDigest, Signer, Timeout,
    TimeoutKind, ValidatorSet, WalEntry,
};

/// Upper bound on rule firings per input; each firing moves the state forward, and far fewer than this
/// are possible per input, so reaching it means a bug, which is logged rather than looped on.
const MAX_TRANSITIONS_PER_INPUT: usize = 256;

/// Most views pinned at once (see `HeightState::pinned_views`): kept, with their votes and proposal,
/// below the view window and past the vote TTL. Room for this node's lock and valid value, the
/// proof-of-lock view of the current view's proposal, and one more for the nearest view ahead whose
/// proposal names one. So a height keeps at most `max_past_views + max_future_views + 1 +
/// MAX_PINNED_VIEWS` views (25 with the defaults), each with at most one proposal and `2·n` votes.
pub const MAX_PINNED_VIEWS: usize = 4;

/// One signing slot of a height: a validator signs at most one message per slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Proposal,
    Prepare,
    Commit,
}

impl From<VotePhase> for Slot {
    fn from(phase: VotePhase) -> Self {
        match phase {
            VotePhase::Prepare => Slot::Prepare,
            VotePhase::Commit => Slot::Commit,
        }
    }
}

/// Everything this node signed at one height: the double-sign guard, rebuilt from the WAL on restart.
/// At most three messages per view of the height.
#[derive(Debug, Default)]
struct SignLog {
    height: Height,
    signed: BTreeMap<(View, Slot), Message>,
    /// The latest lock recorded at this height (`WalEntry::Locked`): its view, block and proof.
    lock: Option<(View, WellFormedBlock, LockProof)>,
}

/// What the application said about a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Validity {
    Pending,
    Valid,
    Invalid,
}

/// A proposal with its block's hash, computed once (hashing a header costs more than counting a vote).
#[derive(Debug)]
struct KnownProposal {
    block_hash: BlockHash,
    proposal: Proposal,
}

impl KnownProposal {
    fn new(proposal: Proposal) -> Self {
        KnownProposal {
            block_hash: proposal.block.hash(),
            proposal,
        }
    }
}

/// The state of the height being decided.
#[derive(Debug)]
struct HeightState {
    validators: Arc<ValidatorSet>,
    round: RoundState,
    votes: VoteKeeper,
    /// The first proposal of each kept view from its leader (kept views: see [`Config::max_past_views`]).
    proposals: BTreeMap<View, KnownProposal>,
    /// Views whose leader was caught proposing twice (reported once).
    double_proposals: BTreeMap<View, ()>,
    /// Verdicts per block; entries go when no kept proposal carries the block.
    validity: BTreeMap<BlockHash, Validity>,
    /// The view for which the application was last asked for a block.
    requested_proposal: Option<View>,
    /// The locked block and its proof, restored from the WAL after a restart (the proposal that carried
    /// the block is gone then), so the node can still re-propose it.
    restored_lock: Option<(WellFormedBlock, LockProof)>,
}

impl HeightState {
    /// Whether `proposal` carries a proof of lock for its block in its `valid_view` that holds more than
    /// 2/3 of this height's weight. The door checked the proof's signatures and order (against the set
    /// of the message's height, or the newest set for a height the registry did not know yet), so only
    /// the weight is counted again here, with the set of this height.
    fn proves_lock(&self, proposal: &Proposal) -> bool {
        let Some(proof) = &proposal.lock_proof else {
            return false;
        };
        let weight: u64 = proof
            .signatures
            .iter()
            .map(|(voter, _)| self.validators.weight_of(voter).unwrap_or(0))
            .sum();
        self.validators.is_quorum(weight)
    }

    fn block(&self, hash: &BlockHash) -> Option<&WellFormedBlock> {
        self.proposals
            .values()
            .find(|p| p.block_hash == *hash)
            .map(|p| &p.proposal.block)
            .or_else(|| {
                self.restored_lock
                    .as_ref()
                    .map(|(block, _)| block)
                    .filter(|block| block.hash() == *hash)
            })
    }

    /// A proof of lock for `value`: from this height's tally, or the one restored with the lock.
    fn lock_proof(&self, value: ValueAt) -> Option<LockProof> {
        self.votes
            .lock_proof(value.view, value.block_hash)
            .or_else(|| {
                self.restored_lock
                    .as_ref()
                    .filter(|(block, _)| block.hash() == value.block_hash)
                    .map(|(_, proof)| proof.clone())
            })
    }

    /// Views below the current one kept, with their votes and proposal, even below the view window and
    /// past the vote TTL, and whose votes are still accepted: the views of this node's lock and valid
    /// value, then the proof-of-lock views (`valid_view`) named by the proposals of the current view and
    /// of the views ahead in the window, nearest first; at most [`MAX_PINNED_VIEWS`]. Their Prepares are
    /// what L28 needs to accept a re-proposed locked block; dropping them with the window could stall the
    /// height for ever (simulator finding 2).
    ///
    /// Proposals of past views name nothing, since L28 only reads the current view's proposal. And since
    /// only views below the current one are pinned, the proposal kept for a pinned view lies outside the
    /// window and names nothing either: a leader cannot chain `valid_view`s past the bound (issue 11).
    fn pinned_views(&self, max_future_views: View) -> Vec<View> {
        let current = self.round.view;
        let own = [self.round.locked, self.round.valid]
            .into_iter()
            .flatten()
            .map(|v| v.view);
        let named = self
            .proposals
            .range(current..=current.saturating_add(max_future_views))
            .filter_map(|(_, p)| p.proposal.valid_view);
        let mut pinned = Vec::with_capacity(MAX_PINNED_VIEWS);
        for view in own.chain(named) {
            if pinned.len() >= MAX_PINNED_VIEWS {
                break;
            }
            if view < current && !pinned.contains(&view) {
                pinned.push(view);
            }
        }
        pinned
    }

    fn validity(&self, hash: &BlockHash) -> Validity {
        self.validity
            .get(hash)
            .copied()
            .unwrap_or(Validity::Pending)
    }
}

/// The consensus core of one validator: a deterministic state machine with no I/O.
///
/// A core whose key is not in a height's validator set follows that height as an observer: it decides
/// from the others' votes and signs nothing.
///
/// Feed it [`Input`]s with [`Core::handle`] and execute the returned [`Output`]s in order (see
/// `docs/CONSENSUS_API.md`). It never reads a clock, draws a random number, or touches a disk or socket.
///
/// Memory is bounded: per height, the core keeps the views of the window `[view − max_past_views, view +
/// max_future_views]` and at most [`MAX_PINNED_VIEWS`] more below it (the proofs of a lock), so at most
/// `max_past_views + max_future_views + 1 + MAX_PINNED_VIEWS` views (25 with the defaults), each with at
/// most one proposal (with its block) and `2·n` votes: 25 proposals and `50·n` votes with the defaults
/// (200 for four validators). It asks the application about a block only when it keeps a proposal
/// carrying it, so the blocks awaiting a verdict are among those proposals. For future heights, at
/// most `max_future_messages_per_validator` votes and `max_future_proposals_per_validator` proposals
/// per validator; at most `max_evidence` evidence items (see [`Config`]). [`Core::votes_held`] and [`Core::proposals_held`] report the current counts.
pub struct Core {
    config: Config,
    signer: Box<dyn Signer>,
    me: PublicKey,
    lock_rule: LockRule,
    now_ms: u64,
    current: Option<HeightState>,
    signed: SignLog,
    future: FutureBuffer,
    evidence: VecDeque<(u64, Evidence)>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("me", &self.me)
            .field("round", &self.current.as_ref().map(|c| &c.round))
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core that has signed nothing yet. It waits for [`Input::StartHeight`].
    pub fn new(config: Config, signer: impl Signer + 'static) -> Self {
        let me = signer.public_key();
        #[cfg(feature = "fault-injection")]
        let lock_rule = if config.faults.ignore_lock {
            LockRule::Ignore
        } else {
            LockRule::Respect
        };
        #[cfg(not(feature = "fault-injection"))]
        let lock_rule = LockRule::Respect;
        Core {
            config,
            signer: Box::new(signer),
            me,
            lock_rule,
            now_ms: 0,
            current: None,
            signed: SignLog::default(),
            future: FutureBuffer::default(),
            evidence: VecDeque::new(),
        }
    }

    /// A core restarted from its write-ahead log (every [`Output::Persist`] entry, in order).
    ///
    /// It remembers what it signed at the latest height in the log; when the host then starts that height
    /// again, it resumes the last view it signed in, re-sends those very messages, keeps its lock, and
    /// can never sign a different message for a slot it already signed. Fails if an entry was signed by
    /// another key.
    pub fn restore(
        config: Config,
        signer: impl Signer + 'static,
        wal: impl IntoIterator<Item = WalEntry>,
    ) -> Result<Self, ConsensusError> {
        let mut core = Core::new(config, signer);
        for entry in wal {
            if entry.signer() != core.me {
                return Err(ConsensusError::ForeignWal {
                    expected: Box::new(core.me),
                    found: Box::new(entry.signer()),
                });
            }
            let height = entry.height();
            if height > core.signed.height || core.signed.signed.is_empty() {
                core.signed = SignLog {
                    height,
                    signed: BTreeMap::new(),
                    lock: None,
                };
            }
            if height < core.signed.height {
                continue;
            }
            let (key, message) = match entry {
                WalEntry::Proposed(p) => ((p.view, Slot::Proposal), Message::Proposal(p)),
                WalEntry::Voted(v) => ((v.view, Slot::from(v.phase)), Message::Vote(v)),
                WalEntry::Locked {
                    commit,
                    block,
                    proof,
                } => {
                    if core
                        .signed
                        .lock
                        .as_ref()
                        .is_none_or(|(v, _, _)| commit.view > *v)
                    {
                        core.signed.lock = Some((commit.view, block, proof));
                    }
                    ((commit.view, Slot::Commit), Message::Vote(commit))
                }
            };
            // The first entry of a slot is what went out; a later different one cannot exist unless the
            // log was tampered with, and keeping the first is the safe choice.
            core.signed.signed.entry(key).or_insert(message);
        }
        Ok(core)
    }

    /// This validator's key.
    pub fn public_key(&self) -> PublicKey {
        self.me
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The height being decided (`None` before the first [`Input::StartHeight`]).
    pub fn height(&self) -> Option<Height> {
        self.current.as_ref().map(|c| c.round.height)
    }

    /// The state of the height being decided: view, step, lock, valid value, decision.
    pub fn round_state(&self) -> Option<&RoundState> {
        self.current.as_ref().map(|c| &c.round)
    }

    /// The validator set of the current height.
    pub fn validators(&self) -> Option<&Arc<ValidatorSet>> {
        self.current.as_ref().map(|c| &c.validators)
    }

    /// Evidence collected (bounded by [`Config::max_evidence`]), oldest first.
    pub fn evidence(&self) -> impl Iterator<Item = &Evidence> {
        self.evidence.iter().map(|(_, e)| e)
    }

    /// Votes and buffered messages currently held (see the bound in the type's docs).
    pub fn votes_held(&self) -> usize {
        self.current.as_ref().map_or(0, |c| c.votes.votes_held()) + self.future.len()
    }

    /// Proposals of the current height currently held, each with its block (see the bound in the type's
    /// docs). Read-only; for tests and metrics.
    pub fn proposals_held(&self) -> usize {
        self.current.as_ref().map_or(0, |c| c.proposals.len())
    }

    /// Processes one input and returns what the host must do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::StartHeight { height, validators } => {
                self.start_height(height, validators, &mut out)
            }
            Input::Proposal(p) => self.on_proposal(p.into_inner(), &mut out),
            Input::Vote(v) => self.on_vote(v.into_inner(), &mut out),
            Input::ProposalValue {
                height,
                view,
                block,
            } => self.on_proposal_value(height, view, block, &mut out),
            Input::Validity {
                height,
                block_hash,
                valid,
            } => self.on_validity(height, block_hash, valid, &mut out),
            Input::Timeout(t) => self.on_timeout(t, &mut out),
            Input::Certified(c) => self.on_certified(c.into_inner(), &mut out),
            Input::Tick { now_ms } => self.on_tick(now_ms),
        }
        out
    }
}
