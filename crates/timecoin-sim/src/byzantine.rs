//! Byzantine behaviours as small named strategies. A Byzantine node runs the real consensus core like
//! everyone else; its strategy decides what actually leaves the node when the core broadcasts (split,
//! doubled, withheld, replayed, corrupted) and which peers it talks to at all.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use timecoin_consensus::Message;
use timecoin_crypto::{ChainId, HashDomain, SecretKey, Signature, hash};
use timecoin_types::{BlockHash, Proposal, Vote};

use crate::runtime::NodeId;

/// What a node does with the messages its core produces.
///
/// An implementation must be deterministic (no clock, no thread RNG): its choices may depend only on the
/// messages it was given and its own state.
pub trait Strategy: fmt::Debug {
    /// Short name for reports.
    fn name(&self) -> &'static str;

    /// The core asked to broadcast `message` (already persisted); put what really goes out in `out`.
    fn on_broadcast(&mut self, message: Message, out: &mut Outbox<'_>);

    /// A consensus message arrived from `from` (decoded, not yet verified).
    fn on_receive(&mut self, _from: NodeId, _message: &Message) {}

    /// Whether the node talks to `peer` at all (both directions, sync included).
    fn talks_to(&self, _peer: NodeId) -> bool {
        true
    }

    /// Whether the node answers sync requests.
    fn serves_sync(&self) -> bool {
        true
    }
}

/// Where a strategy's packets go, and the means to forge them.
pub struct Outbox<'a> {
    pub(crate) me: NodeId,
    pub(crate) nodes: usize,
    pub(crate) key: &'a SecretKey,
    pub(crate) chain: ChainId,
    /// `(recipient, message)`; `None` is every peer.
    pub(crate) sends: Vec<(Option<NodeId>, Message)>,
}

impl Outbox<'_> {
    /// Every other node, in id order.
    pub fn peers(&self) -> Vec<NodeId> {
        (0..self.nodes).filter(|n| *n != self.me).collect()
    }

    /// The peers split into two halves (the first gets the smaller half when odd), for strategies that
    /// tell each half something different.
    pub fn halves(&self) -> (Vec<NodeId>, Vec<NodeId>) {
        let mut peers = self.peers();
        let second = peers.split_off(peers.len() / 2);
        (peers, second)
    }

    /// The node's signing key.
    pub fn key(&self) -> &SecretKey {
        self.key
    }

    /// The chain id signatures bind.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// Sends `message` to one node.
    pub fn send(&mut self, to: NodeId, message: Message) {
        self.sends.push((Some(to), message));
    }

    /// Sends `message` to every peer.
    pub fn send_all(&mut self, message: Message) {
        self.sends.push((None, message));
    }

    /// Sends `message` to each node of `group`.
    pub fn send_group(&mut self, group: &[NodeId], message: &Message) {
        for to in group {
            self.send(*to, message.clone());
        }
    }
}

/// Sends nothing and answers nothing: a crashed node that never comes back, as far as peers can tell.
#[derive(Debug, Default)]
pub struct Silent;

impl Strategy for Silent {
    fn name(&self) -> &'static str {
        "silent"
    }
    fn on_broadcast(&mut self, _message: Message, _out: &mut Outbox<'_>) {}
    fn serves_sync(&self) -> bool {
        false
    }
}

/// As leader, proposes two different valid blocks: one to each half of the peers (PrePrepare
/// equivocation). Votes like an honest node.
#[derive(Debug, Default)]
pub struct EquivocatingLeader {
    /// Conflicting proposals sent.
    pub equivocations: u64,
}

impl Strategy for EquivocatingLeader {
    fn name(&self) -> &'static str {
        "equivocating-leader"
    }
    fn on_broadcast(&mut self, message: Message, out: &mut Outbox<'_>) {
        let Message::Proposal(proposal) = message else {
            out.send_all(message);
            return;
        };
        // A sibling block: same transactions and state, another timestamp, so another hash, equally valid.
        let mut sibling = proposal.block.clone();
        sibling.header.timestamp_ms = sibling.header.timestamp_ms.wrapping_add(1);
        let twin = Proposal::sign(
            out.key(),
            out.chain(),
            proposal.height,
            proposal.view,
            proposal.valid_view,
            sibling,
        );
        let (first, second) = out.halves();
        out.send_group(&first, &Message::Proposal(proposal));
        out.send_group(&second, &Message::Proposal(twin));
        self.equivocations += 1;
    }
}

