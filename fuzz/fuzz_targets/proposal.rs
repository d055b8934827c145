#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin_types::{ChainId, Proposal};

fuzz_target!(|data: &[u8]| {
    if let Some(proposal) = timecoin_fuzz::decode_canonical::<Proposal>(data) {
        let _ = proposal.verify(ChainId(1337));
    }
});
