//! Byzantine behaviours as small named strategies. A Byzantine node runs the real consensus core like
//! everyone else; its strategy decides what actually leaves the node when the core broadcasts (split,
//! doubled, withheld, replayed, corrupted) and which peers it talks to at all.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use timecoin_consensus::{CertifiedBlock, Message};
use timecoin_crypto::{Address, ChainId, HashDomain, SecretKey, Signature, hash};
use timecoin_node::wire::{SnapshotPage, SyncMessage};
use timecoin_types::{
    Amount, Block, BlockHash, OutPoint, Proposal, TxBuilder, TxId, Vote, WellFormedBlock, codec,
};

use crate::node::Packet;
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

    /// A consensus message arrived from `from` (decoded, not yet verified); `out` is for whatever the
    /// strategy sends in reaction (a relay's forwarded copies).
    fn on_receive(&mut self, _from: NodeId, _message: &Message, _out: &mut Outbox<'_>) {}

    /// The node serves `certified` to a syncing peer: the bytes to send instead, if the strategy forges
    /// them.
    fn forge_sync(&mut self, _certified: &CertifiedBlock, _out: &Outbox<'_>) -> Option<Vec<u8>> {
        None
    }

    /// The node answers a state-sync request (headers, a UTXO page) with `message`: what it sends
    /// instead.
    fn forge_sync_answer(&mut self, message: SyncMessage) -> SyncMessage {
        message
    }

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
    /// `(recipient, packet)`; `None` is every peer.
    pub(crate) sends: Vec<(Option<NodeId>, Packet)>,
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
        self.sends.push((Some(to), Packet::consensus(&message)));
    }

    /// Sends `message` to every peer.
    pub fn send_all(&mut self, message: Message) {
        self.sends.push((None, Packet::consensus(&message)));
    }

    /// Sends raw consensus bytes to every peer: for forgeries no honest encoder can produce.
    pub fn send_all_raw(&mut self, bytes: Vec<u8>) {
        self.sends.push((None, Packet::raw_consensus(bytes)));
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
        let mut sibling = proposal.block.clone().into_block();
        sibling.header.timestamp_ms = sibling.header.timestamp_ms.wrapping_add(1);
        let sibling = sibling.seal();
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
    fn on_receive(&mut self, _from: NodeId, message: &Message, _out: &mut Outbox<'_>) {
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
    fn on_receive(&mut self, _from: NodeId, message: &Message, _out: &mut Outbox<'_>) {
        if let Message::Vote(v) = message {
            self.last_heard = Some(v.clone());
        }
    }
}

/// The targeted double voter: each view it picks one honest peer (a different one each view, by view
/// number) and sends it the core's block votes, while every other peer gets a nil vote for the same slot
/// and never the block vote. Only one honest node can then count it towards a quorum for the block, so it
/// splits proofs of lock as far as one key can: that node may lock where the others cannot see why.
#[derive(Debug, Default)]
pub struct LockSplitter {
    /// Split votes sent.
    pub splits: u64,
}

impl Strategy for LockSplitter {
    fn name(&self) -> &'static str {
        "lock-splitter"
    }
    fn on_broadcast(&mut self, message: Message, out: &mut Outbox<'_>) {
        let Message::Vote(vote) = message else {
            out.send_all(message);
            return;
        };
        if vote.block_hash.is_none() {
            out.send_all(Message::Vote(vote));
            return;
        }
        let peers = out.peers();
        let Some(len) = std::num::NonZeroUsize::new(peers.len()) else {
            return;
        };
        let chosen = peers
            .get(vote.view as usize % len.get())
            .copied()
            .unwrap_or_default();
        let nil = Vote::sign(
            out.key(),
            out.chain(),
            vote.phase,
            vote.height,
            vote.view,
            None,
        );
        out.send(chosen, Message::Vote(vote));
        for peer in peers.into_iter().filter(|p| *p != chosen) {
            out.send(peer, Message::Vote(nil.clone()));
        }
        self.splits += 1;
    }
}

/// Votes honestly, and relays every proposal it hears from others, and every block it serves to a
/// syncing peer, with the body swapped under the genuine header and signatures: alternately one input
/// signature corrupted (the txids, and so the block id, stay the same) and the transaction list changed.
/// Honest nodes must refuse every copy at decoding, so equal block ids keep meaning equal bodies.
#[derive(Debug, Default)]
pub struct BodySwapper {
    swaps: u64,
    /// Forged proposals and synced blocks sent.
    pub forged: u64,
}

