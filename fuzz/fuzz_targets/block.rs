#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use timecoin_types::{
    Block, ChainParams, Network, WellFormedBlock, Wire, block_utxo_delta, check_block,
};

fuzz_target!(|data: &[u8]| {
    if let Some(block) = timecoin_fuzz::decode_canonical::<Block>(data) {
        let _ = block.hash();
        let _ = block.compute_roots();
        let _ = block_utxo_delta(&block);
        // The network's decoder must agree with decode-then-check, and never panic.
        let checked = WellFormedBlock::decode(data);
        assert_eq!(
            checked.is_ok(),
            WellFormedBlock::check(block.clone()).is_ok()
        );
        if let Ok(well_formed) = checked {
            let params = ChainParams::for_network(Network::Local);
            let _ = check_block(&well_formed, &HashMap::new(), &params);
        }
    }
});
