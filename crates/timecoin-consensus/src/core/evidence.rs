//! The evidence this node collected, across heights.

use std::collections::VecDeque;

use tracing::warn;

use crate::{Evidence, Output};

/// Evidence with the time it was recorded, oldest first, bounded by [`Config::max_evidence`](crate::Config::max_evidence).
#[derive(Debug, Default)]
pub(super) struct EvidenceLog {
    items: VecDeque<(u64, Evidence)>,
}

impl EvidenceLog {
    /// Keeps `evidence` (dropping the oldest beyond `max`) and reports it to the host.
    pub(super) fn record(
        &mut self,
        evidence: Evidence,
        now_ms: u64,
        max: usize,
        out: &mut Vec<Output>,
    ) {
        warn!(offender = %evidence.offender(), height = evidence.height(), view = evidence.view(), "equivocation");
        if max == 0 {
            out.push(Output::Evidence(evidence));
            return;
        }
        while self.items.len() >= max {
            self.items.pop_front();
        }
        self.items.push_back((now_ms, evidence.clone()));
        out.push(Output::Evidence(evidence));
    }

    /// Drops evidence recorded before `before_ms`.
    pub(super) fn expire(&mut self, before_ms: u64) {
        while self.items.front().is_some_and(|(at, _)| *at < before_ms) {
            self.items.pop_front();
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Evidence> {
        self.items.iter().map(|(_, e)| e)
    }
}
