use std::path::PathBuf;

/// Everything that can go wrong in `timecoin-crypto`.
///
/// Each variant names the rule that was broken, so a caller can report it to a user or a peer without
/// guessing.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// A public key's y coordinate is not reduced modulo p (a second encoding of some point).
    #[error("public key is not a canonical point encoding")]
    NonCanonicalKey,
    /// A public key's bytes do not decode to a point on the curve.
    #[error("public key is not a point on the curve")]
    InvalidKey,
    /// A public key is one of the eight small-order points: it would let a signature verify for any message.
    #[error("public key has small order")]
    SmallOrderKey,
    /// The R half of a signature is not a canonical point encoding.
    #[error("signature R is not a canonical point encoding")]
    NonCanonicalR,
    /// The R half of a signature does not decode to a point on the curve.
    #[error("signature R is not a point on the curve")]
    InvalidR,
    /// The R half of a signature is a small-order point.
    #[error("signature R has small order")]
    SmallOrderR,
    /// The S half of a signature is not reduced modulo the group order (the classic malleability).
    #[error("signature S is not a canonical scalar")]
    NonCanonicalS,
    /// The encodings are fine but the verification equation does not hold.
    #[error("signature does not verify")]
    BadSignature,
    /// A batch verification found invalid signatures; `indices` lists every one of them, in order.
    #[error("batch verification failed at {} signature(s), first at index {}", .indices.len(), .indices.first().copied().unwrap_or_default())]
    BatchInvalid {
        /// Positions, in the caller's slice, of the signatures that do not verify.
        indices: Vec<usize>,
    },
    /// A hex string has the wrong length or a non-hex character.
    #[error("invalid hex for {what}: expected {expected} bytes")]
    InvalidHex {
        /// What was being decoded (`"public key"`, `"hash"`, ...).
        what: &'static str,
        /// How many bytes the hex should decode to.
        expected: usize,
    },
    /// A secret key file could not be read or written.
    #[error("secret key file {path}: {reason}")]
    KeyFile {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong (never includes key material).
        reason: String,
    },
    /// A secret key file may be read by other users; it is refused, as ssh refuses such keys.
    #[error(
        "secret key file {path} is readable by group or others (mode {mode:o}); run `chmod 600` on it"
    )]
    KeyFilePermissions {
        /// The file concerned.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// An address string is not valid bech32m, or its payload has the wrong shape.
    #[error("invalid address: {reason}")]
    InvalidAddress {
        /// Why it was rejected.
        reason: String,
    },
    /// An address is valid but belongs to another network (mainnet, testnet, local).
    #[error("address is for network {found}, expected {expected}")]
    WrongNetwork {
        /// The network the caller asked for.
        expected: &'static str,
        /// The network the address names.
        found: String,
    },
    /// Serialized multiset-hash state has the wrong length.
    #[error("multiset hash state must be {expected} bytes, got {found}")]
    InvalidLtHashLength {
        /// Required length.
        expected: usize,
        /// Length supplied.
        found: usize,
    },
}
