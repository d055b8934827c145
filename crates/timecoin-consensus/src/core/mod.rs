//! The consensus core: routes each input to the driver of the height being decided, buffers messages
//! for later heights, starts heights, restores from the WAL, and keeps what spans heights (settings,
//! signer, clock, evidence).
//!
//! `driver/` holds the driver of one height (its state, what each input does, the rules);
//! `sign_log.rs` what this node signed at a height; `evidence.rs` the evidence collected.

mod driver;
mod evidence;
mod sign_log;

use std::fmt;
use std::sync::Arc;

use timecoin_crypto::PublicKey;
use timecoin_types::Height;
use tracing::{debug, info, warn};

use crate::buffer::FutureBuffer;
use crate::round::{LockRule, RoundState};
use crate::{
    Config, ConsensusError, Evidence, Input, Message, Output, Signer, ValidatorSet, WalEntry,
};
pub use driver::MAX_PINNED_VIEWS;
use driver::{Context, HeightDriver};
use evidence::EvidenceLog;
use sign_log::SignLog;

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
    current: Option<HeightDriver>,
    /// What the WAL says this node signed, until a height starts: then it moves into that height's
    /// driver if it is of that height, and is dropped if older.
    restored: Option<SignLog>,
    future: FutureBuffer,
    evidence: EvidenceLog,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("me", &self.me)
            .field("round", &self.current.as_ref().map(HeightDriver::round))
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
            restored: None,
            future: FutureBuffer::default(),
            evidence: EvidenceLog::default(),
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
        let mut log = SignLog::default();
        for entry in wal {
            if entry.signer() != core.me {
                return Err(ConsensusError::ForeignWal {
                    expected: Box::new(core.me),
                    found: Box::new(entry.signer()),
                });
            }
            log.replay(entry);
        }
        core.restored = Some(log);
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
        self.current.as_ref().map(HeightDriver::height)
    }

    /// The state of the height being decided: view, step, lock, valid value, decision.
    pub fn round_state(&self) -> Option<&RoundState> {
        self.current.as_ref().map(HeightDriver::round)
    }

    /// The validator set of the current height.
    pub fn validators(&self) -> Option<&Arc<ValidatorSet>> {
        self.current.as_ref().map(HeightDriver::validators)
    }

    /// Evidence collected (bounded by [`Config::max_evidence`]), oldest first.
    pub fn evidence(&self) -> impl Iterator<Item = &Evidence> {
        self.evidence.iter()
    }

    /// Votes and buffered messages currently held (see the bound in the type's docs).
    pub fn votes_held(&self) -> usize {
        self.current.as_ref().map_or(0, HeightDriver::votes_held) + self.future.len()
    }

    /// Proposals of the current height currently held, each with its block (see the bound in the type's
    /// docs). Read-only; for tests and metrics.
    pub fn proposals_held(&self) -> usize {
        self.current
            .as_ref()
            .map_or(0, HeightDriver::proposals_held)
    }

    /// Processes one input and returns what the host must do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::StartHeight { height, validators } => {
                self.start_height(height, validators, &mut out)
            }
            Input::Proposal(p) => self.route(Message::Proposal(p.into_inner()), &mut out),
            Input::Vote(v) => self.route(Message::Vote(v.into_inner()), &mut out),
            Input::Tick { now_ms } => self.on_tick(now_ms),
            Input::ProposalValue {
                height,
                view,
                block,
            } => {
                if let Some((driver, mut cx)) = self.driver() {
                    driver.on_proposal_value(height, view, block, &mut cx, &mut out);
                }
            }
            Input::Validity {
                height,
                block_hash,
                valid,
            } => {
                if let Some((driver, mut cx)) = self.driver() {
                    driver.on_validity(height, block_hash, valid, &mut cx, &mut out);
                }
            }
            Input::Timeout(t) => {
                if let Some((driver, mut cx)) = self.driver() {
                    driver.on_timeout(t, &mut cx, &mut out);
                }
            }
            Input::Certified(c) => {
                if let Some(driver) = self.current.as_mut() {
                    driver.on_certified(c.into_inner(), &mut out);
                }
            }
        }
        out
    }

    /// The current height's driver, with what it borrows from the core; `None` before the first height.
    fn driver(&mut self) -> Option<(&mut HeightDriver, Context<'_>)> {
        let driver = self.current.as_mut()?;
        let cx = Context {
            config: &self.config,
            signer: &*self.signer,
            me: self.me,
            now_ms: self.now_ms,
            lock_rule: self.lock_rule,
            evidence: &mut self.evidence,
        };
        Some((driver, cx))
    }

    fn start_height(
        &mut self,
        height: Height,
        validators: Arc<ValidatorSet>,
        out: &mut Vec<Output>,
    ) {
        if self.height().is_some_and(|h| height <= h) {
            debug!(
                height,
                "start of a height not above the current one ignored"
            );
            return;
        }
        if let Some(signed) = self.restored.as_ref().map(SignLog::height)
            && height < signed
        {
            // The WAL shows this node signed at a later height: signing here again could contradict
            // messages whose record the host has since deleted.
            warn!(
                height,
                signed, "refusing to start a height below one this node already signed at"
            );
            return;
        }
        let signed = self
            .restored
            .take()
            .filter(|log| log.height() == height)
            .unwrap_or_else(|| SignLog::new(height));
        info!(height, validators = validators.len(), "starting height");
        self.current = Some(HeightDriver::new(height, validators, signed, self.now_ms));
        let buffered = self.future.take_height(height);
        if let Some((driver, mut cx)) = self.driver() {
            driver.start(buffered, &mut cx, out);
        }
    }

    /// Hands a message of the current height to its driver, buffers one of a later height (or any before
    /// the first height), and drops one of an earlier height.
    fn route(&mut self, message: Message, out: &mut Vec<Output>) {
        match self.height() {
            Some(height) if message.height() == height => {
                if let Some((driver, mut cx)) = self.driver() {
                    driver.on_message(message, &mut cx, out);
                }
            }
            Some(height) if message.height() < height => {}
            _ => self.buffer_future(message),
        }
    }

    fn buffer_future(&mut self, message: Message) {
        if let Some(current) = self.height() {
            let ahead = message.height().saturating_sub(current);
            if ahead > self.config.max_future_heights {
                debug!(height = message.height(), "message too far ahead dropped");
                return;
            }
        }
        if let Err(why) = self.future.push(
            message,
            self.now_ms,
            self.config.max_future_messages_per_validator,
            self.config.max_future_proposals_per_validator,
        ) {
            debug!(?why, "future message dropped");
        }
    }

    fn on_tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let ttl = u64::try_from(self.config.vote_ttl.as_millis()).unwrap_or(u64::MAX);
        let expired_before = self.now_ms.saturating_sub(ttl);
        self.future.expire(expired_before);
        self.evidence.expire(expired_before);
        if let Some(driver) = self.current.as_mut() {
            driver.prune_views(&self.config, expired_before);
        }
    }
}