/// Signs two votes per slot: the core's own to one half of the peers, a conflicting one (nil for a
/// block vote, a made-up block for a nil vote) to the other half, then each half also gets the other
/// vote, so every honest node sees the equivocation.
#[derive(Debug, Default)]
pub struct DoubleVoter {
    /// Conflicting votes sent.
    pub equivocations: u64,
}

impl Strategy for DoubleVoter {
    fn name(&self) -> &'static str {
        "double-voter"
    }
    fn on_broadcast(&mut self, message: Message, out: &mut Outbox<'_>) {
        let Message::Vote(vote) = message else {
            out.send_all(message);
            return;
        };
        let other = match vote.block_hash {
            Some(_) => None,
            None => Some(BlockHash(hash(
                HashDomain::Custom("timecoin-sim double voter"),
                &vote.view.to_le_bytes(),
            ))),
        };
        let second = Vote::sign(
            out.key(),
            out.chain(),
            vote.phase,
            vote.height,
            vote.view,
            other,
        );
        let (a, b) = out.halves();
        let (first, second) = (Message::Vote(vote), Message::Vote(second));
        out.send_group(&a, &first);
        out.send_group(&b, &second);
        out.send_group(&a, &second);
        out.send_group(&b, &first);
        self.equivocations += 1;
    }
}

/// Sends its votes only to the first half of its peers (proposals go to everyone): the rest must reach
/// quorums without it.
#[derive(Debug, Default)]
pub struct VoteWithholder;

impl Strategy for VoteWithholder {
    fn name(&self) -> &'static str {
        "vote-withholder"
    }
    fn on_broadcast(&mut self, message: Message, out: &mut Outbox<'_>) {
        match message {
            Message::Vote(_) => {
                let (some, _) = out.halves();
                out.send_group(&some, &message);
            }
            Message::Proposal(_) => out.send_all(message),
        }
    }
}

/// Old messages replayed with every broadcast.
pub const REPLAYS_PER_BROADCAST: usize = 2;
/// Messages the replayer remembers.
pub const REPLAY_MEMORY: usize = 64;

/// Behaves honestly, and with every broadcast re-sends [`REPLAYS_PER_BROADCAST`] old messages (anyone's,
/// from any height and view) from the last [`REPLAY_MEMORY`] it received.
#[derive(Debug, Default)]
pub struct Replayer {
    memory: VecDeque<Message>,
    cursor: usize,
    /// Old messages re-sent.
    pub replayed: u64,
}

impl Strategy for Replayer {
    fn name(&self) -> &'static str {
        "replayer"
    }
    fn on_broadcast(&mut self, message: Message, out: &mut Outbox<'_>) {
        out.send_all(message);
        for _ in 0..REPLAYS_PER_BROADCAST {
            if self.memory.is_empty() {
                break;
            }
            self.cursor = (self.cursor + 1) % self.memory.len();
            if let Some(old) = self.memory.get(self.cursor) {
                out.send_all(old.clone());
                self.replayed += 1;
            }
        }
    }
    fn on_receive(&mut self, _from: NodeId, message: &Message) {
        if self.memory.len() >= REPLAY_MEMORY {
            self.memory.pop_front();
        }
        self.memory.push_back(message.clone());
    }
}

/// Never sends a valid signature: its own messages go out with a broken signature, and each broadcast
/// also carries a forgery in an honest validator's name (the last vote it heard, pointed at another
/// block with the signature kept). Honest nodes must reject all of it before it reaches their core.
#[derive(Debug, Default)]
pub struct BadSigner {
    last_heard: Option<Vote>,
    /// Corrupted or forged messages sent.
    pub forged: u64,
}

fn corrupt(signature: &Signature) -> Signature {
    let mut bytes = signature.to_bytes();
    if let Some(first) = bytes.first_mut() {
        *first ^= 0x01;
    }
    Signature::from_bytes(bytes)
}

