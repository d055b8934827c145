//! What each input of the height does to its driver. The core already routed the input here: messages
//! are of this height; the application's answers and the timers say their height, checked here.

use std::collections::btree_map::Entry;

use timecoin_types::{BlockHash, Height, Proposal, View, Vote, WellFormedBlock};
use tracing::{debug, info, warn};

use super::{Context, HeightDriver, KnownProposal, Validity};
use crate::round::{RoundEvent, Step, TimeoutKind, ValueAt};
use crate::sync::CertifiedBlock;
use crate::votes::AddOutcome;
use crate::{Evidence, Message, Output, ProposalDigest, Timeout};

impl HeightDriver {
    /// A proposal or vote of this height.
    pub(in crate::core) fn on_message(
        &mut self,
        message: Message,
        cx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) {
        match message {
            Message::Proposal(p) => self.on_proposal(p, cx, out),
            Message::Vote(v) => self.on_vote(v, cx, out),
        }
    }

    fn on_vote(&mut self, vote: Vote, cx: &mut Context<'_>, out: &mut Vec<Output>) {
        let in_window = self.in_window(vote.view, cx.config);
        if !self.validators.contains(&vote.voter) {
            debug!(voter = %vote.voter, "vote from a non-member ignored");
            return;
        }
        self.votes.note_view(vote.voter, vote.view, self.round.view);
        if in_window {
            match self.votes.add(vote, cx.now_ms) {
                AddOutcome::Equivocation(evidence) => cx.record_evidence(evidence, out),
                AddOutcome::Counted | AddOutcome::Ignored | AddOutcome::Repeated => {}
            }
        }
        self.progress(cx, out);
    }

    fn on_proposal(&mut self, proposal: Proposal, cx: &mut Context<'_>, out: &mut Vec<Output>) {
        let height = self.round.height;
        let in_window = self.in_window(proposal.view, cx.config);
        if *self.validators.leader(height, proposal.view) != proposal.proposer {
            debug!(proposer = %proposal.proposer, view = proposal.view, "proposal from a non-leader ignored");
            return;
        }
        self.votes
            .note_view(proposal.proposer, proposal.view, self.round.view);
        if self.round.step == Step::Finalized {
            // Decided: no block of this height needs judging any more.
            return;
        }
        if !in_window {
            self.progress(cx, out);
            return;
        }
        if let Some(first) = self.proposals.get_mut(&proposal.view) {
            let (first_digest, second) = (
                ProposalDigest::of(&first.proposal),
                ProposalDigest::of(&proposal),
            );
            if first_digest == second {
                // The same signed proposal again: keep a proof of lock the first copy lacked (the proof
                // stands outside the leader's signature, so a copy may arrive without it).
                if first.proposal.lock_proof.is_none() && proposal.lock_proof.is_some() {
                    first.proposal.lock_proof = proposal.lock_proof;
                    self.progress(cx, out);
                }
                return;
            }
            if self.double_proposals.insert(proposal.view, ()).is_none() {
                cx.record_evidence(
                    Evidence::DoubleProposal {
                        first: first_digest,
                        second,
                    },
                    out,
                );
            }
            return;
        }
        let block_hash = proposal.block.hash();
        if let Entry::Vacant(entry) = self.validity.entry(block_hash) {
            if proposal.block.header.height != height
                || proposal.block.header.chain_id != cx.config.chain_id
            {
                // Not a block of this height at all; no need to ask the application.
                entry.insert(Validity::Invalid);
            } else {
                entry.insert(Validity::Pending);
                out.push(Output::RequestValidity {
                    height,
                    view: proposal.view,
                    block: proposal.block.clone(),
                });
            }
        }
        let names_a_view = proposal.valid_view.is_some();
        self.proposals.insert(
            proposal.view,
            KnownProposal {
                block_hash,
                proposal,
            },
        );
        if names_a_view {
            // It may pin a view and push a farther one out of the pinned set: drop that one's votes now,
            // so the kept views never exceed the bound, not even between view changes.
            self.prune_now(cx);
        }
        self.progress(cx, out);
    }

    pub(in crate::core) fn on_proposal_value(
        &mut self,
        height: Height,
        view: View,
        block: WellFormedBlock,
        cx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) {
        let round = &self.round;
        if round.height != height
            || round.view != view
            || round.step != Step::PrePrepare
            || *self.validators.leader(height, view) != cx.me
            || self.proposals.contains_key(&view)
        {
            debug!(height, view, "late or unasked proposal value ignored");
            return;
        }
        if block.header.height != height {
            warn!(
                height,
                block_height = block.header.height,
                "application proposed a block of another height; ignored"
            );
            return;
        }
        self.sign_proposal(view, None, block, None, cx, out);
        self.progress(cx, out);
    }

    pub(in crate::core) fn on_validity(
        &mut self,
        height: Height,
        block_hash: BlockHash,
        valid: bool,
        cx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) {
        if self.round.height != height || self.validity(&block_hash) != Validity::Pending {
            return;
        }
        if !self.validity.contains_key(&block_hash) {
            return;
        }
        let verdict = if valid {
            Validity::Valid
        } else {
            Validity::Invalid
        };
        self.validity.insert(block_hash, verdict);
        self.progress(cx, out);
    }

    pub(in crate::core) fn on_timeout(
        &mut self,
        timeout: Timeout,
        cx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) {
        if self.round.height != timeout.height {
            return;
        }
        if timeout.kind == TimeoutKind::Retransmit {
            if timeout.view == self.round.view && self.round.step != Step::Finalized {
                // Earlier views too: a peer that missed this node's Prepare of an old view may need it as
                // the proof of a lock (L28/L36), and nothing else would ever resend it. The window matches
                // the views receivers keep, so the resend stays bounded.
                let oldest = timeout.view.saturating_sub(cx.config.max_past_views);
                for (view, _, message) in self.signed.since(oldest) {
                    if view <= timeout.view {
                        out.push(Output::Broadcast(message.clone()));
                    }
                }
                self.schedule(TimeoutKind::Retransmit, cx, out);
            }
            return;
        }
        self.fire(
            RoundEvent::Timeout {
                view: timeout.view,
                kind: timeout.kind,
            },
            cx,
            out,
        );
        self.progress(cx, out);
    }

    pub(in crate::core) fn on_certified(
        &mut self,
        certified: CertifiedBlock,
        out: &mut Vec<Output>,
    ) {
        if self.round.height != certified.height() || self.round.step == Step::Finalized {
            return;
        }
        info!(
            height = self.round.height,
            "height decided by a synced certificate"
        );
        self.round.decision = Some(ValueAt {
            view: certified.certificate.view,
            block_hash: certified.certificate.block_hash,
        });
        self.round.step = Step::Finalized;
        out.push(Output::Decided {
            block: certified.block,
            certificate: certified.certificate,
        });
    }
}
