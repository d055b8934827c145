#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin_crypto::ChainId;
use timecoin_net::discovery::{AddressMessage, AddressRecord, MAX_ADDRESSES_PER_MESSAGE, RecordRules};

// The discovery gossip a stranger controls: a whole `GetAddresses`/`Addresses` message and a lone
// record. Decoding never panics, never yields more records than a message may carry, and what decodes
// is canonical; verifying any decoded record (with local addresses allowed, so the signature check is
// reached) never panics either.
fuzz_target!(|data: &[u8]| {
    let rules = RecordRules::new(ChainId(1)).allow_local(true);
    let now_ms = 1_800_000_000_000;
    if let Ok(message) = AddressMessage::decode(data) {
        assert_eq!(message.encode().ok().as_deref(), Some(data));
        if let AddressMessage::Addresses(records) = message {
            assert!(records.len() <= MAX_ADDRESSES_PER_MESSAGE);
            for record in records {
                let _ = record.verify(&rules, now_ms);
            }
        }
    }
    if let Ok(record) = AddressRecord::decode(data) {
        assert_eq!(record.encode(), data);
        let _ = record.verify(&rules, now_ms);
    }
});