impl BodySwapper {
    /// The genuine block with its body swapped (never the genuine body itself).
    fn swap(&mut self, block: &WellFormedBlock, out: &Outbox<'_>) -> Block {
        self.swaps += 1;
        let mut body = block.block().clone();
        let has_transactions = !body.transactions.is_empty();
        let first_input = body
            .transactions
            .iter_mut()
            .find_map(|tx| tx.inputs.first_mut());
        match (self.swaps % 3, first_input) {
            (0, Some(input)) => input.signature = corrupt(&input.signature),
            (1, _) if has_transactions => {
                body.transactions.pop();
            }
            _ => body.transactions.push(junk_transfer(out, self.swaps)),
        }
        body
    }
}

/// A signed transfer from the relay's own key spending an output that does not exist.
fn junk_transfer(out: &Outbox<'_>, salt: u64) -> timecoin_types::Transaction {
    let missing = OutPoint {
        txid: TxId(hash(
            HashDomain::Custom("timecoin-sim body swapper"),
            &salt.to_le_bytes(),
        )),
        vout: 0,
    };
    let amount = Amount::from_sat(1_000_000);
    TxBuilder::new(out.chain())
        .input(missing, amount, out.key())
        .output(Address::from_public_key(&out.key().public_key()), amount)
        .sign()
}

