//! TimeCoin networking: transport, framing, handshake, peers, gossip and sync. Not built yet.
