//! Embedding the consensus core with one's own application and network: four validators in one process,
//! a toy in-memory network, a write-ahead log kept as encoded bytes, a virtual clock for timers, and a
//! validator registry fed by finalized blocks. Finalizes five heights and prints them.
//! Run: `cargo run -p timecoin-examples --example embed_consensus`.
#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, VecDeque};

use timecoin_consensus::{
    Config, Core, Input, Message, Output, Timeout, ValidatorRegistry, Verified,
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
        let mut outgoing = Vec::new();
        // Execute in order: a Persist is durable before anything after it, so before the send below.
        for output in node.core.handle(input) {
            match output {
                Output::Persist(entry) => node.wal.push(entry.encode()),
                Output::Broadcast(message) => outgoing.push(message.encode()),
                Output::ScheduleTimeout { timeout, after } => {
                    seq += 1;
                    timers.insert((now + after.as_millis() as u64, seq), (to, timeout));
                }
                Output::RequestProposal { height, view } => {
                    let block = node.app.build_block(height, view);
                    inbox.push_back((
                        to,
                        Input::ProposalValue {
                            height,
                            view,
                            block,
                        },
                    ));
                }
                Output::RequestValidity { height, block, .. } => {
                    let valid = node.app.is_valid(&block);
                    let block_hash = block.hash();
                    inbox.push_back((
                        to,
                        Input::Validity {
                            height,
                            block_hash,
                            valid,
                        },
                    ));
                }
                Output::Decided { block, certificate } => {
                    let height = block.header.height;
                    node.registry.on_finalized(&block)?;
                    node.app.apply(block, &certificate);
                    let validators = node
                        .registry
                        .set_for(height + 1)
                        .ok_or("validator set of the next height unknown")?;
                    inbox.push_back((
                        to,
                        Input::StartHeight {
                            height: height + 1,
                            validators,
                        },
                    ));
                }
                Output::Evidence(evidence) => {
                    println!("validator {to} caught {} equivocating", evidence.offender())
                }
            }
        }
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
