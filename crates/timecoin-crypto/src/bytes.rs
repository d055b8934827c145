//! Serde helpers for fixed-size byte arrays.
//!
//! serde implements arrays only up to 32 elements and encodes them as tuples; we want every fixed-size
//! value (keys, hashes, signatures) to be a tuple of bytes in postcard, with no length prefix, so the
//! encoding has exactly one form.

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserializer, Serializer};

/// Serializes `bytes` as a fixed-length tuple.
pub(crate) fn serialize<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut t = s.serialize_tuple(N)?;
    for b in bytes {
        t.serialize_element(b)?;
    }
    t.end()
}

/// Deserializes a fixed-length tuple of bytes.
pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
    d: D,
) -> Result<[u8; N], D::Error> {
    struct ArrayVisitor<const N: usize>;
    impl<'de, const N: usize> Visitor<'de> for ArrayVisitor<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{N} bytes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
            let mut out = [0u8; N];
            for (i, slot) in out.iter_mut().enumerate() {
                *slot = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(i, &self))?;
            }
            Ok(out)
        }
    }
    d.deserialize_tuple(N, ArrayVisitor::<N>)
}

/// Decodes exactly `N` bytes of hex.
pub(crate) fn from_hex<const N: usize>(
    s: &str,
    what: &'static str,
) -> Result<[u8; N], crate::CryptoError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s.trim(), &mut out)
        .map_err(|_| crate::CryptoError::InvalidHex { what, expected: N })?;
    Ok(out)
}
