//! Messages for heights the core has not reached yet.

use std::collections::BTreeMap;

use timecoin_crypto::PublicKey;
use timecoin_types::{Height, MAX_VALIDATORS};

use crate::Message;

/// Messages that arrived for future heights, per sender.
///
/// Bounds: at most [`MAX_VALIDATORS`] senders, each with at most `max_messages` votes and `max_proposals`
/// proposals (so at most `MAX_VALIDATORS · max_proposals` blocks); entries older than the TTL are dropped
/// by [`FutureBuffer::expire`].
#[derive(Debug, Default)]
pub(crate) struct FutureBuffer {
    senders: BTreeMap<PublicKey, Vec<(u64, Message)>>,
    held: usize,
}

/// Why a message was not buffered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BufferRefusal {
    /// The sender's share is full.
    SenderFull,
    /// Too many distinct senders.
    TooManySenders,
}

impl FutureBuffer {
    pub(crate) fn push(
        &mut self,
        message: Message,
        now_ms: u64,
        max_messages: usize,
        max_proposals: usize,
    ) -> Result<(), BufferRefusal> {
        let sender = message.signer();
        if !self.senders.contains_key(&sender) && self.senders.len() >= MAX_VALIDATORS {
            return Err(BufferRefusal::TooManySenders);
        }
        let queue = self.senders.entry(sender).or_default();
        if queue.iter().any(|(_, m)| *m == message) {
            return Ok(());
        }
        let is_proposal = matches!(message, Message::Proposal(_));
        let proposals = queue
            .iter()
            .filter(|(_, m)| matches!(m, Message::Proposal(_)))
            .count();
        let votes = queue.len() - proposals;
        if (is_proposal && proposals >= max_proposals) || (!is_proposal && votes >= max_messages) {
            return Err(BufferRefusal::SenderFull);
        }
        queue.push((now_ms, message));
        self.held += 1;
        Ok(())
    }

    /// Removes and returns the messages of `height` (in arrival order per sender, senders by key), and
    /// drops those of lower heights.
    pub(crate) fn take_height(&mut self, height: Height) -> Vec<Message> {
        let mut taken = Vec::new();
        for queue in self.senders.values_mut() {
            let mut kept = Vec::with_capacity(queue.len());
            for (at, message) in queue.drain(..) {
                match message.height().cmp(&height) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => taken.push(message),
                    std::cmp::Ordering::Greater => kept.push((at, message)),
                }
            }
            *queue = kept;
        }
        self.senders.retain(|_, q| !q.is_empty());
        self.recount();
        taken
    }

    /// Drops messages that arrived before `before_ms`.
    pub(crate) fn expire(&mut self, before_ms: u64) {
        for queue in self.senders.values_mut() {
            queue.retain(|(at, _)| *at >= before_ms);
        }
        self.senders.retain(|_, q| !q.is_empty());
        self.recount();
    }

    fn recount(&mut self) {
        self.held = self.senders.values().map(Vec::len).sum();
    }

    /// Messages held.
    pub(crate) fn len(&self) -> usize {
        self.held
    }
}
