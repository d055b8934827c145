#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin_types::Genesis;

fuzz_target!(|data: &[u8]| {
    if let Some(genesis) = timecoin_fuzz::decode_canonical::<Genesis>(data) {
        // Deriving the chain's first block and UTXO set from any decodable genesis must not panic.
        let _ = genesis.block();
        let _ = genesis.utxos();
    }
});
