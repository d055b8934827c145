#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use timecoin_types::{Block, ChainParams, Network, block_utxo_delta, check_block};

fuzz_target!(|data: &[u8]| {
    if let Some(block) = timecoin_fuzz::decode_canonical::<Block>(data) {
        let _ = block.hash();
        let _ = block.compute_tx_root();
        let _ = block_utxo_delta(&block);
        let params = ChainParams::for_network(Network::Local);
        let _ = check_block(&block, &HashMap::new(), &params);
    }
});
