#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin_types::CommitCertificate;

fuzz_target!(|data: &[u8]| {
    if let Some(cert) = timecoin_fuzz::decode_canonical::<CommitCertificate>(data) {
        let _ = cert.signing_message();
    }
});
