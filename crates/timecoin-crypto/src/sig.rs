//! Signatures and the one verification rule used everywhere, single or batched.
//!
//! # The rule
//! A signature `(R, S)` by key `A` on payload `M` is valid when
//! 1. `S` is a canonical scalar (`S < ℓ`): no malleability through `S + ℓ`;
//! 2. `R` and `A` are canonical encodings of curve points (`y < p`): no second encoding of a point;
//! 3. neither `R` nor `A` is one of the eight small-order points;
//! 4. the **cofactored** equation `[8]([S]B − [k]A − R) = 0` holds, `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
//!
//! Rules 1–3 are exactly the checks `ed25519-dalek`'s `verify_strict` adds to RFC 8032. Rule 4 uses the
//! cofactored equation of RFC 8032 §5.1.7 instead of the cofactorless one `verify_strict` uses, and that
//! is deliberate: a randomized batch equation can only agree with single verification when both are
//! cofactored. With the cofactorless single check, a signature whose `R` is off by a torsion point is
//! rejected alone but accepted by a batch with probability ≥ 1/2, so two honest nodes could disagree on
//! a block's validity ("Taming the many EdDSAs", Chalkias et al., 2020, §3–4). With rule 4 the batch check
//! `[8]Σ zᵢ([Sᵢ]B − [kᵢ]Aᵢ − Rᵢ) = 0` accepts exactly the set single verification accepts, except with
//! probability 2⁻¹²⁸ over the random `zᵢ`; the `batch_agrees_with_single` property test checks it on
//! valid, mutated, small-order and mixed-order inputs.
//!
//! Signatures made by any RFC 8032 signer (including `ed25519-dalek`'s) are valid under this rule.

use std::fmt;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha512};

use crate::{ChainId, CryptoError, PublicKey, SigDomain};

/// Length of a signature.
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 signature, `R ‖ S`. Parsing never fails; every check happens in verification.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// Wraps 64 bytes.
    pub const fn from_bytes(bytes: [u8; SIGNATURE_LEN]) -> Self {
        Signature(bytes)
    }

    /// The 64 bytes.
    pub const fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0
    }

    /// Borrowed bytes.
    pub const fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 128 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        crate::bytes::from_hex(s, "signature").map(Signature)
    }

    fn r_bytes(&self) -> [u8; 32] {
        let mut r = [0u8; 32];
        r.copy_from_slice(&self.0[..32]);
        r
    }

    fn s_bytes(&self) -> [u8; 32] {
        let mut s = [0u8; 32];
        s.copy_from_slice(&self.0[32..]);
        s
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..8]))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::bytes::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::bytes::deserialize(d).map(Signature)
    }
}

pub(crate) enum PointError {
    NonCanonical,
    NotOnCurve,
    SmallOrder,
}

/// `y < p = 2²⁵⁵ − 19`, read from the encoding without decompressing.
fn is_canonical_y(bytes: &[u8; 32]) -> bool {
    // p in little-endian is ed ff .. ff 7f; y ≥ p only when the top 254 bits are all ones and the low
    // byte is ≥ 0xed.
    let top = bytes[31] & 0x7f;
    let middle_all_ones = bytes[1..31].iter().all(|b| *b == 0xff);
    !(top == 0x7f && middle_all_ones && bytes[0] >= 0xed)
}

/// Decodes a point under rules 2 and 3.
pub(crate) fn decode_point(bytes: &[u8; 32]) -> Result<EdwardsPoint, PointError> {
    if !is_canonical_y(bytes) {
        return Err(PointError::NonCanonical);
    }
    let point = CompressedEdwardsY(*bytes)
        .decompress()
        .ok_or(PointError::NotOnCurve)?;
    // x = 0 with the sign bit set is a second encoding, but only of (0, ±1), which are small order and
    // rejected below.
    if point.is_small_order() {
        return Err(PointError::SmallOrder);
    }
    Ok(point)
}

/// A signature with its encodings checked (rules 1–3) and its challenge computed.
struct Prepared {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

fn prepare(
    key: &PublicKey,
    prefix: &[u8],
    message: &[u8],
    signature: &Signature,
) -> Result<Prepared, CryptoError> {
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(signature.s_bytes()))
        .ok_or(CryptoError::NonCanonicalS)?;
    let r_bytes = signature.r_bytes();
    let r = decode_point(&r_bytes).map_err(|e| match e {
        PointError::NonCanonical => CryptoError::NonCanonicalR,
        PointError::NotOnCurve => CryptoError::InvalidR,
        PointError::SmallOrder => CryptoError::SmallOrderR,
    })?;
    // k = H(R ‖ A ‖ prefix ‖ message), streamed so the payload is never copied.
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(key.compressed().as_bytes());
    h.update(prefix);
    h.update(message);
    let k = Scalar::from_hash(h);
    Ok(Prepared { r, s, k })
}

