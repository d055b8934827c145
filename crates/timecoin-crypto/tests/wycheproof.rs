//! Every Ed25519 vector of Project Wycheproof, through `sig::verify_raw` (our rule, no domain prefix).
//!
//! Valid vectors must verify and invalid ones must be rejected; a key we refuse to parse counts as a
//! rejection, since no signature under it can ever be accepted. "Acceptable" vectors are allowed either
//! way by Wycheproof; we record what we do with each so a change in behaviour shows up in review.

use std::collections::BTreeMap;

use timecoin_crypto::sig::verify_raw;
use timecoin_crypto::{PublicKey, Signature};
use wycheproof::TestResult;
use wycheproof::eddsa::{TestName, TestSet};

/// What our rule did with one vector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Accepted,
    /// Rejected, with the reason: a key or signature length, or the `CryptoError`.
    Rejected(String),
}

fn run(key: &[u8], msg: &[u8], sig: &[u8]) -> Outcome {
    let Ok(key) = <[u8; 32]>::try_from(key) else {
        return Outcome::Rejected(format!("key is {} bytes", key.len()));
    };
    let key = match PublicKey::from_bytes(&key) {
        Ok(k) => k,
        Err(e) => return Outcome::Rejected(format!("key: {e:?}")),
    };
    // Our wire format is a fixed 64 bytes, so truncated or padded signatures never reach verification.
    let Ok(sig) = <[u8; 64]>::try_from(sig) else {
        return Outcome::Rejected(format!("signature is {} bytes", sig.len()));
    };
    match verify_raw(&key, msg, &Signature::from_bytes(sig)) {
        Ok(()) => Outcome::Accepted,
        Err(e) => Outcome::Rejected(format!("{e:?}")),
    }
}

#[test]
fn every_wycheproof_ed25519_vector() {
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut acceptable = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for group in &set.test_groups {
        for t in &group.tests {
            let outcome = run(&group.key.pk, &t.msg, &t.sig);
            if let Outcome::Rejected(reason) = &outcome {
                *reasons.entry(reason.clone()).or_default() += 1;
            }
            let label = match (t.result, &outcome) {
                (TestResult::Valid, Outcome::Accepted) => "valid accepted",
                (TestResult::Invalid, Outcome::Rejected(_)) => "invalid rejected",
                (TestResult::Acceptable, Outcome::Accepted) => "acceptable accepted",
                (TestResult::Acceptable, Outcome::Rejected(_)) => "acceptable rejected",
                (TestResult::Valid, Outcome::Rejected(_))
                | (TestResult::Invalid, Outcome::Accepted) => {
                    failures.push(format!(
                        "tcId {} ({}; flags {:?}): expected {:?}, got {:?}",
                        t.tc_id, t.comment, t.flags, t.result, outcome
                    ));
                    "wrong"
                }
            };
            if t.result == TestResult::Acceptable {
                acceptable.push(format!("tcId {} ({}): {:?}", t.tc_id, t.comment, outcome));
            }
            *counts.entry(label).or_default() += 1;
        }
    }
    println!("Wycheproof Ed25519 ({}): {counts:?}", set.generator_version);
    println!("rejection reasons: {reasons:#?}");
    for a in &acceptable {
        println!("acceptable: {a}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Pinned so a truncated or swapped data set cannot pass silently; update deliberately when the
    // wycheproof crate's data changes.
    let total: usize = counts.values().sum();
    assert_eq!(total, set.number_of_tests);
    assert_eq!(total, 150);
    assert_eq!(counts.get("valid accepted"), Some(&88));
    assert_eq!(counts.get("invalid rejected"), Some(&62));
    assert_eq!(acceptable.len(), 0);
}
