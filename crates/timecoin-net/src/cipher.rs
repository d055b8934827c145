//! A session's Noise transport keys, split into the sending and the receiving direction.
//!
//! Each direction has its own nonce counter, so the stateless Noise state is shared between the two
//! halves without a lock: the writer owns the [`Sealer`], the reader the [`Opener`].

use std::sync::Arc;

use crate::PeerError;
use crate::frame::{NOISE_TAG_BYTES, RECORD_MAX_PLAINTEXT_BYTES};

/// Splits the keys of a finished handshake into its two directions, both at nonce 0.
pub(crate) fn split(state: snow::StatelessTransportState) -> (Sealer, Opener) {
    let state = Arc::new(state);
    (
        Sealer {
            state: Arc::clone(&state),
            nonce: 0,
        },
        Opener { state, nonce: 0 },
    )
}

/// The sending direction.
pub(crate) struct Sealer {
    state: Arc<snow::StatelessTransportState>,
    nonce: u64,
}

impl Sealer {
    /// Encrypts `plain` into records (`u16 length || ciphertext`), one per
    /// [`RECORD_MAX_PLAINTEXT_BYTES`] of plaintext, replacing what `out` held.
    pub(crate) fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), PeerError> {
        out.clear();
        for chunk in plain.chunks(RECORD_MAX_PLAINTEXT_BYTES) {
            let len = chunk.len() + NOISE_TAG_BYTES;
            let start = out.len();
            // Each record is at most 65,535 bytes, so its length fits the u16 prefix.
            out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
            out.resize(start + 2 + len, 0);
            let body = out.get_mut(start + 2..).unwrap_or_default();
            self.state.write_message(self.nonce, chunk, body)?;
            self.nonce += 1;
        }
        Ok(())
    }
}

/// The receiving direction.
pub(crate) struct Opener {
    state: Arc<snow::StatelessTransportState>,
    nonce: u64,
}

impl Opener {
    /// Decrypts one record's body into `out` (which must hold 65,535 bytes) and returns the
    /// plaintext's length. A record that does not decrypt (garbage, tampering, a replay) is an error.
    pub(crate) fn open(&mut self, record: &[u8], out: &mut [u8]) -> Result<usize, PeerError> {
        let n = self.state.read_message(self.nonce, record, out)?;
        self.nonce += 1;
        Ok(n)
    }
}
