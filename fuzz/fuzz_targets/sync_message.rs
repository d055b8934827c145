#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin_node::wire::SyncMessage;
use timecoin_types::{ChainId, Genesis};

fuzz_target!(|data: &[u8]| {
    if let Some(message) = timecoin_fuzz::decode_canonical::<SyncMessage>(data) {
        // What the engine does with a synced block before trusting it: check its certificate.
        if let SyncMessage::Block(certified) = message {
            let genesis = Genesis::local(4);
            if let Ok(set) = timecoin_consensus::ValidatorSet::from_genesis(&genesis) {
                let _ = set.verify_certificate(&certified.certificate, ChainId(1337));
            }
        }
    }
});
