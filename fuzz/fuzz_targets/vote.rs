#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin_types::{ChainId, Vote};

fuzz_target!(|data: &[u8]| {
    if let Some(vote) = timecoin_fuzz::decode_canonical::<Vote>(data) {
        let _ = vote.verify(ChainId(1337));
    }
});
