//! The safety invariants, checked after every event of a simulation.

use std::collections::{BTreeMap, BTreeSet};

use timecoin_consensus::{Message, ValidatorRegistry};
use timecoin_crypto::{ChainId, PublicKey};
use timecoin_storage::{BlockStore, ChainStore};
use timecoin_types::{BlockHash, Genesis, Height, View, VotePhase, WellFormedBlock, Wire};

use crate::node::SimNode;
use crate::runtime::{NodeId, Runtime};
use crate::{SimError, Violation};

/// Checks, incrementally (each stored block once per node), that:
///
/// 1. no two honest nodes finalize different blocks at one height;
/// 2. every block an honest node finalized carries a certificate for that very block that is valid for
///    the validator set of its height ([`timecoin_consensus::ValidatorSet::verify_certificate`], with the
///    set computed by the checker's own registry from the agreed chain);
/// 3. each honest node's finalized chain starts at genesis, has no gap and links every block to its
///    parent, so with (1) the honest chains are prefixes of each other;
/// 4. no node holds evidence that an honest validator equivocated (a restarted honest node re-sends
///    what it persisted, never something new);
/// 5. no honest node's WAL ever holds two different messages for one signing slot (height, view and
///    proposal, Prepare or Commit), across all its incarnations: a node restarted between a write and the
///    send (see [`crate::SimNode::crash_after_persist`]) re-sends what it wrote, never something new, even
///    when nobody saw the first message;
/// 6. every honest node's UTXO set at its tip equals the one its tip header commits to and the one
///    every other honest node held at that height (compared by commitment), so equal block ids always
///    mean equal state;
/// 7. no honest node failed (for example, refused to apply a decided block, or broadcast a message it had
///    not persisted first);
/// 8. the agreed chain never spends one output twice;
/// 9. supply is conserved on every honest node: its UTXO total plus its unpaid reward pool equals genesis
///    plus one subsidy per block, and every honest node at a height holds the same pool.
///
/// Memory: two hashes per agreed height (its block and its UTXO set), every output the agreed chain
/// spent, a few counters per node, and per honest node the signing slots of
/// heights above its finalized tip (at most three per view it signed in).
#[derive(Debug)]
pub struct InvariantChecker {
    chain: ChainId,
    genesis_hash: BlockHash,
    honest: Vec<bool>,
    honest_keys: BTreeSet<PublicKey>,
    /// The first honest decision at each height (index `h - 1`), and who made it.
    agreed: Vec<(BlockHash, NodeId)>,
    /// The first honest UTXO commitment seen at each height, and whose it was.
    states: BTreeMap<Height, (timecoin_crypto::Hash, NodeId)>,
    /// Fed the agreed blocks in order, so it knows the validator set of the next heights.
    registry: ValidatorRegistry,
    /// Per node: stored blocks already checked.
    checked: Vec<usize>,
    /// The first reward pool seen at each height, with the node it came from.
    pools: BTreeMap<Height, (timecoin_types::Amount, NodeId)>,
    /// Every output the agreed chain spent (a simulation runs tens of heights, so this stays small).
    spent: BTreeSet<timecoin_types::OutPoint>,
    /// The height at which each node's UTXO commitment was last compared.
    state_checked: Vec<Option<Height>>,
    /// Per node: (incarnation, evidence items already checked); evidence is not durable, so a restart
    /// starts the count again.
    evidence_checked: Vec<(u32, usize)>,
    /// Per node: WAL entries already checked (of [`crate::DurableState::wal_appended`]) and the digest of
    /// the message in each signing slot it wrote.
    slots: Vec<(u64, BTreeMap<SigningSlot, [u8; 32]>)>,
}

/// (height, view, kind) with kind 0 = proposal, 1 = Prepare, 2 = Commit.
type SigningSlot = (Height, View, u8);

impl InvariantChecker {
    /// A checker for nodes whose honesty is `honest` (by node id), validators of `honest_keys` honest.
    pub fn new(
        genesis: &Genesis,
        honest: Vec<bool>,
        honest_keys: BTreeSet<PublicKey>,
    ) -> Result<Self, SimError> {
        let registry = ValidatorRegistry::from_genesis(genesis)
            .map_err(|e| SimError::Setup(format!("genesis validator set: {e}")))?;
        let n = honest.len();
        Ok(InvariantChecker {
            chain: genesis.params.chain_id,
            genesis_hash: genesis.block().hash(),
            honest,
            honest_keys,
            agreed: Vec::new(),
            states: BTreeMap::new(),
            registry,
            checked: vec![0; n],
            spent: BTreeSet::new(),
            pools: BTreeMap::new(),
            state_checked: vec![None; n],
            evidence_checked: vec![(0, 0); n],
            slots: vec![(0, BTreeMap::new()); n],
        })
    }

