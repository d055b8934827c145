#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin_node::wire::{SnapshotPage, SyncMessage};
use timecoin_types::{ChainId, Genesis};

fuzz_target!(|data: &[u8]| {
    if let Some(message) = timecoin_fuzz::decode_canonical::<SyncMessage>(data) {
        // What the engine does with a synced block before trusting it: check its certificate.
        let genesis = Genesis::local(4);
        let Ok(set) = timecoin_consensus::ValidatorSet::from_genesis(&genesis) else {
            return;
        };
        match message {
            SyncMessage::Block(certified) => {
                let _ = set.verify_certificate(&certified.certificate, ChainId(1337));
            }
            SyncMessage::Headers(headers) => {
                for synced in headers {
                    let _ = set.verify_certificate(&synced.certificate, ChainId(1337));
                }
            }
            // A page is inflated within its limit before it is decoded.
            SyncMessage::Page { compressed } => {
                let _ = SnapshotPage::from_compressed(&compressed);
            }
            _ => {}
        }
    }
});
