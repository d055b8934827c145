#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use timecoin_types::{ChainParams, Network, Transaction, check_tx};

fuzz_target!(|data: &[u8]| {
    if let Some(tx) = timecoin_fuzz::decode_canonical::<Transaction>(data) {
        // The rules must not panic on a decodable transaction either, whatever it contains.
        let params = ChainParams::for_network(Network::Local);
        let _ = tx.txid();
        let _ = tx.check(&params);
        let view: HashMap<_, _> = tx
            .inputs
            .iter()
            .zip(&tx.outputs)
            .map(|(i, o)| (i.prevout, *o))
            .collect();
        let _ = check_tx(&tx, &view, &params);
    }
});
