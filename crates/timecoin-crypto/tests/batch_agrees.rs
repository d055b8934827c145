//! Batch and single verification must reject exactly the same signatures.
//!
//! If they did not, one node verifying a block's signatures in a batch and another verifying them one by
//! one could disagree on the block. The inputs that separate the two in other implementations are
//! signatures whose points carry a small torsion component: the cofactorless single equation rejects them
//! always, a randomized cofactorless batch accepts them with probability 1/ord(T). So besides valid and
//! plainly broken signatures, the mix here includes `R + T` and `A + T` signatures built so that the
//! cofactored equation holds, which our rule accepts and the batch must accept too.

// Test code: a panic is a failed test. clippy.toml's allow-*-in-tests covers `#[test]` bodies only, not
// the helpers an integration-test crate needs around them.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use proptest::prelude::*;
use sha2::{Digest, Sha512};
use timecoin_crypto::sig::verify_raw;
use timecoin_crypto::{
    BatchItem, ChainId, CryptoError, PublicKey, SecretKey, SigDomain, Signature, verify,
    verify_batch, verify_batch_parallel,
};

const CHAIN: ChainId = ChainId(11);
const DOMAIN: SigDomain = SigDomain::TxInput;

/// ℓ, little-endian.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn seed(signer: u8) -> [u8; 32] {
    [signer.wrapping_add(1); 32]
}

/// The RFC 8032 secret scalar of a seed, which the test needs to sign with a doctored `R` or `A`.
fn secret_scalar(seed: &[u8; 32]) -> Scalar {
    let h = Sha512::digest(seed);
    let mut low = [0u8; 32];
    low.copy_from_slice(&h[..32]);
    // Reducing mod ℓ is harmless: B has order ℓ, so [a mod ℓ]B = [a]B.
    Scalar::from_bytes_mod_order(clamp_integer(low))
}

/// The order of `EIGHT_TORSION[i]`, which is `[i]` times a generator of the order-8 torsion group.
fn torsion_order(i: usize) -> u32 {
    match i % 8 {
        0 => 1,
        4 => 2,
        2 | 6 => 4,
        _ => 8,
    }
}

/// An Ed25519 signature by secret scalar `a` over `payload`, with the published key encoding
/// `key_bytes`, made with nonce point `[r]B + r_offset`. With `r_offset` or the key off by a torsion
/// point, `[S]B − [k]A − R` is a torsion point: zero after multiplying by 8, not before.
fn sign_doctored(
    a: &Scalar,
    key_bytes: &[u8; 32],
    r_offset: &EdwardsPoint,
    payload: &[u8],
) -> Signature {
    let mut nonce = Sha512::new();
    nonce.update(b"batch_agrees test nonce");
    nonce.update(a.as_bytes());
    nonce.update(payload);
    let r = Scalar::from_hash(nonce);
    let big_r = (ED25519_BASEPOINT_POINT * r + r_offset).compress();
    let mut h = Sha512::new();
    h.update(big_r.as_bytes());
    h.update(key_bytes);
    h.update(payload);
    let k = Scalar::from_hash(h);
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    Signature::from_bytes(sig)
}

/// `S + ℓ` as a 256-bit integer: the same point equation, a non-canonical scalar.
fn s_plus_ell(sig: &Signature) -> Signature {
    let mut bytes = sig.to_bytes();
    let mut carry = 0u16;
    for (byte, l) in bytes[32..].iter_mut().zip(ELL) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    Signature::from_bytes(bytes)
}

#[derive(Clone, Debug)]
enum Kind {
    /// An honest signature.
    Valid,
    /// One bit of the signature flipped.
    FlipSignatureBit(usize),
    /// One bit of the message flipped after signing (a zero byte is added to an empty message).
    FlipMessageBit(usize),
    /// `S` replaced by `S + ℓ`.
    SPlusEll,
    /// `R` replaced by the encoding of a small-order point.
    SmallOrderR(usize),
    /// `R` replaced by a non-canonical encoding (`y = p + small`).
    NonCanonicalR(u8),
    /// Signed over `R + T`: the cofactored equation holds, the cofactorless one does not.
    TorsionR(usize),
    /// `R + T` substituted after an honest signing, so the challenge no longer matches.
    TorsionRAfterSigning(usize),
    /// The key is published as `A + T` (mixed order, so it parses) and signed with `a`.
    MixedOrderKey(usize),
    /// A correct signature for another chain.
    WrongChain,
}