    /// Highest height some honest node finalized.
    pub fn agreed_height(&self) -> Height {
        self.agreed.len() as Height
    }

    /// Whether node `id` is honest.
    pub fn is_honest(&self, id: NodeId) -> bool {
        self.honest.get(id).copied().unwrap_or(false)
    }

    /// Checks everything new since the last call.
    pub fn check(&mut self, rt: &Runtime<SimNode>) -> Result<(), Violation> {
        for (id, node) in rt.nodes().iter().enumerate() {
            self.check_evidence(id, node)?;
            if !self.is_honest(id) {
                continue;
            }
            if let Some(reason) = node.failure() {
                return Err(Violation::NodeFailed {
                    node: id,
                    reason: reason.to_string(),
                });
            }
            self.check_chain(id, node)?;
            self.check_state(id, node)?;
            self.check_wal(id, node)?;
        }
        Ok(())
    }

    fn check_wal(&mut self, id: NodeId, node: &SimNode) -> Result<(), Violation> {
        let durable = node.durable();
        let Some((seen, slots)) = self.slots.get_mut(id) else {
            return Ok(());
        };
        let appended = durable.wal_appended();
        if appended == *seen {
            return Ok(());
        }
        // Every entry above the tip is compared with what its slot held before: re-reading one is a
        // no-op, a second, different message in a slot is a double signature.
        let (entries, skipped) = durable.wal_entries();
        if skipped > 0 {
            return Err(Violation::NodeFailed {
                node: id,
                reason: format!("{skipped} WAL entries do not decode"),
            });
        }
        for entry in entries {
            let (slot, message) = match entry.into_message() {
                Message::Proposal(p) => ((p.height, p.view, 0), Message::Proposal(p)),
                Message::Vote(v) => {
                    let kind = match v.phase {
                        VotePhase::Prepare => 1,
                        VotePhase::Commit => 2,
                    };
                    ((v.height, v.view, kind), Message::Vote(v))
                }
            };
            let digest = *blake3::hash(&message.encode()).as_bytes();
            if let Some(first) = slots.insert(slot, digest)
                && first != digest
            {
                let (height, view, kind) = slot;
                return Err(Violation::DoubleSigned {
                    node: id,
                    height,
                    view,
                    slot: ["proposal", "Prepare", "Commit"]
                        .get(usize::from(kind))
                        .copied()
                        .unwrap_or("unknown"),
                });
            }
        }
        *seen = appended;
        let tip = durable.tip_height();
        slots.retain(|(height, _, _), _| *height > tip);
        Ok(())
    }

    fn check_state(&mut self, id: NodeId, node: &SimNode) -> Result<(), Violation> {
        let height = node.finalized_height();
        if self.state_checked.get(id).copied().flatten() == Some(height) {
            return Ok(());
        }
        let state = node
            .durable()
            .db()
            .utxo_state()
            .map_err(|e| Violation::NodeFailed {
                node: id,
                reason: format!("cannot read the UTXO state: {e}"),
            })?;
        let height = state.tip.height;
        let commitment = state.hash.checksum();
        self.check_supply(id, node, height)?;
        if let Some(slot) = self.state_checked.get_mut(id) {
            *slot = Some(height);
        }
        match self.states.get(&height) {
            Some((first, first_node)) if *first != commitment => Err(Violation::DivergentState {
                height,
                first_node: *first_node,
                first: *first,
                second_node: id,
                second: commitment,
            }),
            Some(_) => Ok(()),
            None => {
                self.states.insert(height, (commitment, id));
                Ok(())
            }
        }
    }

    /// Supply is conserved: the UTXO total plus the unpaid reward pool is genesis plus the subsidies of
    /// `height` blocks (walks the node's UTXO set; done once per height per node).
    fn check_supply(
        &mut self,
        id: NodeId,
        node: &SimNode,
        height: Height,
    ) -> Result<(), Violation> {
        let utxos = timecoin_node::utxo_total(&**node.durable().db()).map_err(|e| {
            Violation::NodeFailed {
                node: id,
                reason: format!("cannot read the UTXO set: {e}"),
            }
        })?;
        let engine = node.engine();
        let pool = engine.reward_pool();
        let supply = engine
            .supply_at(height)
            .unwrap_or(timecoin_types::Amount::MAX);
        match self.pools.get(&height) {
            Some((first, first_node)) if *first != pool => {
                return Err(Violation::DivergentPool {
                    height,
                    first_node: *first_node,
                    first: *first,
                    second_node: id,
                    second: pool,
                });
            }
            Some(_) => {}
            None => {
                self.pools.insert(height, (pool, id));
            }
        }
        if utxos.checked_add(pool) != Some(supply) {
            return Err(Violation::SupplyMismatch {
                node: id,
                height,
                utxos,
                pool,
                supply,
            });
        }
        Ok(())
    }

