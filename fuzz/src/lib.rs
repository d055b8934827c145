//! Shared checks for the fuzz targets: each target decodes untrusted bytes as one wire type.

#![forbid(unsafe_code)]

use timecoin_types::Wire;

/// Decodes `data` as `T`. Decoding must never panic; whatever it accepts must be the canonical encoding
/// (re-encoding gives back exactly `data`), so one value never has two encodings and two ids.
pub fn decode_canonical<T: Wire>(data: &[u8]) -> Option<T> {
    let value = T::decode(data).ok()?;
    assert_eq!(
        value.encode(),
        data,
        "{} decoded from a non-canonical encoding",
        T::NAME
    );
    Some(value)
}