impl Kind {
    /// What the rule says, when the kind alone decides it (a flipped bit may land anywhere).
    fn expected(&self) -> Option<bool> {
        match self {
            Kind::Valid | Kind::TorsionR(_) | Kind::MixedOrderKey(_) => Some(true),
            Kind::SPlusEll
            | Kind::SmallOrderR(_)
            | Kind::NonCanonicalR(_)
            | Kind::TorsionRAfterSigning(_)
            | Kind::WrongChain => Some(false),
            Kind::FlipSignatureBit(_) | Kind::FlipMessageBit(_) => None,
        }
    }
}

struct Built {
    key: PublicKey,
    chain: ChainId,
    message: Vec<u8>,
    signature: Signature,
}

fn build(kind: &Kind, signer: u8, message: &[u8]) -> Built {
    let seed = seed(signer);
    let sk = SecretKey::from_seed(&seed);
    let a = secret_scalar(&seed);
    let honest = Built {
        key: sk.public_key(),
        chain: CHAIN,
        message: message.to_vec(),
        signature: sk.sign(DOMAIN, CHAIN, message),
    };
    let payload = DOMAIN.signing_bytes(CHAIN, message);
    match kind {
        Kind::Valid => honest,
        Kind::FlipSignatureBit(bit) => {
            let mut b = honest.signature.to_bytes();
            b[(bit / 8) % 64] ^= 1 << (bit % 8);
            Built {
                signature: Signature::from_bytes(b),
                ..honest
            }
        }
        Kind::FlipMessageBit(bit) => {
            let mut m = honest.message.clone();
            if m.is_empty() {
                m.push(0);
            } else {
                let len = m.len();
                m[(bit / 8) % len] ^= 1 << (bit % 8);
            }
            Built {
                message: m,
                ..honest
            }
        }
        Kind::SPlusEll => Built {
            signature: s_plus_ell(&honest.signature),
            ..honest
        },
        Kind::SmallOrderR(i) => {
            let mut b = honest.signature.to_bytes();
            b[..32].copy_from_slice(EIGHT_TORSION[i % 8].compress().as_bytes());
            Built {
                signature: Signature::from_bytes(b),
                ..honest
            }
        }
        Kind::NonCanonicalR(small) => {
            // p + small, for small < 19, is the second encoding of y = small.
            let mut y = [0xffu8; 32];
            y[0] = 0xed + small % 19;
            y[31] = 0x7f;
            let mut b = honest.signature.to_bytes();
            b[..32].copy_from_slice(&y);
            Built {
                signature: Signature::from_bytes(b),
                ..honest
            }
        }
        Kind::TorsionR(i) => Built {
            signature: sign_doctored(&a, honest.key.as_bytes(), &EIGHT_TORSION[i % 8], &payload),
            ..honest
        },
        Kind::TorsionRAfterSigning(i) => {
            let mut b = honest.signature.to_bytes();
            let mut r = [0u8; 32];
            r.copy_from_slice(&b[..32]);
            let point = curve25519_dalek::edwards::CompressedEdwardsY(r)
                .decompress()
                .unwrap();
            b[..32].copy_from_slice((point + EIGHT_TORSION[i % 8]).compress().as_bytes());
            Built {
                signature: Signature::from_bytes(b),
                ..honest
            }
        }
        Kind::MixedOrderKey(i) => {
            let a_point = ED25519_BASEPOINT_POINT * a;
            let key_bytes = (a_point + EIGHT_TORSION[i % 8]).compress().to_bytes();
            let key = PublicKey::from_bytes(&key_bytes).unwrap();
            let signature = sign_doctored(&a, &key_bytes, &EdwardsPoint::default(), &payload);
            Built {
                key,
                signature,
                ..honest
            }
        }
        Kind::WrongChain => Built {
            signature: sk.sign(DOMAIN, ChainId(CHAIN.0 + 1), message),
            ..honest
        },
    }
}

