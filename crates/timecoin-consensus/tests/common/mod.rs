//! A tiny in-process network for multi-node tests: FIFO delivery, a message filter for partitions and
//! loss, manual time with timers, and a toy application that builds empty blocks on its tip.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use timecoin_consensus::{
    CertifiedBlock, Config, Core, Evidence, Input, Message, Output, Timeout, TimeoutKind,
    ValidatorSet, Verified, WalEntry,
};
use timecoin_crypto::{ChainId, SecretKey};
use timecoin_types::{
    Block, BlockHash, BlockHeader, CommitCertificate, Genesis, Hash, Height, Proposal, View, Vote,
    VotePhase, WellFormedBlock,
};

pub fn key(i: usize) -> SecretKey {
    Genesis::local_validator_key(i)
}

/// An empty block on `parent` at `height`, distinguished by proposer, view and `salt`.
pub fn block_on(
    parent: &WellFormedBlock,
    height: Height,
    view: View,
    proposer: &SecretKey,
    salt: u64,
) -> WellFormedBlock {
    let header = BlockHeader {
        chain_id: parent.header.chain_id,
        height,
        view,
        parent: parent.hash(),
        timestamp_ms: parent.header.timestamp_ms + 1 + salt,
        proposer: proposer.public_key(),
        tx_root: Hash::ZERO,
        witness_root: Hash::ZERO,
        utxo_commitment: parent.header.utxo_commitment,
        validators_hash: Hash::ZERO,
    };
    Block {
        header,
        transactions: vec![],
    }
    .seal()
}

pub fn vote(
    signer: &SecretKey,
    chain: ChainId,
    phase: VotePhase,
    height: Height,
    view: View,
    block: Option<BlockHash>,
) -> Input {
    Input::Vote(Verified::assume_verified(Vote::sign(
        signer, chain, phase, height, view, block,
    )))
}

pub fn proposal(
    signer: &SecretKey,
    chain: ChainId,
    height: Height,
    view: View,
    valid_view: Option<View>,
    block: WellFormedBlock,
) -> Input {
    Input::Proposal(Verified::assume_verified(Proposal::sign(
        signer, chain, height, view, valid_view, block,
    )))
}

/// One node of the test network.
pub struct TestNode {
    pub core: Core,
    pub index: usize,
    pub up: bool,
    pub tip: WellFormedBlock,
    pub wal: Vec<WalEntry>,
    pub decided: Vec<(WellFormedBlock, CommitCertificate)>,
    pub evidence: Vec<Evidence>,
    pub sent: Vec<Message>,
    pub timeouts_fired: Vec<Timeout>,
}

type Filter = Box<dyn FnMut(usize, usize, &Message) -> bool>;

/// The network.
pub struct Net {
    pub genesis: Genesis,
    pub chain: ChainId,
    pub config: Config,
    pub validators: Arc<ValidatorSet>,
    pub nodes: Vec<TestNode>,
    queue: VecDeque<(usize, Input)>,
    timers: BTreeMap<(u64, u64), (usize, Timeout)>,
    pub now_ms: u64,
    seq: u64,
    /// `true` drops a message from `from` to `to`.
    pub drop: Filter,
    /// Inputs delivered so far.
    pub delivered: u64,
    /// When set, the queue is delivered in a random order drawn from this seed (reordering).
    pub shuffle: Option<u64>,
    /// Whether nodes answer messages of lower heights with the certified block (host-level sync).
    pub sync: bool,
    /// Replaces what `from` sends to `to` (Byzantine behaviour); the default sends the message as is.
    pub rewrite: Box<dyn FnMut(usize, usize, Message) -> Vec<Message>>,
}

