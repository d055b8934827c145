#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin_crypto::{ChainId, Hash};
use timecoin_net::handshake::{Hello, IdentityProof, Role};

// The two handshake payloads a stranger controls: the hello (cleartext in the first message) and the
// identity proof. Decoding never panics, what decodes is canonical, and checking a decoded proof
// against an arbitrary session never panics.
fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = Hello::decode(data) {
        assert_eq!(hello.encode().as_slice(), data);
    }
    if let Ok(proof) = IdentityProof::decode(data) {
        assert_eq!(proof.encode(), data);
        let _ = proof.verify(Role::Initiator, &[0; 32], ChainId(1), &Hash::ZERO);
    }
});
