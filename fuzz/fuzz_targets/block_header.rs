#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin_types::BlockHeader;

fuzz_target!(|data: &[u8]| {
    if let Some(header) = timecoin_fuzz::decode_canonical::<BlockHeader>(data) {
        let _ = header.hash();
    }
});
