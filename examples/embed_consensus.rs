//! Embedding the consensus core with one's own application and network: four validators in one process,
//! a toy in-memory network, a write-ahead log kept as encoded bytes, a virtual clock for timers, and a
//! validator registry fed by finalized blocks. Finalizes five heights and prints them.
//! Run: `cargo run -p timecoin-examples --example embed_consensus`.
#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use timecoin_consensus::{
    Config, ConsensusError, Core, Evidence, Host, Input, Message, Timeout, ValidatorRegistry,
    Verified, WalEntry, dispatch,
};
use timecoin_types::{
    Block, BlockHeader, CommitCertificate, Genesis, Height, View, WellFormedBlock, Wire,
};

/// The application: owns the chain, builds blocks on its tip and judges proposed ones.
struct App {
    tip: WellFormedBlock,
    validator: usize,
}

impl App {
    fn build_block(&self, height: Height, view: View) -> WellFormedBlock {
        let mut header: BlockHeader = self.tip.header.clone();
        header.height = height;
        header.view = view;
        header.parent = self.tip.hash();
        header.timestamp_ms += 1_000;
        header.proposer = Genesis::local_validator_key(self.validator).public_key();
        // A real application puts mempool transactions here; sealing commits the header to them.
        Block {
            header,
            transactions: vec![],
        }
        .seal()
    }

    fn is_valid(&self, block: &WellFormedBlock) -> bool {
        block.header.parent == self.tip.hash() && block.header.height == self.tip.header.height + 1
    }

    fn apply(&mut self, block: WellFormedBlock, certificate: &CommitCertificate) {
        println!(
            "validator {} finalized height {} (view {}, block {}, {} commit signatures)",
            self.validator,
            block.header.height,
            certificate.view,
            block.hash(),
            certificate.signatures.len()
        );
        self.tip = block;
    }
}

/// One node: the core, its application, its registry and its durable consensus log.
struct Node {
    core: Core,
    app: App,
    registry: ValidatorRegistry,
    wal: Vec<Vec<u8>>,
}

/// One node as its core's host, for the length of one dispatch: where its outputs go.
struct NodeHost<'a> {
    index: usize,
    app: &'a mut App,
    registry: &'a ValidatorRegistry,
    wal: &'a mut Vec<Vec<u8>>,
    outgoing: Vec<Vec<u8>>,
    inbox: &'a mut VecDeque<(usize, Input)>,
    timers: &'a mut BTreeMap<(u64, u64), (usize, Timeout)>,
    now: u64,
    seq: &'a mut u64,
}

impl Host for NodeHost<'_> {
    type Error = ConsensusError;

    fn persist(&mut self, entry: WalEntry) -> Result<(), ConsensusError> {
        // A real host appends to a file and syncs it before returning.
        self.wal.push(entry.encode());
        Ok(())
    }

    fn broadcast(&mut self, message: Message) -> Result<(), ConsensusError> {
        self.outgoing.push(message.encode());
        Ok(())
    }

    fn schedule(&mut self, timeout: Timeout, after: Duration) {
        *self.seq += 1;
        let at = self.now + after.as_millis() as u64;
        self.timers.insert((at, *self.seq), (self.index, timeout));
    }

    fn propose(&mut self, height: Height, view: View) -> Option<WellFormedBlock> {
        Some(self.app.build_block(height, view))
    }

    fn validate(&mut self, _height: Height, block: &WellFormedBlock) -> bool {
        self.app.is_valid(block)
    }

    fn decided(
        &mut self,
        block: WellFormedBlock,
        certificate: CommitCertificate,
    ) -> Result<(), ConsensusError> {
        let height = block.header.height;
        self.registry.on_finalized(&block)?;
        self.app.apply(block, &certificate);
        // Every node derives the next height's set from the same finalized blocks.
        let validators = self.registry.current();
        self.answer(Input::StartHeight {
            height: height + 1,
            validators,
        });
        Ok(())
    }

    fn evidence(&mut self, evidence: Evidence) {
        println!(
            "validator {} caught {} equivocating",
            self.index,
            evidence.offender()
        );
    }

    fn answer(&mut self, input: Input) {
        self.inbox.push_back((self.index, input));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let genesis = Genesis::local(4);
    let chain = genesis.params.chain_id;
    let config = Config::new(chain);
    let mut nodes = Vec::new();
    for i in 0..4 {
        nodes.push(Node {
            core: Core::new(config.clone(), Genesis::local_validator_key(i)),
            app: App {
                tip: genesis.block(),
                validator: i,
            },
            // Every node derives the same sets from the same finalized blocks.
            registry: ValidatorRegistry::from_genesis(&genesis)?,
            wal: vec![],
        });
    }

    // Inputs waiting for each node, and timers on a virtual clock (ms).
    let mut inbox: VecDeque<(usize, Input)> = VecDeque::new();
    let mut timers: BTreeMap<(u64, u64), (usize, Timeout)> = BTreeMap::new();
    let (mut now, mut seq) = (0u64, 0u64);
    for (i, node) in nodes.iter().enumerate() {
        let validators = node.registry.current();
        inbox.push_back((
            i,
            Input::StartHeight {
                height: 1,
                validators,
            },
        ));
    }

    while nodes.iter().any(|n| n.app.tip.header.height < 5) {
        let Some((to, input)) = inbox.pop_front() else {
            // Nothing in flight: let the clock run to the next timer.
            let Some(((at, _), (node, timeout))) = timers.pop_first() else {
                return Err("stalled".into());
            };
            now = at;
            inbox.push_back((node, Input::Timeout(timeout)));
            continue;
        };
        let node = nodes.get_mut(to).ok_or("no such node")?;
        let outputs = node.core.handle(input);
        // The shared dispatch executes them in order: a Persist is durable before anything after it,
        // so before the sends below.
        let mut host = NodeHost {
            index: to,
            app: &mut node.app,
            registry: &node.registry,
            wal: &mut node.wal,
            outgoing: Vec::new(),
            inbox: &mut inbox,
            timers: &mut timers,
            now,
            seq: &mut seq,
        };
        dispatch(&mut host, outputs)?;
        let outgoing = host.outgoing;
        // The toy network: every other node receives the bytes, decodes them and checks the signature
        // against the set of the message's height before its core sees the message.
        for bytes in outgoing {
            for (peer, other) in nodes.iter().enumerate().filter(|(p, _)| *p != to) {
                let received = Message::decode(&bytes)?;
                let set = other
                    .registry
                    .set_for(received.height())
                    .unwrap_or_else(|| other.registry.current());
                match Verified::<Message>::verify(received, chain, &set) {
                    Ok(verified) => inbox.push_back((peer, verified.into())),
                    Err(e) => println!("validator {peer} dropped a message: {e}"),
                }
            }
        }
    }
    let tip = nodes.first().map(|n| n.app.tip.hash()).ok_or("no nodes")?;
    assert!(
        nodes.iter().all(|n| n.app.tip.hash() == tip),
        "all validators agree"
    );
    let wal_entries: usize = nodes.iter().map(|n| n.wal.len()).sum();
    println!(
        "all four validators at height 5, tip {tip}; {wal_entries} WAL entries written; virtual time {now} ms"
    );
    Ok(())
}
