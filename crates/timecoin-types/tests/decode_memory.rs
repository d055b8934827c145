//! Decoding costs memory in proportion to the input, not to what the input claims.
//!
//! Measured with the process's peak resident set (Linux `VmHWM`, reset through `/proc/self/clear_refs`),
//! so this file holds a single test: other tests running beside it would blur the peak. Elsewhere the test
//! says why it was skipped and passes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use timecoin_types::{Block, Genesis, MAX_BLOCK_TXS, Proposal, SecretKey, TypesError, Wire};

const MIB: u64 = 1024 * 1024;

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak memory growth, in bytes, while running `f`.
fn peak_growth<T>(f: impl FnOnce() -> T) -> Option<(T, u64)> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    let before = status_kib("VmRSS:")?;
    let out = f();
    let peak = status_kib("VmHWM:")?;
    Some((out, peak.saturating_sub(before) * 1024))
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A block header followed by `count` transactions of 4 bytes each (version 1, no inputs, no outputs,
/// Transfer): canonical, tiny on the wire, and ~300 bytes each once decoded.
fn block_of_empty_transactions(count: usize) -> Vec<u8> {
    let mut bytes = Genesis::local(1).block().header.encode();
    varint(count as u64, &mut bytes);
    for _ in 0..count {
        bytes.extend_from_slice(&[0x01, 0x00, 0x00, 0x00]);
    }
    bytes
}

/// A block whose one transaction has as many inputs as fit in `budget` bytes: the densest structure
/// a block can legitimately carry.
fn block_of_one_wide_transaction(budget: usize) -> Vec<u8> {
    let key = SecretKey::from_seed(&[3; 32]).public_key();
    let mut input = vec![0x11; 32];
    input.push(0x00);
    input.extend_from_slice(key.as_bytes());
    input.extend_from_slice(&[0x22; 64]);
    let count = budget / input.len();
    let mut bytes = Genesis::local(1).block().header.encode();
    bytes.push(0x01);
    bytes.push(0x01);
    varint(count as u64, &mut bytes);
    for _ in 0..count {
        bytes.extend_from_slice(&input);
    }
    bytes.extend_from_slice(&[0x00, 0x00]);
    bytes
}

#[test]
fn decoding_never_costs_more_memory_than_a_bounded_multiple_of_the_input() {
    if peak_growth(|| ()).is_none() {
        eprintln!("skipped: needs Linux /proc/self/clear_refs to measure peak memory");
        return;
    }
    // The attack first, while the heap is fresh: a 4 MiB block of a million empty transactions used to
    // decode into ~300 MiB.
    let count = (Block::MAX_ENCODED_LEN - 400) / 4;
    let attack = block_of_empty_transactions(count);
    assert!(attack.len() <= Block::MAX_ENCODED_LEN);
    let (result, grew) = peak_growth(|| Block::decode(&attack)).unwrap();
    assert!(
        matches!(result, Err(TypesError::Malformed { what: "block", .. })),
        "{:?}",
        result.map(|b| b.transactions.len())
    );
    assert!(grew < 16 * MIB, "refusing the block cost {grew} bytes");

    // The same block inside a proposal.
    let mut proposal = vec![0x01, 0x00, 0x00];
    proposal.extend_from_slice(&attack);
    let (result, grew) = peak_growth(|| Proposal::decode(&proposal)).unwrap();
    assert!(matches!(
        result,
        Err(TypesError::Malformed {
            what: "proposal",
            ..
        })
    ));
    assert!(grew < 16 * MIB, "refusing the proposal cost {grew} bytes");

    // At the bound the block still decodes (it is canonical; the rules reject it later), in bounded memory.
    let at_bound = block_of_empty_transactions(MAX_BLOCK_TXS);
    let (result, grew) = peak_growth(|| Block::decode(&at_bound)).unwrap();
    assert_eq!(result.unwrap().transactions.len(), MAX_BLOCK_TXS);
    assert!(grew < 64 * MIB, "a block at the bound cost {grew} bytes");
    let over = block_of_empty_transactions(MAX_BLOCK_TXS + 1);
    assert!(matches!(
        Block::decode(&over),
        Err(TypesError::Malformed { what: "block", .. })
    ));

    // The densest legitimate shape: 4 MiB of inputs in one transaction.
    let wide = block_of_one_wide_transaction(Block::MAX_ENCODED_LEN - 300);
    let (result, grew) = peak_growth(|| Block::decode(&wide)).unwrap();
    let block = result.unwrap();
    assert!(block.transactions[0].inputs.len() > 30_000);
    drop(block);
    assert!(grew < 64 * MIB, "4 MiB of inputs cost {grew} bytes");

    // A declared count of 2^63 transactions over a few bytes.
    let mut huge = Genesis::local(1).block().header.encode();
    varint(1 << 63, &mut huge);
    huge.extend_from_slice(&[0x01, 0x00, 0x00, 0x00]);
    let (result, grew) = peak_growth(|| Block::decode(&huge)).unwrap();
    assert!(matches!(result, Err(TypesError::Malformed { .. })));
    assert!(grew < 4 * MIB, "a huge declared count cost {grew} bytes");
}