impl Strategy for BadSigner {
    fn name(&self) -> &'static str {
        "bad-signer"
    }
    fn on_broadcast(&mut self, message: Message, out: &mut Outbox<'_>) {
        let broken = match message {
            Message::Vote(mut v) => {
                v.signature = corrupt(&v.signature);
                Message::Vote(v)
            }
            Message::Proposal(mut p) => {
                p.signature = corrupt(&p.signature);
                Message::Proposal(p)
            }
        };
        out.send_all(broken);
        self.forged += 1;
        if let Some(mut forged) = self.last_heard.clone() {
            forged.block_hash = match forged.block_hash {
                Some(_) => None,
                None => Some(BlockHash(hash(
                    HashDomain::Custom("timecoin-sim forgery"),
                    &forged.height.to_le_bytes(),
                ))),
            };
            out.send_all(Message::Vote(forged));
            self.forged += 1;
        }
    }
    fn on_receive(&mut self, _from: NodeId, message: &Message) {
        if let Message::Vote(v) = message {
            self.last_heard = Some(v.clone());
        }
    }
}

/// One of two nodes running with the same key ("twins"): honest code, but each twin lives in its own
/// world, talking only to the nodes of that world, so the key signs conflicting messages.
#[derive(Debug)]
pub struct Twin {
    world: BTreeSet<NodeId>,
}

impl Twin {
    /// A twin that talks only to the nodes in `world`.
    pub fn new(world: BTreeSet<NodeId>) -> Self {
        Twin { world }
    }
}

impl Strategy for Twin {
    fn name(&self) -> &'static str {
        "twin"
    }
    fn on_broadcast(&mut self, message: Message, out: &mut Outbox<'_>) {
        for to in &self.world {
            if *to != out.me {
                out.send(*to, message.clone());
            }
        }
    }
    fn talks_to(&self, peer: NodeId) -> bool {
        self.world.contains(&peer)
    }
}

/// How a node behaves, as configured in a scenario; [`Behavior::strategy`] makes the strategy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Follows the protocol.
    Honest,
    /// [`Silent`].
    Silent,
    /// [`EquivocatingLeader`].
    EquivocatingLeader,
    /// [`DoubleVoter`].
    DoubleVoter,
    /// [`VoteWithholder`].
    VoteWithholder,
    /// [`Replayer`].
    Replayer,
    /// [`BadSigner`].
    BadSigner,
    /// [`Twin`] talking to the given nodes.
    Twin(BTreeSet<NodeId>),
}

impl Behavior {
    /// Every single-node Byzantine strategy (twins need two nodes and are set up by the driver).
    pub const SINGLE_NODE: [Behavior; 6] = [
        Behavior::Silent,
        Behavior::EquivocatingLeader,
        Behavior::DoubleVoter,
        Behavior::VoteWithholder,
        Behavior::Replayer,
        Behavior::BadSigner,
    ];

    /// Whether the node follows the protocol.
    pub fn is_honest(&self) -> bool {
        *self == Behavior::Honest
    }

    /// The strategy, or `None` for an honest node.
    pub fn strategy(&self) -> Option<Box<dyn Strategy>> {
        match self {
            Behavior::Honest => None,
            Behavior::Silent => Some(Box::new(Silent)),
            Behavior::EquivocatingLeader => Some(Box::<EquivocatingLeader>::default()),
            Behavior::DoubleVoter => Some(Box::<DoubleVoter>::default()),
            Behavior::VoteWithholder => Some(Box::new(VoteWithholder)),
            Behavior::Replayer => Some(Box::<Replayer>::default()),
            Behavior::BadSigner => Some(Box::<BadSigner>::default()),
            Behavior::Twin(world) => Some(Box::new(Twin::new(world.clone()))),
        }
    }

    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Behavior::Honest => "honest",
            Behavior::Silent => "silent",
            Behavior::EquivocatingLeader => "equivocating-leader",
            Behavior::DoubleVoter => "double-voter",
            Behavior::VoteWithholder => "vote-withholder",
            Behavior::Replayer => "replayer",
            Behavior::BadSigner => "bad-signer",
            Behavior::Twin(_) => "twin",
        }
    }
}