/// The single-signature check behind both [`verify`] and [`verify_raw`], so the two cannot drift apart.
fn verify_prefixed(
    key: &PublicKey,
    prefix: &[u8],
    message: &[u8],
    signature: &Signature,
) -> Result<(), CryptoError> {
    let p = prepare(key, prefix, message, signature)?;
    // [S]B − [k]A
    let rhs = EdwardsPoint::vartime_double_scalar_mul_basepoint(&(-p.k), key.point(), &p.s);
    if (rhs - p.r).mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

/// Verifies one signature under the rule in the module docs.
pub fn verify(
    key: &PublicKey,
    domain: SigDomain,
    chain: ChainId,
    message: &[u8],
    signature: &Signature,
) -> Result<(), CryptoError> {
    verify_prefixed(key, &domain.prefix(chain), message, signature)
}

/// Verifies a signature over `message` exactly as given, with no domain prefix, under the same rule as
/// [`verify`].
///
/// Not part of the supported API: it exists so conformance tests can feed published vectors (RFC 8032,
/// Wycheproof), which sign bare messages, through the very code that checks TimeCoin signatures.
/// Protocol code must use [`verify`], whose prefix keeps a signature from being replayed in another
/// domain or on another chain.
#[doc(hidden)]
pub fn verify_raw(
    key: &PublicKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), CryptoError> {
    verify_prefixed(key, &[], message, signature)
}

/// One signature to check in a batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    /// The signer.
    pub key: &'a PublicKey,
    /// What the signature is for.
    pub domain: SigDomain,
    /// The chain it was made on.
    pub chain: ChainId,
    /// The message (without the domain prefix).
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a Signature,
}

impl BatchItem<'_> {
    fn verify_single(&self) -> Result<(), CryptoError> {
        verify(
            self.key,
            self.domain,
            self.chain,
            self.message,
            self.signature,
        )
    }
}

/// Verifies many signatures at once; accepts exactly what [`verify`] accepts on each.
///
/// Costs about half of single verification per signature for large batches. When the batch equation
/// fails, every signature is checked alone, and the error lists all invalid positions, so a caller can
/// reject exactly the bad transactions and keep the rest.
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), CryptoError> {
    if items.len() <= 1 {
        return match items.first().map(BatchItem::verify_single) {
            Some(Err(_)) => Err(CryptoError::BatchInvalid { indices: vec![0] }),
            _ => Ok(()),
        };
    }
    let mut invalid = Vec::new();
    let mut prepared = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match prepare(
            item.key,
            &item.domain.prefix(item.chain),
            item.message,
            item.signature,
        ) {
            Ok(p) => prepared.push((i, p)),
            Err(_) => invalid.push(i),
        }
    }
    if !batch_equation_holds(items, &prepared) {
        // The batch says some prepared signature is bad but not which: find them one by one.
        for (i, _) in &prepared {
            if items
                .get(*i)
                .is_some_and(|item| item.verify_single().is_err())
            {
                invalid.push(*i);
            }
        }
        invalid.sort_unstable();
    }
    if invalid.is_empty() {
        Ok(())
    } else {
        Err(CryptoError::BatchInvalid { indices: invalid })
    }
}

