//! Ed25519 key pairs: generation, signing, and the secret key file.

use std::fmt;
use std::io::Write;
use std::path::Path;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use ed25519_dalek::Signer as _;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::{ChainId, CryptoError, SigDomain, Signature};

/// Length of a public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of a secret key (the RFC 8032 seed).
pub const SECRET_KEY_LEN: usize = 32;

/// A validated Ed25519 public key.
///
/// Construction checks once what every verification would otherwise repeat: the encoding is canonical,
/// it is a curve point, and it is not of small order. The decompressed point is kept, so verification
/// does not decompress it again.
#[derive(Clone, Copy)]
pub struct PublicKey {
    bytes: [u8; PUBLIC_KEY_LEN],
    point: EdwardsPoint,
}

impl PublicKey {
    /// Parses and validates 32 bytes. A key that validated before is taken from a bounded memo
    /// ([`crate::key_cache`]) instead of being decompressed again; the answer is the same either way.
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<Self, CryptoError> {
        if let Some(point) = crate::key_cache::get(bytes) {
            return Ok(PublicKey {
                bytes: *bytes,
                point,
            });
        }
        let point = crate::sig::decode_point(bytes).map_err(|e| match e {
            crate::sig::PointError::NonCanonical => CryptoError::NonCanonicalKey,
            crate::sig::PointError::NotOnCurve => CryptoError::InvalidKey,
            crate::sig::PointError::SmallOrder => CryptoError::SmallOrderKey,
        })?;
        crate::key_cache::insert(*bytes, point);
        Ok(PublicKey {
            bytes: *bytes,
            point,
        })
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        Self::from_bytes(&crate::bytes::from_hex(s, "public key")?)
    }

    /// The 32-byte encoding.
    pub const fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    pub(crate) fn point(&self) -> &EdwardsPoint {
        &self.point
    }

    pub(crate) fn compressed(&self) -> CompressedEdwardsY {
        CompressedEdwardsY(self.bytes)
    }

    /// Verifies `signature` over `message` in `domain` on `chain`. See [`crate::verify`] for the rule.
    pub fn verify(
        &self,
        domain: SigDomain,
        chain: ChainId,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), CryptoError> {
        crate::sig::verify(self, domain, chain, message, signature)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for PublicKey {}
impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}
impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}…)", hex::encode(&self.bytes[..8]))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::bytes::serialize(&self.bytes, s)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: [u8; PUBLIC_KEY_LEN] = crate::bytes::deserialize(d)?;
        PublicKey::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 secret key. Zeroized on drop, never printed.
pub struct SecretKey {
    inner: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl SecretKey {
    /// A fresh key from a cryptographically secure RNG.
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; SECRET_KEY_LEN]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// A fresh key from the operating system's RNG.
    pub fn generate_os() -> Self {
        Self::generate(&mut rand_core::OsRng)
    }

    /// The key whose RFC 8032 seed is `seed`.
    pub fn from_seed(seed: &[u8; SECRET_KEY_LEN]) -> Self {
        let inner = ed25519_dalek::SigningKey::from_bytes(seed);
        let public_bytes = inner.verifying_key().to_bytes();
        // A public key computed as seed·B is always a canonical, prime-order point.
        let point = inner.verifying_key().to_edwards();
        SecretKey {
            inner,
            public: PublicKey {
                bytes: public_bytes,
                point,
            },
        }
    }

    /// The RFC 8032 seed; wrapped so it is wiped when dropped.
    pub fn to_seed(&self) -> Zeroizing<[u8; SECRET_KEY_LEN]> {
        Zeroizing::new(self.inner.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Signs `message` in `domain` on `chain`.
    pub fn sign(&self, domain: SigDomain, chain: ChainId, message: &[u8]) -> Signature {
        let payload = domain.signing_bytes(chain, message);
        Signature::from_bytes(self.inner.sign(&payload).to_bytes())
    }

    /// Writes the seed as hex to a new file with mode 0600. Refuses to overwrite an existing file, so a
    /// key can never be lost by a mistyped command.
    pub fn save(&self, path: &Path) -> Result<(), CryptoError> {
        let err = |reason: String| CryptoError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(|e| err(e.to_string()))?;
        let text = Zeroizing::new(format!("{}\n", hex::encode(self.to_seed().as_ref())));
        file.write_all(text.as_bytes())
            .map_err(|e| err(e.to_string()))?;
        file.sync_all().map_err(|e| err(e.to_string()))
    }

    /// Reads a key written by [`SecretKey::save`]. On Unix, a file readable by group or others is refused.
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let err = |reason: String| CryptoError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.len() > 256 {
            return Err(err(format!(
                "file is {} bytes; a key file holds 64 hex characters",
                meta.len()
            )));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(CryptoError::KeyFilePermissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
        let mut seed = Zeroizing::new([0u8; SECRET_KEY_LEN]);
        hex::decode_to_slice(text.trim(), seed.as_mut())
            .map_err(|_| err("expected 64 hex characters".to_string()))?;
        Ok(Self::from_seed(&seed))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<redacted>, public {:?})", self.public)
    }
}

/// Whatever signs for a validator or a wallet: a key in memory, or a remote signer (HSM, KMS).
///
/// An implementation must sign `domain.signing_bytes(chain, message)` with the key whose public half is
/// [`Signer::public_key`] (exactly what [`SecretKey::sign`] does), and must not refuse: a consensus core
/// has already persisted what it is about to sign. A remote signer may add its own double-sign guard;
/// the core never asks it to sign two different messages for one slot.
pub trait Signer: Send + Sync {
    /// The signing key's public half.
    fn public_key(&self) -> PublicKey;
    /// Signs `message` for `domain` on `chain`.
    fn sign(&self, domain: SigDomain, chain: ChainId, message: &[u8]) -> Signature;
}

impl Signer for SecretKey {
    fn public_key(&self) -> PublicKey {
        SecretKey::public_key(self)
    }
    fn sign(&self, domain: SigDomain, chain: ChainId, message: &[u8]) -> Signature {
        SecretKey::sign(self, domain, chain, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_secret() {
        let sk = SecretKey::from_seed(&[7u8; 32]);
        let text = format!("{sk:?}");
        assert!(!text.contains(&hex::encode([7u8; 32])));
        assert!(text.contains("redacted"));
    }

    #[test]
    fn file_round_trip_with_private_mode() {
        let dir = tempfile::tempdir()
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("key");
        let sk = SecretKey::generate_os();
        sk.save(&path).unwrap_or_else(|e| panic!("{e}"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            assert_eq!(mode, 0o600);
        }
        let back = SecretKey::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.public_key(), sk.public_key());
        // A second save must not clobber the key.
        assert!(matches!(sk.save(&path), Err(CryptoError::KeyFile { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("key");
        std::fs::write(&path, hex::encode([1u8; 32])).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            SecretKey::load(&path),
            Err(CryptoError::KeyFilePermissions { mode: 0o644, .. })
        ));
    }

    #[test]
    fn public_key_serde_rejects_small_order_points() {
        // The identity point (y = 1) has order one.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            PublicKey::from_bytes(&identity),
            Err(CryptoError::SmallOrderKey)
        );
        let encoded = postcard::to_stdvec(&identity).unwrap_or_default();
        assert!(postcard::from_bytes::<PublicKey>(&encoded).is_err());
    }
}