/// The wire bytes of `proposal` as a [`Message`] with `body` in place of its block: the same layout as
/// [`Message::Proposal`] (variant 0, then the fields in order), which no honest encoder can produce for a
/// body that does not match its header.
pub fn proposal_bytes_with_body(proposal: &Proposal, body: &Block) -> Vec<u8> {
    let mut bytes = vec![0u8];
    bytes.extend(codec::encode(&(
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

/// The wire bytes of `certified` with `body` in place of its block (see [`proposal_bytes_with_body`]).
pub fn certified_bytes_with_body(certified: &CertifiedBlock, body: &Block) -> Vec<u8> {
    codec::encode(&(body, &certified.certificate))
}

impl Strategy for BodySwapper {
    fn name(&self) -> &'static str {
        "body-swapper"
    }
    fn on_broadcast(&mut self, message: Message, out: &mut Outbox<'_>) {
        out.send_all(message);
    }
    fn on_receive(&mut self, _from: NodeId, message: &Message, out: &mut Outbox<'_>) {
        let Message::Proposal(proposal) = message else {
            return;
        };
        if proposal.proposer == out.key().public_key() {
            return;
        }
        let body = self.swap(&proposal.block, out);
        out.send_all_raw(proposal_bytes_with_body(proposal, &body));
        self.forged += 1;
    }
    fn forge_sync(&mut self, certified: &CertifiedBlock, out: &Outbox<'_>) -> Option<Vec<u8>> {
        let body = self.swap(&certified.block, out);
        self.forged += 1;
        Some(certified_bytes_with_body(certified, &body))
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
    /// [`BodySwapper`].
    BodySwapper,
    /// [`LockSplitter`].
    LockSplitter,
    /// [`Twin`] talking to the given nodes.
    Twin(BTreeSet<NodeId>),
    /// [`SnapshotLiar`].
    SnapshotLiar,
    /// [`HeaderLiar`].
    HeaderLiar,
}

/// Follows consensus, but serves state sync a UTXO set with one output's amount raised by one unit in
/// every page: pages that keep every rule a page can be checked by, so only the hash of the whole set
/// gives it away.
#[derive(Debug, Default)]
pub struct SnapshotLiar {
    /// Pages forged.
    pub forged: u64,
}

impl Strategy for SnapshotLiar {
    fn name(&self) -> &'static str {
        "snapshot-liar"
    }

    fn on_broadcast(&mut self, message: Message, out: &mut Outbox<'_>) {
        out.send_all(message);
    }

    fn forge_sync_answer(&mut self, message: SyncMessage) -> SyncMessage {
        let SyncMessage::Page { compressed } = &message else {
            return message;
        };
        let Ok(mut page) = SnapshotPage::from_compressed(compressed) else {
            return message;
        };
        let Some((_, out)) = page.entries.first_mut() else {
            return message;
        };
        let Some(raised) = out.amount.checked_add(timecoin_types::Amount::from_sat(1)) else {
            return message;
        };
        out.amount = raised;
        self.forged += 1;
        page.to_message()
    }
}

/// Follows consensus, but claims a tip 1,000 heights above its own and serves a state sync's header
/// walk headers it cannot check: the body that explains a moved validator schedule withheld, or else a
/// certificate signature altered.
#[derive(Debug, Default)]
pub struct HeaderLiar {
    /// Answers forged.
    pub forged: u64,
}

impl Strategy for HeaderLiar {
    fn name(&self) -> &'static str {
        "header-liar"
    }

    fn on_broadcast(&mut self, message: Message, out: &mut Outbox<'_>) {
        out.send_all(message);
    }

    fn forge_sync_answer(&mut self, message: SyncMessage) -> SyncMessage {
        let mut headers = match message {
            // It claims a tip far above the real one, which it cannot serve.
            SyncMessage::Status { height } => {
                return SyncMessage::Status {
                    height: height.saturating_add(1_000),
                };
            }
            SyncMessage::Headers(headers) => headers,
            other => return other,
        };
        if let Some(first) = headers.first_mut() {
            if first.body.is_some() {
                first.body = None;
            } else if let Some((_, signature)) = first.certificate.signatures.first_mut() {
                let mut bytes = signature.to_bytes();
                bytes[0] ^= 1;
                *signature = Signature::from_bytes(bytes);
            }
            self.forged += 1;
        }
        SyncMessage::Headers(headers)
    }
}

impl Behavior {
    /// Every single-node Byzantine strategy (twins need two nodes and are set up by the driver).
    pub const SINGLE_NODE: [Behavior; 7] = [
        Behavior::Silent,
        Behavior::EquivocatingLeader,
        Behavior::DoubleVoter,
        Behavior::VoteWithholder,
        Behavior::Replayer,
        Behavior::BadSigner,
        Behavior::BodySwapper,
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
            Behavior::BodySwapper => Some(Box::<BodySwapper>::default()),
            Behavior::LockSplitter => Some(Box::<LockSplitter>::default()),
            Behavior::Twin(world) => Some(Box::new(Twin::new(world.clone()))),
            Behavior::SnapshotLiar => Some(Box::<SnapshotLiar>::default()),
            Behavior::HeaderLiar => Some(Box::<HeaderLiar>::default()),
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
            Behavior::BodySwapper => "body-swapper",
            Behavior::LockSplitter => "lock-splitter",
            Behavior::Twin(_) => "twin",
            Behavior::SnapshotLiar => "snapshot-liar",
            Behavior::HeaderLiar => "header-liar",
        }
    }
}

#[cfg(test)]
mod tests {
    use timecoin_consensus::CertifiedBlock;
    use timecoin_types::{CommitCertificate, Genesis, Wire};

    use super::*;

    fn genuine() -> (Proposal, CertifiedBlock, SecretKey) {
        let genesis = Genesis::local(4);
        let key = Genesis::local_validator_key(0);
        let mut block = genesis.block().into_block();
        block.header.height = 1;
        block.header.parent = genesis.block().hash();
        let block = block.seal();
        let proposal = Proposal::sign(&key, genesis.params.chain_id, 1, 0, None, block.clone());
        let certified = CertifiedBlock {
            certificate: CommitCertificate {
                height: 1,
                view: 0,
                block_hash: block.hash(),
                signatures: Vec::new(),
            },
            block,
        };
        (proposal, certified, key)
    }

    #[test]
    fn the_forgers_layout_is_the_real_wire_layout_and_every_swap_is_refused() {
        let (proposal, certified, key) = genuine();
        assert_eq!(
            proposal_bytes_with_body(&proposal, &proposal.block),
            Message::Proposal(proposal.clone()).encode()
        );
        assert_eq!(
            certified_bytes_with_body(&certified, &certified.block),
            certified.encode()
        );
        let out = Outbox {
            me: 0,
            nodes: 4,
            key: &key,
            chain: proposal.block.header.chain_id,
            sends: Vec::new(),
        };
        let mut swapper = BodySwapper::default();
        for _ in 0..6 {
            let body = swapper.swap(&proposal.block, &out);
            assert_ne!(body, *proposal.block.block());
            assert!(Message::decode(&proposal_bytes_with_body(&proposal, &body)).is_err());
            assert!(CertifiedBlock::decode(&certified_bytes_with_body(&certified, &body)).is_err());
        }
    }
}
