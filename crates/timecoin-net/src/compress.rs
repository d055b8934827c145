//! Application-level compression for the large, repetitive payloads (block batches, UTXO pages), with
//! LZ4 (`lz4_flex`, pure Rust). Frames themselves are never compressed: compressing a vote gains
//! nothing, and compression under encryption of mixed secret and attacker data is how CRIME worked.
//!
//! Compressed bytes are `u32 uncompressed length (little-endian) || LZ4 block`. The stated length is
//! checked against the caller's limit before anything is allocated, and the block must inflate to
//! exactly that length: a zip bomb is refused at its header.

/// Why compressed bytes were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompressError {
    /// Fewer than the four header bytes.
    #[error("compressed payload shorter than its header")]
    MissingHeader,
    /// The payload claims to inflate past the caller's limit.
    #[error("payload would inflate to {claimed} bytes, over the limit of {max}")]
    TooLarge {
        /// The size it claims.
        claimed: usize,
        /// The caller's limit.
        max: usize,
    },
    /// The LZ4 block is corrupt or inflates to another size than it claims.
    #[error("corrupt LZ4 block")]
    Corrupt,
}

/// Compresses `data` (its length must fit a u32, as every network message does).
pub fn compress(data: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size(data)
}

/// Inflates `data`, refusing before allocating if it claims more than `max` bytes.
pub fn decompress_bounded(data: &[u8], max: usize) -> Result<Vec<u8>, CompressError> {
    let (header, block) = data
        .split_first_chunk::<4>()
        .ok_or(CompressError::MissingHeader)?;
    let claimed = u32::from_le_bytes(*header) as usize;
    if claimed > max {
        return Err(CompressError::TooLarge { claimed, max });
    }
    let mut out = vec![0u8; claimed];
    let written =
        lz4_flex::block::decompress_into(block, &mut out).map_err(|_| CompressError::Corrupt)?;
    if written != claimed {
        return Err(CompressError::Corrupt);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_batch_round_trips_and_shrinks() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let packed = compress(&data);
        assert!(packed.len() < data.len() / 2);
        assert_eq!(decompress_bounded(&packed, data.len()).unwrap(), data);
        assert_eq!(decompress_bounded(&compress(b""), 0).unwrap(), b"");
    }

    #[test]
    fn a_zip_bomb_is_refused_at_its_header() {
        let bomb = compress(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 10_000);
        assert_eq!(
            decompress_bounded(&bomb, 1 << 16),
            Err(CompressError::TooLarge {
                claimed: 1 << 20,
                max: 1 << 16
            })
        );
        // A header that lies about the size: too small or too big for what the block inflates to.
        let mut liar = bomb.clone();
        liar[..4].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            decompress_bounded(&liar, 1 << 20),
            Err(CompressError::Corrupt)
        );
        let mut liar = compress(b"hello hello hello");
        liar[..4].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(
            decompress_bounded(&liar, 1 << 20),
            Err(CompressError::Corrupt)
        );
        assert_eq!(
            decompress_bounded(&[1, 2], 10),
            Err(CompressError::MissingHeader)
        );
        assert!(decompress_bounded(&[4, 0, 0, 0, 0xff, 0xff], 10).is_err());
    }
}