    fn check_evidence(&mut self, id: NodeId, node: &SimNode) -> Result<(), Violation> {
        let incarnation = node.durable().restarts;
        let Some(entry) = self.evidence_checked.get_mut(id) else {
            return Ok(());
        };
        if entry.0 != incarnation {
            *entry = (incarnation, 0);
        }
        let offenders = node.offenders();
        for offender in offenders.iter().skip(entry.1) {
            if self.honest_keys.contains(offender) {
                return Err(Violation::HonestEquivocation {
                    node: id,
                    offender: Box::new(*offender),
                });
            }
        }
        entry.1 = offenders.len();
        Ok(())
    }

    fn check_chain(&mut self, id: NodeId, node: &SimNode) -> Result<(), Violation> {
        let durable = node.durable();
        let tip = durable.tip_height();
        let mut from = self.checked.get(id).copied().unwrap_or(0);
        // A store built by a state sync holds blocks from its base on: the base must be the agreed block
        // of its height, and the chain is checked from there.
        let base = durable.db().base_height().unwrap_or(0);
        let base_index = usize::try_from(base).unwrap_or(usize::MAX);
        if base > 0 && from < base_index {
            let broken = Violation::BrokenChain {
                node: id,
                height: base,
            };
            let (header, _) = durable.finalized_header(base).ok_or(broken)?;
            if let Some((agreed, first_node)) =
                base_index.checked_sub(1).and_then(|i| self.agreed.get(i))
                && *agreed != header.hash()
            {
                return Err(Violation::ConflictingBlocks {
                    height: base,
                    first_node: *first_node,
                    first: *agreed,
                    second_node: id,
                    second: header.hash(),
                });
            }
            from = base_index;
            if let Some(c) = self.checked.get_mut(id) {
                *c = from;
            }
        }
        for index in from..usize::try_from(tip).unwrap_or(usize::MAX) {
            let height = index as Height + 1;
            let broken = Violation::BrokenChain { node: id, height };
            // Headers, not bodies: a pruning node keeps every header and certificate.
            let (header, certificate) = durable.finalized_header(height).ok_or(broken.clone())?;
            let parent = match height.checked_sub(1) {
                Some(0) | None => self.genesis_hash,
                Some(p) => durable
                    .finalized_header(p)
                    .map(|(h, _)| h.hash())
                    .ok_or(broken.clone())?,
            };
            if header.height != height || header.parent != parent {
                return Err(broken);
            }
            let hash = header.hash();
            if certificate.block_hash != hash || certificate.height != height {
                return Err(Violation::BadCertificate {
                    node: id,
                    height,
                    reason: "certificate names another block or height".into(),
                });
            }
            match self.agreed.get(index) {
                Some((agreed, first_node)) if *agreed != hash => {
                    return Err(Violation::ConflictingBlocks {
                        height,
                        first_node: *first_node,
                        first: *agreed,
                        second_node: id,
                        second: hash,
                    });
                }
                Some(_) => {}
                None => {}
            }
            let validators =
                self.registry
                    .set_for(height)
                    .ok_or_else(|| Violation::BadCertificate {
                        node: id,
                        height,
                        reason: "validator set of the height unknown to the checker".into(),
                    })?;
            validators
                .verify_certificate(&certificate, self.chain)
                .map_err(|e| Violation::BadCertificate {
                    node: id,
                    height,
                    reason: e.to_string(),
                })?;
            if index == self.agreed.len() {
                // The first node to reach a height has it fresh: pruning keeps dozens of bodies.
                let (block, _) = durable.finalized(height).ok_or(broken.clone())?;
                self.agreed.push((hash, id));
                for input in block.transactions.iter().flat_map(|tx| &tx.inputs) {
                    if !self.spent.insert(input.prevout) {
                        return Err(Violation::DoubleSpend {
                            height,
                            outpoint: input.prevout,
                        });
                    }
                }
                let block = WellFormedBlock::check(block).map_err(|e| Violation::NodeFailed {
                    node: id,
                    reason: format!("stored block {height} is not well formed: {e}"),
                })?;
                self.registry
                    .on_finalized(&block)
                    .map_err(|e| Violation::NodeFailed {
                        node: id,
                        reason: format!("checker registry refused block {height}: {e}"),
                    })?;
            }
            if let Some(c) = self.checked.get_mut(id) {
                *c = index + 1;
            }
        }
        Ok(())
    }
}