/// splitmix64: a tiny deterministic generator for seeded tests.
pub fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Net {
    pub fn new(n: usize) -> Net {
        let genesis = Genesis::local(n);
        let chain = genesis.params.chain_id;
        Self::with_config(genesis, Config::new(chain))
    }

    pub fn with_config(genesis: Genesis, config: Config) -> Net {
        let chain = genesis.params.chain_id;
        let validators = Arc::new(ValidatorSet::from_genesis(&genesis).unwrap());
        let nodes = (0..genesis.validators.len())
            .map(|i| TestNode {
                core: Core::new(config.clone(), key(i)),
                index: i,
                up: true,
                tip: genesis.block(),
                wal: vec![],
                decided: vec![],
                evidence: vec![],
                sent: vec![],
                timeouts_fired: vec![],
            })
            .collect();
        Net {
            genesis,
            chain,
            config,
            validators,
            nodes,
            queue: VecDeque::new(),
            timers: BTreeMap::new(),
            now_ms: 0,
            seq: 0,
            drop: Box::new(|_, _, _| false),
            delivered: 0,
            shuffle: None,
            sync: true,
            rewrite: Box::new(|_, _, m| vec![m]),
        }
    }

    /// Starts height 1 on every up node.
    pub fn start(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].up {
                let h = self.nodes[i].tip.header.height + 1;
                self.queue.push_back((
                    i,
                    Input::StartHeight {
                        height: h,
                        validators: self.validators.clone(),
                    },
                ));
            }
        }
    }

    pub fn inject(&mut self, to: usize, input: Input) {
        self.queue.push_back((to, input));
    }

    /// Delivers one input and executes the outputs like a host would.
    pub fn deliver(&mut self, to: usize, input: Input) {
        if !self.nodes[to].up {
            return;
        }
        if let Input::Timeout(t) = &input {
            self.nodes[to].timeouts_fired.push(*t);
        }
        // Host-level sync: a message from a lower height means its sender lags; send it the certified
        // block of that height, as a node's sync would.
        let stale = match &input {
            Input::Proposal(p) => Some((p.height, p.proposer)),
            Input::Vote(v) => Some((v.height, v.voter)),
            _ => None,
        };
        if let Some((height, sender)) = stale
            && self.sync
            && self.nodes[to].core.height().is_some_and(|h| height < h)
            && let Some((block, certificate)) = self.nodes[to].decided.get(height as usize - 1)
            && let Some(lagging) = (0..self.nodes.len()).find(|i| key(*i).public_key() == sender)
        {
            let certified = CertifiedBlock {
                block: block.clone(),
                certificate: certificate.clone(),
            };
            let verified =
                Verified::<CertifiedBlock>::verify(certified, self.chain, &self.validators)
                    .unwrap();
            self.queue.push_back((lagging, Input::Certified(verified)));
        }
        let outputs = self.nodes[to].core.handle(input);
        self.execute(to, outputs);
    }

    pub fn execute(&mut self, from: usize, outputs: Vec<Output>) {
        let Ok(()) = timecoin_consensus::dispatch(&mut NodeHost { net: self, from }, outputs);
    }

    fn pop(&mut self) -> Option<(usize, Input)> {
        match self.shuffle.as_mut() {
            Some(state) if !self.queue.is_empty() => {
                let i = (next_random(state) % self.queue.len() as u64) as usize;
                self.queue.swap_remove_back(i)
            }
            _ => self.queue.pop_front(),
        }
    }

    /// Delivers queued inputs until none is left (at most `limit`). Returns how many were delivered.
    pub fn run_queue(&mut self, limit: usize) -> usize {
        let mut n = 0;
        while let Some((to, input)) = self.pop() {
            self.deliver(to, input);
            n += 1;
            self.delivered += 1;
            assert!(n < limit, "queue did not drain within {limit} deliveries");
        }
        n
    }

    /// Fires the earliest timer (advancing time to it). Returns false when no timer is pending.
    pub fn fire_next_timer(&mut self) -> bool {
        let Some(((at, _), (node, timeout))) = self.timers.pop_first() else {
            return false;
        };
        self.now_ms = self.now_ms.max(at);
        self.queue.push_back((node, Input::Timeout(timeout)));
        true
    }

    /// Runs until `done` holds (checked after every delivery), delivering messages first and firing
    /// timers only when nothing is in flight; gives up after `max_timers` timer firings.
    pub fn run_until(&mut self, max_timers: usize, mut done: impl FnMut(&Net) -> bool) -> bool {
        let mut timers = 0;
        loop {
            if done(self) {
                return true;
            }
            if let Some((to, input)) = self.pop() {
                self.deliver(to, input);
                self.delivered += 1;
                continue;
            }
            if timers >= max_timers || !self.fire_next_timer() {
                return false;
            }
            timers += 1;
        }
    }

    /// Crashes node `i` (its in-flight inputs and timers are lost) and restarts it from its WAL.
    pub fn crash_and_restart(&mut self, i: usize) {
        self.queue.retain(|(to, _)| *to != i);
        self.timers.retain(|_, (to, _)| *to != i);
        let wal = self.nodes[i].wal.clone();
        self.nodes[i].core = Core::restore(self.config.clone(), key(i), wal).unwrap();
        let next = self.nodes[i].tip.header.height + 1;
        self.queue.push_back((
            i,
            Input::StartHeight {
                height: next,
                validators: self.validators.clone(),
            },
        ));
    }

    pub fn min_decided(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.up)
            .map(|n| n.decided.len())
            .min()
            .unwrap_or(0)
    }

    /// Honest nodes decided the same block at every height both reached.
    pub fn assert_agreement(&self) {
        for a in &self.nodes {
            for b in &self.nodes {
                for (x, y) in a.decided.iter().zip(&b.decided) {
                    assert_eq!(
                        x.0.hash(),
                        y.0.hash(),
                        "nodes {} and {} disagree at height {}",
                        a.index,
                        b.index,
                        x.0.header.height
                    );
                }
            }
        }
    }

    /// Timeouts (other than retransmits) that fired on any node.
    pub fn view_timeouts_fired(&self) -> usize {
        self.nodes
            .iter()
            .flat_map(|n| &n.timeouts_fired)
            .filter(|t| t.kind != TimeoutKind::Retransmit)
            .count()
    }
}

