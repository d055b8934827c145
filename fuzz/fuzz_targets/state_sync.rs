#![no_main]

//! The state-sync machine fed hostile answers: the input is cut into sync-channel messages from two
//! peers (a length byte, a peer byte, the bytes), with a clock tick between them. Whatever arrives, the
//! machine must not panic, and it must never end with an imported chain (no honest chain exists here
//! to certify one).

use libfuzzer_sys::fuzz_target;
use timecoin_crypto::SecretKey;
use timecoin_net::{Channel, NetEvent, PeerId};
use timecoin_node::statesync::{StateSync, StateSyncConfig, StateSyncOutcome};
use timecoin_storage::{MemoryEngine, StorageConfig};
use timecoin_types::Genesis;

fuzz_target!(|data: &[u8]| {
    let genesis = Genesis::local(4);
    let config = StateSyncConfig {
        min_lag: 1,
        ..StateSyncConfig::default()
    };
    let Ok(mut sync) = StateSync::new(config, StorageConfig::memory(), genesis, MemoryEngine::new())
    else {
        return;
    };
    let peers = [
        PeerId::from(SecretKey::from_seed(&[1; 32]).public_key()),
        PeerId::from(SecretKey::from_seed(&[2; 32]).public_key()),
    ];
    let mut now = 0u64;
    for peer in peers {
        let _ = sync.on_net(now, NetEvent::Joined { peer, masternode: None });
    }
    let mut rest = data;
    while let [len, who, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        let peer = peers[usize::from(*who) % 2];
        now += 1_000;
        let _ = sync.on_net(
            now,
            NetEvent::Message {
                from: peer,
                channel: Channel::Sync,
                bytes: bytes.to_vec().into(),
            },
        );
        let _ = sync.on_tick(now);
    }
    if let Some(StateSyncOutcome::Imported(_)) = sync.take_outcome() {
        panic!("a chain was imported from forged answers");
    }
});