/// `[8]( [−Σ zᵢSᵢ]B + Σ [zᵢ]Rᵢ + Σ [zᵢkᵢ]Aᵢ ) = 0` with fresh 128-bit random `zᵢ`.
fn batch_equation_holds(items: &[BatchItem<'_>], prepared: &[(usize, Prepared)]) -> bool {
    if prepared.is_empty() {
        return true;
    }
    let mut rng = rand::thread_rng();
    let n = prepared.len();
    let mut scalars = Vec::with_capacity(2 * n + 1);
    let mut points = Vec::with_capacity(2 * n + 1);
    let mut b_coeff = Scalar::ZERO;
    let mut zs = Vec::with_capacity(n);
    for (_, p) in prepared {
        let mut z = [0u8; 32];
        rng.fill_bytes(&mut z[..16]);
        let z = Scalar::from_bytes_mod_order(z);
        b_coeff -= z * p.s;
        zs.push(z);
    }
    scalars.push(b_coeff);
    points.push(curve25519_dalek::constants::ED25519_BASEPOINT_POINT);
    for ((_, p), z) in prepared.iter().zip(&zs) {
        scalars.push(*z);
        points.push(p.r);
    }
    for ((i, p), z) in prepared.iter().zip(&zs) {
        let Some(item) = items.get(*i) else {
            return false;
        };
        scalars.push(z * p.k);
        points.push(*item.key.point());
    }
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
        .mul_by_cofactor()
        .is_identity()
}

/// Like [`verify_batch`], split across the rayon thread pool in chunks of at least `min_chunk`
/// signatures. Chunking loses a little of the batch speed-up per chunk, so `min_chunk` should stay in the
/// hundreds for throughput.
pub fn verify_batch_parallel(items: &[BatchItem<'_>], min_chunk: usize) -> Result<(), CryptoError> {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads().max(1);
    let chunk = items.len().div_ceil(threads).max(min_chunk.max(1));
    let mut invalid: Vec<usize> = items
        .par_chunks(chunk)
        .enumerate()
        .flat_map_iter(|(c, part)| match verify_batch(part) {
            Ok(()) => Vec::new(),
            Err(CryptoError::BatchInvalid { indices }) => {
                indices.into_iter().map(|i| c * chunk + i).collect()
            }
            Err(_) => (0..part.len()).map(|i| c * chunk + i).collect(),
        })
        .collect();
    invalid.sort_unstable();
    if invalid.is_empty() {
        Ok(())
    } else {
        Err(CryptoError::BatchInvalid { indices: invalid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;

    const CHAIN: ChainId = ChainId(7);
    /// ℓ = 2²⁵² + 27742317777372353535851937790883648493, little-endian.
    const ELL: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    #[test]
    fn sign_then_verify_and_domain_and_chain_bind() {
        let sk = SecretKey::from_seed(&[1; 32]);
        let pk = sk.public_key();
        let sig = sk.sign(SigDomain::Vote, CHAIN, b"hello");
        assert_eq!(pk.verify(SigDomain::Vote, CHAIN, b"hello", &sig), Ok(()));
        assert_eq!(
            pk.verify(SigDomain::Proposal, CHAIN, b"hello", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            pk.verify(SigDomain::Vote, ChainId(8), b"hello", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            pk.verify(SigDomain::Vote, CHAIN, b"hellO", &sig),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn s_plus_order_is_rejected_as_non_canonical() {
        let sk = SecretKey::from_seed(&[2; 32]);
        let sig = sk.sign(SigDomain::TxInput, CHAIN, b"m");
        let mut bytes = sig.to_bytes();
        let s = Scalar::from_canonical_bytes(sig.s_bytes()).unwrap();
        // S + ℓ as a 256-bit integer, which still fits in 32 bytes since ℓ < 2²⁵³.
        let mut carry = 0u16;
        for (i, byte) in bytes[32..].iter_mut().enumerate() {
            let sum = u16::from(s.as_bytes()[i]) + u16::from(ELL[i]) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        let forged = Signature::from_bytes(bytes);
        assert_eq!(
            sk.public_key()
                .verify(SigDomain::TxInput, CHAIN, b"m", &forged),
            Err(CryptoError::NonCanonicalS)
        );
    }

    #[test]
    fn batch_reports_every_bad_index() {
        let keys: Vec<SecretKey> = (0..10u8).map(|i| SecretKey::from_seed(&[i; 32])).collect();
        let pks: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
        let msgs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 5]).collect();
        let mut sigs: Vec<Signature> = keys
            .iter()
            .zip(&msgs)
            .map(|(k, m)| k.sign(SigDomain::TxInput, CHAIN, m))
            .collect();
        let items = |sigs: &[Signature]| -> Vec<(usize, Signature)> {
            sigs.iter().copied().enumerate().collect()
        };
        let check = |sigs: &[Signature]| {
            let owned = items(sigs);
            let batch: Vec<BatchItem<'_>> = owned
                .iter()
                .map(|(i, s)| BatchItem {
                    key: &pks[*i],
                    domain: SigDomain::TxInput,
                    chain: CHAIN,
                    message: &msgs[*i],
                    signature: s,
                })
                .collect();
            (verify_batch(&batch), verify_batch_parallel(&batch, 2))
        };
        assert_eq!(check(&sigs), (Ok(()), Ok(())));
        sigs[3] = sigs[4];
        let mut b = sigs[7].to_bytes();
        b[63] |= 0xf0; // non-canonical S
        sigs[7] = Signature::from_bytes(b);
        let want = Err(CryptoError::BatchInvalid {
            indices: vec![3, 7],
        });
        assert_eq!(check(&sigs), (want.clone(), want));
    }
}