/// Torsion indices 1..8 (index 0 is the identity, which would make the "torsion" kinds honest).
fn torsion() -> impl Strategy<Value = usize> {
    1usize..8
}

fn any_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => Just(Kind::Valid),
        2 => (0usize..512).prop_map(Kind::FlipSignatureBit),
        2 => any::<usize>().prop_map(Kind::FlipMessageBit),
        1 => Just(Kind::SPlusEll),
        1 => (0usize..8).prop_map(Kind::SmallOrderR),
        1 => (0u8..19).prop_map(Kind::NonCanonicalR),
        3 => torsion().prop_map(Kind::TorsionR),
        1 => torsion().prop_map(Kind::TorsionRAfterSigning),
        3 => torsion().prop_map(Kind::MixedOrderKey),
        1 => Just(Kind::WrongChain),
    ]
}

/// Only kinds our rule accepts, so the batch equation itself (not the one-by-one fallback) decides.
fn accepted_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Valid),
        torsion().prop_map(Kind::TorsionR),
        torsion().prop_map(Kind::MixedOrderKey),
    ]
}

fn specs(kind: BoxedStrategy<Kind>) -> impl Strategy<Value = Vec<(Kind, u8, Vec<u8>)>> {
    proptest::collection::vec(
        (kind, 0u8..4, proptest::collection::vec(any::<u8>(), 0..48)),
        1..40,
    )
}

fn items(built: &[Built]) -> Vec<BatchItem<'_>> {
    built
        .iter()
        .map(|b| BatchItem {
            key: &b.key,
            domain: DOMAIN,
            chain: b.chain,
            message: &b.message,
            signature: &b.signature,
        })
        .collect()
}

fn rejected_indices(result: Result<(), CryptoError>) -> Vec<usize> {
    match result {
        Ok(()) => Vec::new(),
        Err(CryptoError::BatchInvalid { indices }) => indices,
        Err(other) => panic!("a batch reports BatchInvalid, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn batch_agrees_with_single(specs in specs(any_kind().boxed()), min_chunk in 1usize..12) {
        let built: Vec<Built> = specs.iter().map(|(k, s, m)| build(k, *s, m)).collect();
        let mut single_rejects = Vec::new();
        for (i, (b, (kind, _, _))) in built.iter().zip(&specs).enumerate() {
            let ok = verify(&b.key, DOMAIN, b.chain, &b.message, &b.signature).is_ok();
            if let Some(want) = kind.expected() {
                prop_assert_eq!(ok, want, "item {} of kind {:?}", i, kind);
            }
            if !ok {
                single_rejects.push(i);
            }
        }
        let items = items(&built);
        prop_assert_eq!(&rejected_indices(verify_batch(&items)), &single_rejects);
        prop_assert_eq!(&rejected_indices(verify_batch_parallel(&items, min_chunk)), &single_rejects);
    }

    #[test]
    fn batches_of_cofactored_valid_signatures_pass(specs in specs(accepted_kind().boxed())) {
        let built: Vec<Built> = specs.iter().map(|(k, s, m)| build(k, *s, m)).collect();
        let items = items(&built);
        prop_assert_eq!(verify_batch(&items), Ok(()));
        prop_assert_eq!(verify_batch_parallel(&items, 3), Ok(()));
    }
}

/// The kinds above are what they claim: the torsion kinds really fail the cofactorless equation
/// (checked with ed25519-dalek's `verify_strict`), and honest signatures pass it.
#[test]
fn torsion_kinds_are_really_mixed_order() {
    for i in 1..8 {
        let b = build(&Kind::TorsionR(i), 0, b"m");
        let vk = ed25519_dalek::VerifyingKey::from_bytes(b.key.as_bytes()).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&b.signature.to_bytes());
        let payload = DOMAIN.signing_bytes(CHAIN, b"m");
        assert!(
            vk.verify_strict(&payload, &sig).is_err(),
            "torsion index {i}"
        );
        assert_eq!(verify_raw(&b.key, &payload, &b.signature), Ok(()));
    }
    let b = build(&Kind::Valid, 0, b"m");
    let vk = ed25519_dalek::VerifyingKey::from_bytes(b.key.as_bytes()).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&b.signature.to_bytes());
    assert!(
        vk.verify_strict(&DOMAIN.signing_bytes(CHAIN, b"m"), &sig)
            .is_ok()
    );
}

