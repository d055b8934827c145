//! The door: nothing reaches the core unverified. Bytes are decoded canonically (a proposal's block
//! only as a well-formed block, its body bound to its header), duplicates are answered from a bounded
//! seen-cache, and signatures are checked in batches on the rayon pool against the validator set of the
//! message's own height.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rayon::prelude::*;
use timecoin_consensus::{Message, ValidatorRegistry, ValidatorSet, Verified};
use timecoin_crypto::ChainId;
use timecoin_net::{Channel, NetEvent};
use timecoin_types::{Height, Vote};

use super::Event;

/// Fewest votes verified per rayon task: below this, a task loses most of the batch equation's
/// speed-up. Above it, a height's votes are split evenly over the pool's threads (99 votes on 2
/// threads: 50 + 49, where fixed chunks of 64 left one thread 64 and the other 35).
const MIN_VOTE_CHUNK: usize = 32;

/// Votes of one height checked in one batch against that height's set, with their event indexes.
type VoteChunk = (Arc<ValidatorSet>, Vec<(usize, Vote)>);

/// What the door concluded about one consensus message.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// It decoded and its signature and signer check out.
    Valid {
        /// The message.
        message: Verified<Message>,
        /// Whether these exact bytes were seen before.
        duplicate: bool,
    },
    /// It decoded but a check failed.
    Invalid {
        /// Whether these exact bytes were seen before.
        duplicate: bool,
    },
    /// It did not decode.
    Malformed,
}

/// A remembered verdict.
#[derive(Debug)]
enum Seen {
    /// Checked and valid. A vote is kept decoded (about 200 bytes), so a repeat, the most common
    /// duplicate by far, is answered without decoding it again; a proposal, which carries a whole block,
    /// is not kept and is decoded again on the rare repeat.
    Valid(Option<Vote>),
    /// Checked and refused: never decoded again.
    Invalid,
}

/// The seen-cache and the batch verifier.
///
/// Bound: at most `capacity` verdicts, the oldest forgotten first, each holding at most one vote.
#[derive(Debug)]
pub struct Door {
    seen: BTreeMap<[u8; 32], Seen>,
    order: VecDeque<[u8; 32]>,
    capacity: usize,
}

impl Door {
    /// A door remembering up to `capacity` verdicts.
    pub fn new(capacity: usize) -> Self {
        Door {
            seen: BTreeMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Verdicts remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no verdict is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// One entry per event: a verdict for each consensus message, `None` for anything else.
    pub(crate) fn check_batch(
        &mut self,
        events: &[Event],
        registry: &ValidatorRegistry,
        chain: ChainId,
    ) -> Vec<Option<Verdict>> {
        let mut vote_jobs: BTreeMap<Height, Vec<(usize, Vote)>> = BTreeMap::new();
        let mut proposal_jobs: Vec<(usize, Message)> = Vec::new();
        let mut digests: BTreeMap<usize, [u8; 32]> = BTreeMap::new();
        let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            verdicts.push(None);
            let Event::Net(NetEvent::Message {
                channel: Channel::Consensus,
                bytes,
                ..
            }) = event
            else {
                continue;
            };
            let digest = *blake3::hash(bytes).as_bytes();
            let verdict = match self.seen.get(&digest) {
                // A message already judged bad is not even decoded again.
                Some(Seen::Invalid) => Verdict::Invalid { duplicate: true },
                // These exact bytes passed before, and a height's set never changes.
                Some(Seen::Valid(Some(vote))) => Verdict::Valid {
                    message: Verified::assume_verified(Message::Vote(vote.clone())),
                    duplicate: true,
                },
                Some(Seen::Valid(None)) => match crate::wire::decode_consensus(bytes) {
                    Ok(message) => Verdict::Valid {
                        message: Verified::assume_verified(message),
                        duplicate: true,
                    },
                    Err(_) => Verdict::Malformed,
                },
                None => match crate::wire::decode_consensus(bytes) {
                    Err(_) => Verdict::Malformed,
                    Ok(Message::Vote(vote)) => {
                        digests.insert(index, digest);
                        vote_jobs
                            .entry(vote.height)
                            .or_default()
                            .push((index, vote));
                        continue;
                    }
                    Ok(proposal) => {
                        digests.insert(index, digest);
                        proposal_jobs.push((index, proposal));
                        continue;
                    }
                },
            };
            if let Some(slot) = verdicts.last_mut() {
                *slot = Some(verdict);
            }
        }
        let heights = vote_jobs
            .keys()
            .copied()
            .chain(proposal_jobs.iter().map(|(_, m)| m.height()));
        let sets: BTreeMap<Height, Arc<ValidatorSet>> = heights
            .map(|h| (h, registry.set_for(h).unwrap_or_else(|| registry.current())))
            .collect();
        let mut chunks: Vec<VoteChunk> = Vec::new();
        for (height, mut jobs) in vote_jobs {
            let Some(set) = sets.get(&height) else {
                continue;
            };
            let threads = rayon::current_num_threads().max(1);
            let chunk = jobs.len().div_ceil(threads).max(MIN_VOTE_CHUNK);
            while !jobs.is_empty() {
                let rest = jobs.split_off(jobs.len().min(chunk));
                chunks.push((set.clone(), std::mem::replace(&mut jobs, rest)));
            }
        }
        let vote_results: Vec<(usize, Option<Verified<Message>>)> = chunks
            .into_par_iter()
            .flat_map_iter(|(set, jobs)| {
                let (indexes, votes): (Vec<usize>, Vec<Vote>) = jobs.into_iter().unzip();
                let checked = Verified::<Vote>::verify_many(votes, chain, &set);
                indexes.into_iter().zip(checked).map(|(i, r)| {
                    (
                        i,
                        r.ok()
                            .map(|v| Verified::assume_verified(Message::Vote(v.into_inner()))),
                    )
                })
            })
            .collect();
        let proposal_results: Vec<(usize, Option<Verified<Message>>)> = proposal_jobs
            .into_par_iter()
            .map(|(i, message)| {
                let set = sets.get(&message.height());
                let checked =
                    set.and_then(|set| Verified::<Message>::verify(message, chain, set).ok());
                (i, checked)
            })
            .collect();
        for (index, result) in vote_results.into_iter().chain(proposal_results) {
            if let Some(digest) = digests.get(&index) {
                let seen = match &result {
                    Some(message) => match &**message {
                        Message::Vote(vote) => Seen::Valid(Some(vote.clone())),
                        Message::Proposal(_) => Seen::Valid(None),
                    },
                    None => Seen::Invalid,
                };
                self.remember(*digest, seen);
            }
            if let Some(slot) = verdicts.get_mut(index) {
                *slot = Some(match result {
                    Some(message) => Verdict::Valid {
                        message,
                        duplicate: false,
                    },
                    None => Verdict::Invalid { duplicate: false },
                });
            }
        }
        verdicts
    }

    fn remember(&mut self, digest: [u8; 32], seen: Seen) {
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        if self.seen.insert(digest, seen).is_none() {
            self.order.push_back(digest);
        }
    }
}
