//! TimeCoin consensus: a sans-I/O BFT state machine. Not built yet (see the consensus issue).