/// Every encoding of a small-order point, canonical or not, is refused as a key: under such a key one
/// signature verifies for many messages.
#[test]
fn small_order_keys_do_not_parse() {
    for (i, t) in EIGHT_TORSION.iter().enumerate() {
        let canonical = t.compress().to_bytes();
        assert_eq!(
            PublicKey::from_bytes(&canonical),
            Err(CryptoError::SmallOrderKey),
            "torsion index {i}, order {}",
            torsion_order(i)
        );
        // The same point with the sign bit flipped: for x = 0 a second encoding, otherwise the negation
        // (also small order).
        let mut flipped = canonical;
        flipped[31] ^= 0x80;
        assert!(
            PublicKey::from_bytes(&flipped).is_err(),
            "torsion index {i}, sign flipped"
        );
    }
    // y = p + y' for the small-order points whose y' < 19, i.e. y' ∈ {0, 1}: non-canonical encodings.
    for small in [0u8, 1] {
        let mut y = [0xffu8; 32];
        y[0] = 0xed + small;
        y[31] = 0x7f;
        for sign in [0u8, 0x80] {
            let mut enc = y;
            enc[31] |= sign;
            assert!(
                PublicKey::from_bytes(&enc).is_err(),
                "y = p + {small}, sign {sign:#x}"
            );
        }
    }
}

/// Why we do not use ed25519-dalek's verification pair: for one and the same signature (R off by a point
/// of order 2), `verify_strict` always rejects, while `verify_batch` accepts whenever its random
/// coefficient is even. dalek derives that coefficient from a transcript of the inputs, so each message
/// is a fresh coin flip and the outcome is still reproducible; 64 flips all landing the same way would
/// have probability 2⁻⁶³. Our rule accepts all 64, alone and in batches.
#[test]
fn dalek_strict_and_batch_disagree_on_torsion_r() {
    let seed = seed(5);
    let a = secret_scalar(&seed);
    let sk = SecretKey::from_seed(&seed);
    let pk = sk.public_key();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(pk.as_bytes()).unwrap();
    let order_two = EIGHT_TORSION[4];
    assert_eq!(torsion_order(4), 2);

    let (mut batch_accepts, mut batch_rejects) = (0, 0);
    let messages: Vec<[u8; 2]> = (0..64u8).map(|i| [b'#', i]).collect();
    let mut ours = Vec::new();
    for m in &messages {
        let sig = sign_doctored(&a, pk.as_bytes(), &order_two, m);
        let dalek_sig = ed25519_dalek::Signature::from_bytes(&sig.to_bytes());
        assert!(vk.verify_strict(m, &dalek_sig).is_err());
        match ed25519_dalek::verify_batch(&[m.as_slice()], &[dalek_sig], &[vk]) {
            Ok(()) => batch_accepts += 1,
            Err(_) => batch_rejects += 1,
        }
        assert_eq!(verify_raw(&pk, m, &sig), Ok(()));
        ours.push(sig);
    }
    assert!(
        batch_accepts > 0 && batch_rejects > 0,
        "dalek batch accepted {batch_accepts}, rejected {batch_rejects}"
    );

    // The same kind of signature in TimeCoin's domain, through our batch: accepted every time, as
    // single verification accepts it.
    let built: Vec<Built> = (0..64)
        .map(|i| build(&Kind::TorsionR(4), 5, &[b'#', i]))
        .collect();
    let items = items(&built);
    for item in &items {
        assert_eq!(
            verify(item.key, DOMAIN, CHAIN, item.message, item.signature),
            Ok(())
        );
    }
    for chunk in items.chunks(8) {
        assert_eq!(verify_batch(chunk), Ok(()));
    }
    assert_eq!(verify_batch(&items), Ok(()));
}
