//! The core's settings, with the seed's defaults.

use std::time::Duration;

use timecoin_crypto::ChainId;
use timecoin_types::View;

use crate::TimeoutKind;

/// Settings of a [`Core`](crate::Core). Every field has the seed's default (see [`Config::new`]).
///
/// The seed's *timeout check interval* (5 s) does not appear here: the core never polls. Each
/// [`Output::ScheduleTimeout`](crate::Output::ScheduleTimeout) names its exact duration, and a host that
/// keeps timers in a polled wheel should poll at least that often (5 s) so that a timeout fires at most
/// one interval late.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Bound into every signature; messages of other chains never verify.
    pub chain_id: ChainId,
    /// How long view 0 waits for the leader's proposal before voting nil (Tendermint's `timeoutPropose`):
    /// the seed's round timeout, 30 s.
    pub propose_timeout: Duration,
    /// How long view 0 waits, once more than 2/3 of the weight has Prepared for anything, for a quorum on
    /// one value before Committing nil (`timeoutPrevote`). Default 5 s.
    pub prepare_timeout: Duration,
    /// How long view 0 waits, once more than 2/3 of the weight has Committed for anything, for a quorum on
    /// one value before moving to the next view (`timeoutPrecommit`). Default 5 s.
    pub commit_timeout: Duration,
    /// Each failed view lengthens the three timeouts above by this percentage, compounding, so that after
    /// the network stabilizes some view is long enough to finish. Default 50 (+50% per view).
    pub timeout_growth_percent: u32,
    /// Cap on any grown timeout. Default 10 min.
    pub max_timeout: Duration,
    /// While a view runs, the core re-broadcasts its own signed messages of the view this often, so that a
    /// lost message is not the end of progress (the network layer may lose messages; the algorithm
    /// assumes gossip eventually delivers). Default 5 s.
    pub retransmit_interval: Duration,
    /// Messages buffered for future heights, past views and evidence older than this are dropped (driven
    /// by [`Input::Tick`](crate::Input::Tick)). Default 1 h (seed).
    pub vote_ttl: Duration,
    /// Views of the current height kept below the current view (their votes serve re-proposals and late
    /// decisions). Default 10.
    pub max_past_views: View,
    /// Views above the current one whose messages are kept; messages further ahead only count towards
    /// the skip rule (L55). Default 10.
    pub max_future_views: View,
    /// Heights above the current one whose messages are buffered. Default 4.
    pub max_future_heights: u64,
    /// Messages buffered for future heights per validator. Default 64.
    pub max_future_messages_per_validator: usize,
    /// Proposals (with their blocks) buffered for future heights per validator. Default 2.
    pub max_future_proposals_per_validator: usize,
    /// Evidence items kept (oldest dropped first). Default 1,000.
    pub max_evidence: usize,
    /// Deliberate faults for negative-control tests. Never enable in a node.
    #[cfg(feature = "fault-injection")]
    pub faults: Faults,
}

/// Ways to break the core on purpose, so a simulator can prove its invariant checker notices.
#[cfg(feature = "fault-injection")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Ignore the lock in L23 and L29: Prepare any valid proposal even when locked on another value.
    pub ignore_lock: bool,
}

impl Config {
    /// The seed's defaults for `chain_id`.
    pub fn new(chain_id: ChainId) -> Self {
        Config {
            chain_id,
            propose_timeout: Duration::from_secs(30),
            prepare_timeout: Duration::from_secs(5),
            commit_timeout: Duration::from_secs(5),
            timeout_growth_percent: 50,
            max_timeout: Duration::from_secs(600),
            retransmit_interval: Duration::from_secs(5),
            vote_ttl: Duration::from_secs(3600),
            max_past_views: 10,
            max_future_views: 10,
            max_future_heights: 4,
            max_future_messages_per_validator: 64,
            max_future_proposals_per_validator: 2,
            max_evidence: 1_000,
            #[cfg(feature = "fault-injection")]
            faults: Faults::default(),
        }
    }

    /// The duration of a timeout of `kind` in `view`: the base grown by
    /// [`timeout_growth_percent`](Config::timeout_growth_percent) per view, capped at
    /// [`max_timeout`](Config::max_timeout).
    pub fn timeout(&self, kind: TimeoutKind, view: View) -> Duration {
        let base = match kind {
            TimeoutKind::Propose => self.propose_timeout,
            TimeoutKind::Prepare => self.prepare_timeout,
            TimeoutKind::Commit => self.commit_timeout,
            TimeoutKind::Retransmit => return self.retransmit_interval,
        };
        let cap = self.max_timeout.as_millis();
        let mut millis = base.as_millis().min(cap);
        let growth = u128::from(self.timeout_growth_percent);
        if growth > 0 && millis > 0 {
            // Stops at the cap or at a fixed point of the integer growth, so it runs at most about
            // log(cap)/log(1 + growth) times whatever the view.
            for _ in 0..view {
                let next = millis * (100 + growth) / 100;
                if next >= cap {
                    millis = cap;
                    break;
                }
                if next == millis {
                    break;
                }
                millis = next;
            }
        }
        Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_grow_half_again_per_view_up_to_the_cap() {
        let c = Config::new(ChainId(1));
        assert_eq!(c.timeout(TimeoutKind::Propose, 0), Duration::from_secs(30));
        assert_eq!(c.timeout(TimeoutKind::Propose, 1), Duration::from_secs(45));
        assert_eq!(
            c.timeout(TimeoutKind::Propose, 2),
            Duration::from_millis(67_500)
        );
        assert_eq!(
            c.timeout(TimeoutKind::Prepare, 1),
            Duration::from_millis(7_500)
        );
        assert_eq!(c.timeout(TimeoutKind::Propose, 50), c.max_timeout);
        assert_eq!(c.timeout(TimeoutKind::Propose, View::MAX), c.max_timeout);
        assert_eq!(c.timeout(TimeoutKind::Retransmit, 9), c.retransmit_interval);
        let flat = Config {
            timeout_growth_percent: 0,
            ..c.clone()
        };
        assert_eq!(
            flat.timeout(TimeoutKind::Commit, View::MAX),
            flat.commit_timeout
        );
        let tiny = Config {
            propose_timeout: Duration::from_millis(1),
            timeout_growth_percent: 1,
            ..c
        };
        // A fixed point of integer growth ends the loop at once, whatever the view.
        assert_eq!(
            tiny.timeout(TimeoutKind::Propose, View::MAX),
            Duration::from_millis(1)
        );
    }
}
