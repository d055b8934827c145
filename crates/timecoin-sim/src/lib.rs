//! Deterministic multi-node simulator for TimeCoin tests. Not built yet (see the consensus issue).
