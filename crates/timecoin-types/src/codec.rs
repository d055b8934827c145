//! Canonical encoding.
//!
//! Everything on the wire or on disk is postcard. postcard alone is not canonical: it accepts non-minimal
//! varints, so one value has many encodings and an id taken over bytes would be malleable. [`Wire::decode`]
//! therefore checks the size before decoding anything, rejects trailing bytes, and re-encodes the value
//! and requires the same bytes back.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::TypesError;

/// Encodes with postcard.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // postcard fails only on a full fixed buffer (a Vec grows) or on serde features our types do not use
    // (unsized sequences, maps with non-string keys in `collect_str`), so this cannot fail for them.
    #[allow(clippy::expect_used)]
    postcard::to_stdvec(value).expect("encoding TimeCoin types to a Vec is infallible")
}

/// Length of the encoding, without keeping it.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::experimental::serialized_size(value).unwrap_or(usize::MAX)
}

/// A type with one canonical byte encoding and a size limit.
pub trait Wire: Serialize + DeserializeOwned {
    /// Name used in errors.
    const NAME: &'static str;
    /// No valid encoding is longer; longer input is refused before decoding.
    const MAX_ENCODED_LEN: usize;

    /// The canonical encoding.
    fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes untrusted bytes: size first, then decode, then no trailing bytes, then re-encoding equality.
    fn decode(bytes: &[u8]) -> Result<Self, TypesError> {
        decode_bounded(bytes, Self::NAME, Self::MAX_ENCODED_LEN)
    }
}

/// [`Wire::decode`] with an explicit name and limit, for types that are not `Wire`.
pub fn decode_bounded<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
    max: usize,
) -> Result<T, TypesError> {
    if bytes.len() > max {
        return Err(TypesError::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    let (value, rest): (T, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| TypesError::Malformed {
            what,
            reason: match e {
                // postcard drops the message of a rule our own types enforce while decoding.
                postcard::Error::SerdeDeCustom => {
                    "a field breaks its type's rule (a list over its \
                    bound, or a block whose body does not match its header)"
                        .to_string()
                }
                other => other.to_string(),
            },
        })?;
    if !rest.is_empty() {
        return Err(TypesError::TrailingBytes {
            what,
            extra: rest.len(),
        });
    }
    if encode(&value) != bytes {
        return Err(TypesError::NonCanonical { what });
    }
    Ok(value)
}