/// Node `from` of the network as its core's host: what the shared dispatch calls for each output.
struct NodeHost<'a> {
    net: &'a mut Net,
    from: usize,
}

impl timecoin_consensus::Host for NodeHost<'_> {
    type Error = std::convert::Infallible;

    fn persist(&mut self, entry: WalEntry) -> Result<(), Self::Error> {
        self.net.nodes[self.from].wal.push(entry);
        Ok(())
    }

    fn broadcast(&mut self, m: Message) -> Result<(), Self::Error> {
        let (net, from) = (&mut *self.net, self.from);
        net.nodes[from].sent.push(m.clone());
        for to in 0..net.nodes.len() {
            if to == from || (net.drop)(from, to, &m) {
                continue;
            }
            for m in (net.rewrite)(from, to, m.clone()) {
                let verified = Verified::<Message>::verify(m, net.chain, &net.validators)
                    .expect("messages are signed by members");
                net.queue.push_back((to, Input::from(verified)));
            }
        }
        Ok(())
    }

    fn schedule(&mut self, timeout: Timeout, after: std::time::Duration) {
        let net = &mut *self.net;
        net.seq += 1;
        let at = net.now_ms + after.as_millis() as u64;
        net.timers.insert((at, net.seq), (self.from, timeout));
    }

    fn propose(&mut self, height: Height, view: View) -> Option<WellFormedBlock> {
        let node = &self.net.nodes[self.from];
        Some(block_on(&node.tip, height, view, &key(self.from), 0))
    }

    fn validate(&mut self, _height: Height, block: &WellFormedBlock) -> bool {
        block.header.parent == self.net.nodes[self.from].tip.hash()
    }

    fn decided(
        &mut self,
        block: WellFormedBlock,
        certificate: CommitCertificate,
    ) -> Result<(), Self::Error> {
        let net = &mut *self.net;
        net.validators
            .verify_certificate(&certificate, net.chain)
            .expect("decided certificates verify");
        assert_eq!(certificate.block_hash, block.hash());
        let node = &mut net.nodes[self.from];
        node.tip = block.clone();
        node.decided.push((block, certificate));
        let next = node.tip.header.height + 1;
        let validators = net.validators.clone();
        net.queue.push_back((
            self.from,
            Input::StartHeight {
                height: next,
                validators,
            },
        ));
        Ok(())
    }

    fn evidence(&mut self, e: Evidence) {
        self.net.nodes[self.from].evidence.push(e);
    }

    fn answer(&mut self, input: Input) {
        self.net.queue.push_back((self.from, input));
    }
}
