//! The transaction and block rules, one scenario per way a transaction or a block can be wrong, each
//! asserting the exact error a wallet or a peer would be shown; then the UTXO commitment, kept
//! incrementally, against a from-scratch recomputation over random chains of blocks.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::{BTreeMap, HashMap};

use common::key;
use proptest::prelude::*;
use timecoin_crypto::{CryptoError, LtHash, SigDomain, merkle_root};
use timecoin_types::{
    Address, Amount, Block, BlockHash, BlockHeader, ChainId, ChainParams, Genesis, Hash,
    MAX_TX_BYTES, MAX_TX_INPUTS, MAX_TX_OUTPUTS, MasternodeRegistration, Network, OutPoint,
    SecretKey, Signature, TX_VERSION, Tier, Transaction, TxBuilder, TxId, TxIn, TxKind, TxOut,
    TypesError, UtxoView, WellFormedBlock, Wire, apply_to_commitment, block_utxo_delta,
    check_block, check_tx, check_tx_context, utxo_element, verify_signatures,
};

const COIN_VALUE: Amount = Amount::from_sat(100_000);

fn params() -> ChainParams {
    ChainParams::for_network(Network::Local)
}

fn address(k: &SecretKey) -> Address {
    Address::from_public_key(&k.public_key())
}

/// Coin `i`: an outpoint of a made-up earlier transaction.
fn coin(i: u8) -> OutPoint {
    OutPoint {
        txid: TxId(Hash::from_bytes([i; 32])),
        vout: u32::from(i),
    }
}

/// Eight coins of [`COIN_VALUE`]; coin `i` belongs to key `i % 4`.
fn wallet_view() -> HashMap<OutPoint, TxOut> {
    (0..8)
        .map(|i| {
            (
                coin(i),
                TxOut {
                    amount: COIN_VALUE,
                    address: address(&key(i % 4)),
                },
            )
        })
        .collect()
}

fn sat(n: u64) -> Amount {
    Amount::from_sat(n)
}

/// Key 0 spends coin 0 (and coin 4 when `two_inputs`), paying 60,000 to key 1 and the rest minus
/// `fee` back to itself.
fn payment(fee: u64, two_inputs: bool) -> Transaction {
    let k0 = key(0);
    let mut b = TxBuilder::new(params().chain_id).input(coin(0), COIN_VALUE, &k0);
    let mut total = COIN_VALUE.as_sat();
    if two_inputs {
        b = b.input(coin(4), COIN_VALUE, &k0);
        total += COIN_VALUE.as_sat();
    }
    b.output(address(&key(1)), sat(60_000))
        .output(address(&k0), sat(total - 60_000 - fee))
        .sign()
}

fn unsigned_input(prevout: OutPoint, k: &SecretKey) -> TxIn {
    TxIn {
        prevout,
        public_key: k.public_key(),
        signature: Signature::from_bytes([0; 64]),
    }
}

// ---- stateless rules ---------------------------------------------------------------------------------

#[test]
fn a_valid_payment_passes_and_reports_its_fee() {
    let tx = payment(250, true);
    assert_eq!(tx.check(&params()), Ok(()));
    assert_eq!(check_tx(&tx, &wallet_view(), &params()), Ok(sat(250)));
    let checked = check_tx_context(&tx, &wallet_view(), &params()).unwrap();
    assert_eq!(checked.fee, sat(250));
    assert_eq!(checked.spent, vec![wallet_view()[&coin(0)]; 2]);
}

#[test]
fn a_transaction_without_inputs_creates_money_and_is_rejected() {
    let tx = Transaction {
        version: TX_VERSION,
        inputs: Vec::new(),
        outputs: vec![TxOut {
            amount: sat(5_000),
            address: address(&key(0)),
        }],
        kind: TxKind::Transfer,
    };
    assert_eq!(tx.check(&params()), Err(TypesError::NoInputs));
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        Err(TypesError::NoInputs)
    );
}

#[test]
fn a_transaction_without_outputs_is_rejected() {
    let k0 = key(0);
    let tx = TxBuilder::new(params().chain_id)
        .input(coin(0), COIN_VALUE, &k0)
        .sign();
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        Err(TypesError::NoOutputs)
    );
}

#[test]
fn spending_one_outpoint_twice_in_a_transaction_is_rejected() {
    let k0 = key(0);
    let tx = TxBuilder::new(params().chain_id)
        .input(coin(0), COIN_VALUE, &k0)
        .input(coin(4), COIN_VALUE, &k0)
        .input(coin(0), COIN_VALUE, &k0)
        .output(address(&k0), sat(150_000))
        .sign();
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        Err(TypesError::DuplicateInput {
            index: 2,
            first: 0,
            outpoint: coin(0)
        })
    );
}

#[test]
fn an_output_below_dust_is_rejected_and_one_at_the_threshold_is_not() {
    let k0 = key(0);
    let pay = |small: u64| {
        TxBuilder::new(params().chain_id)
            .input(coin(0), COIN_VALUE, &k0)
            .output(address(&key(1)), sat(50_000))
            .output(address(&k0), sat(small))
            .sign()
    };
    assert_eq!(
        check_tx(&pay(999), &wallet_view(), &params()),
        Err(TypesError::DustOutput {
            index: 1,
            amount: sat(999),
            min: sat(1_000)
        })
    );
    assert_eq!(
        check_tx(&pay(1_000), &wallet_view(), &params()),
        Ok(sat(49_000))
    );
}

#[test]
fn outputs_summing_past_u64_max_are_an_error_not_a_wrap() {
    // Wrapping, u64::MAX + 1,001 would be 1,000 sat: less than the 100,000 sat coin, a valid-looking
    // payment that mints nearly 2^64 sat.
    let k0 = key(0);
    let tx = TxBuilder::new(params().chain_id)
        .input(coin(0), COIN_VALUE, &k0)
        .output(address(&key(1)), Amount::MAX)
        .output(address(&k0), sat(1_001))
        .sign();
    assert_eq!(tx.output_total(), Err(TypesError::OutputOverflow));
    assert_eq!(tx.check(&params()), Err(TypesError::OutputOverflow));
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        Err(TypesError::OutputOverflow)
    );
}

#[test]
fn inputs_summing_past_u64_max_are_an_error_not_a_wrap() {
    let k0 = key(0);
    let half = u64::MAX / 2 + 1;
    let mut view = wallet_view();
    for i in [0, 4] {
        view.get_mut(&coin(i)).unwrap().amount = sat(half);
    }
    let tx = TxBuilder::new(params().chain_id)
        .input(coin(0), sat(half), &k0)
        .input(coin(4), sat(half), &k0)
        .output(address(&k0), sat(5_000))
        .sign();
    assert_eq!(
        check_tx(&tx, &view, &params()),
        Err(TypesError::InputOverflow)
    );
}

#[test]
fn unknown_versions_are_rejected() {
    for version in [0, 2, u16::MAX] {
        let tx = Transaction {
            version,
            ..payment(100, false)
        };
        assert_eq!(
            check_tx(&tx, &wallet_view(), &params()),
            Err(TypesError::UnsupportedVersion(version))
        );
    }
}

#[test]
fn too_many_inputs_or_outputs_are_rejected_by_count() {
    let k0 = key(0);
    let many_inputs = Transaction {
        version: TX_VERSION,
        inputs: (0..=MAX_TX_INPUTS as u32)
            .map(|vout| unsigned_input(OutPoint { vout, ..coin(0) }, &k0))
            .collect(),
        outputs: vec![TxOut {
            amount: sat(5_000),
            address: address(&k0),
        }],
        kind: TxKind::Transfer,
    };
    assert_eq!(
        many_inputs.check(&params()),
        Err(TypesError::TooManyInputs {
            count: MAX_TX_INPUTS + 1,
            max: MAX_TX_INPUTS
        })
    );
    let many_outputs = Transaction {
        outputs: vec![
            TxOut {
                amount: sat(5_000),
                address: address(&k0),
            };
            MAX_TX_OUTPUTS + 1
        ],
        ..payment(100, false)
    };
    assert_eq!(
        many_outputs.check(&params()),
        Err(TypesError::TooManyOutputs {
            count: MAX_TX_OUTPUTS + 1,
            max: MAX_TX_OUTPUTS
        })
    );
}

#[test]
fn an_oversized_transaction_is_rejected_by_the_protocol_limit_and_by_the_chain_limit() {
    // 800 inputs is under the count limit but over 100 KiB.
    let k0 = key(0);
    let big = Transaction {
        version: TX_VERSION,
        inputs: (0..800)
            .map(|vout| unsigned_input(OutPoint { vout, ..coin(0) }, &k0))
            .collect(),
        outputs: vec![TxOut {
            amount: sat(5_000),
            address: address(&k0),
        }],
        kind: TxKind::Transfer,
    };
    let len = big.encoded_len();
    assert!(len > MAX_TX_BYTES);
    assert_eq!(
        big.check(&params()),
        Err(TypesError::TooLarge {
            what: "transaction",
            len,
            max: MAX_TX_BYTES
        })
    );

    // A chain may set a lower limit; a higher one is capped at the protocol's.
    let tx = payment(100, true);
    let small_chain = ChainParams {
        max_tx_bytes: 300,
        ..params()
    };
    assert_eq!(
        check_tx(&tx, &wallet_view(), &small_chain),
        Err(TypesError::TooLarge {
            what: "transaction",
            len: tx.encoded_len(),
            max: 300
        })
    );
    let lax_chain = ChainParams {
        max_tx_bytes: u32::MAX,
        ..params()
    };
    assert_eq!(lax_chain.tx_limit(), MAX_TX_BYTES);
}

// ---- contextual rules --------------------------------------------------------------------------------

#[test]
fn spending_an_unknown_or_spent_output_is_rejected() {
    let k0 = key(0);
    let ghost = coin(200);
    let tx = TxBuilder::new(params().chain_id)
        .input(coin(0), COIN_VALUE, &k0)
        .input(ghost, COIN_VALUE, &k0)
        .output(address(&k0), sat(150_000))
        .sign();
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        Err(TypesError::MissingInput {
            index: 1,
            outpoint: ghost
        })
    );
}

#[test]
fn spending_someone_elses_output_is_a_key_mismatch() {
    // Key 1 signs correctly for itself, but coin 0 pays to key 0's address.
    let (k0, k1) = (key(0), key(1));
    let tx = TxBuilder::new(params().chain_id)
        .input(coin(4), COIN_VALUE, &k0)
        .input(coin(0), COIN_VALUE, &k1)
        .output(address(&k1), sat(150_000))
        .sign();
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        Err(TypesError::KeyMismatch { index: 1 })
    );
}

#[test]
fn outputs_worth_more_than_inputs_are_rejected() {
    let k0 = key(0);
    let tx = TxBuilder::new(params().chain_id)
        .input(coin(0), COIN_VALUE, &k0)
        .output(address(&k0), sat(100_001))
        .sign();
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        Err(TypesError::InsufficientInputs {
            inputs: COIN_VALUE,
            outputs: sat(100_001)
        })
    );
}

#[test]
fn a_fee_below_the_minimum_is_rejected() {
    assert_eq!(
        check_tx(&payment(0, false), &wallet_view(), &params()),
        Err(TypesError::FeeTooLow {
            fee: Amount::ZERO,
            min: sat(1)
        })
    );
    assert_eq!(
        check_tx(&payment(1, false), &wallet_view(), &params()),
        Ok(sat(1))
    );
    let dear_chain = ChainParams {
        min_tx_fee: sat(500),
        ..params()
    };
    assert_eq!(
        check_tx(&payment(499, false), &wallet_view(), &dear_chain),
        Err(TypesError::FeeTooLow {
            fee: sat(499),
            min: sat(500)
        })
    );
}

fn bad_signature(index: usize, source: CryptoError) -> Result<Amount, TypesError> {
    Err(TypesError::BadSignature { index, source })
}

#[test]
fn a_signature_by_another_key_is_rejected() {
    // Input 1 names key 0 (so the address matches and the txid is the honest one) but carries a signature
    // by key 1 over exactly the right message.
    let (k0, k1) = (key(0), key(1));
    let mut tx = payment(100, true);
    let message = Transaction::input_message(&tx.txid(), 1, COIN_VALUE);
    tx.inputs[1].signature = k1.sign(SigDomain::TxInput, params().chain_id, &message);
    assert_eq!(tx.inputs[1].public_key, k0.public_key());
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        bad_signature(1, CryptoError::BadSignature)
    );
}

#[test]
fn a_signature_made_for_another_chain_is_rejected() {
    let k0 = key(0);
    let tx = TxBuilder::new(ChainId(params().chain_id.0 + 1))
        .input(coin(0), COIN_VALUE, &k0)
        .output(address(&k0), sat(90_000))
        .sign();
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        bad_signature(0, CryptoError::BadSignature)
    );
}

#[test]
fn a_signature_moved_to_another_input_is_rejected() {
    // Both inputs are key 0's, so each signature is by the right key, just for the other position.
    let mut tx = payment(100, true);
    let (a, b) = (tx.inputs[0].signature, tx.inputs[1].signature);
    tx.inputs[0].signature = b;
    tx.inputs[1].signature = a;
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        bad_signature(0, CryptoError::BadSignature)
    );
    // Only the second moved: the first is fine, the second is named.
    let mut tx = payment(100, true);
    tx.inputs[1].signature = tx.inputs[0].signature;
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        bad_signature(1, CryptoError::BadSignature)
    );
}

#[test]
fn a_signer_lied_to_about_the_spent_amount_produces_an_invalid_signature() {
    // An offline signer was told coin 4 holds 1,000 sat; it really holds 100,000 (all but 1,000 of which
    // would go to fees). The signature covers the amount, so it fails.
    let k0 = key(0);
    let tx = TxBuilder::new(params().chain_id)
        .input(coin(0), COIN_VALUE, &k0)
        .input(coin(4), sat(1_000), &k0)
        .output(address(&k0), sat(100_000))
        .sign();
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        bad_signature(1, CryptoError::BadSignature)
    );
}

#[test]
fn changing_an_output_after_signing_invalidates_every_signature() {
    let mut tx = payment(100, true);
    tx.outputs[0].address = address(&key(3));
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        bad_signature(0, CryptoError::BadSignature)
    );
}

#[test]
fn a_malleated_signature_is_rejected_with_the_precise_reason() {
    // S + L verifies under a lax verifier; strict verification names it.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut tx = payment(100, true);
    let mut bytes = tx.inputs[1].signature.to_bytes();
    let mut carry = 0u16;
    for (s, l) in bytes[32..].iter_mut().zip(L) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
    tx.inputs[1].signature = Signature::from_bytes(bytes);
    assert_eq!(
        check_tx(&tx, &wallet_view(), &params()),
        bad_signature(1, CryptoError::NonCanonicalS)
    );
}

#[test]
fn verifying_with_fewer_spent_outputs_than_inputs_does_not_skip_inputs() {
    let mut tx = payment(100, true);
    tx.inputs[1].signature = Signature::from_bytes([0; 64]);
    let spent = vec![wallet_view()[&coin(0)]];
    assert_eq!(
        verify_signatures(&tx, params().chain_id, &spent),
        Err(TypesError::MissingInput {
            index: 1,
            outpoint: coin(4)
        })
    );
}

#[test]
fn the_txid_ignores_signatures_but_covers_everything_else() {
    let tx = payment(100, true);
    let id = tx.txid();

    let mut zeroed = tx.clone();
    for input in &mut zeroed.inputs {
        input.signature = Signature::from_bytes([0; 64]);
    }
    assert_eq!(zeroed.txid(), id);

    let k0 = key(0);
    let other_chain = TxBuilder::new(ChainId(99))
        .input(coin(0), COIN_VALUE, &k0)
        .input(coin(4), COIN_VALUE, &k0)
        .output(address(&key(1)), sat(60_000))
        .output(address(&k0), sat(200_000 - 60_000 - 100))
        .sign();
    assert_ne!(other_chain.inputs[0].signature, tx.inputs[0].signature);
    assert_eq!(other_chain.txid(), id);

    let mut changed = tx.clone();
    changed.outputs[1].amount = sat(1_000);
    assert_ne!(changed.txid(), id);
    let mut changed = tx.clone();
    changed.inputs[0].public_key = key(2).public_key();
    assert_ne!(changed.txid(), id);
    let mut changed = tx.clone();
    changed.kind = TxKind::DeregisterMasternode {
        operator_key: key(2).public_key(),
    };
    assert_ne!(changed.txid(), id);
    let mut changed = tx;
    changed.inputs.swap(0, 1);
    assert_ne!(changed.txid(), id);
}

/// A view whose storage has failed.
struct BrokenView;
impl UtxoView for BrokenView {
    fn get_utxo(&self, _: &OutPoint) -> Result<Option<TxOut>, TypesError> {
        Err(TypesError::ViewUnavailable {
            reason: "disk on fire".to_string(),
        })
    }
}

#[test]
fn a_failing_view_is_reported_not_taken_for_a_missing_input() {
    assert_eq!(
        check_tx(&payment(100, false), &BrokenView, &params()),
        Err(TypesError::ViewUnavailable {
            reason: "disk on fire".to_string()
        })
    );
}

// ---- masternode registration ---------------------------------------------------------------------------

/// Key 0 registers a masternode of `tier` with `collateral`, paying the fee from coin 0.
fn registration(tier: Tier, collateral: Option<OutPoint>, view_input: OutPoint) -> Transaction {
    let k0 = key(0);
    TxBuilder::new(params().chain_id)
        .input(view_input, COIN_VALUE, &k0)
        .output(address(&k0), sat(99_000))
        .kind(TxKind::RegisterMasternode(MasternodeRegistration {
            tier,
            collateral,
            operator_key: key(9).public_key(),
        }))
        .sign()
}

/// The wallet plus a 1,000 TIME coin (`coin(100)`) owned by key 0 and a 1,000 TIME coin (`coin(101)`)
/// owned by key 1.
fn collateral_view() -> HashMap<OutPoint, TxOut> {
    let mut view = wallet_view();
    for (i, owner) in [(100, 0), (101, 1)] {
        view.insert(
            coin(i),
            TxOut {
                amount: Tier::Bronze.collateral(),
                address: address(&key(owner)),
            },
        );
    }
    view
}

fn bad_registration(reason: &str) -> Result<Amount, TypesError> {
    Err(TypesError::BadRegistration {
        reason: reason.to_string(),
    })
}

#[test]
fn a_well_formed_registration_is_accepted() {
    let tx = registration(Tier::Bronze, Some(coin(100)), coin(0));
    assert_eq!(check_tx(&tx, &collateral_view(), &params()), Ok(sat(1_000)));
    let free = registration(Tier::Free, None, coin(0));
    assert_eq!(
        check_tx(&free, &collateral_view(), &params()),
        Ok(sat(1_000))
    );
}

#[test]
fn a_free_masternode_with_collateral_is_rejected() {
    let tx = registration(Tier::Free, Some(coin(100)), coin(0));
    assert_eq!(
        check_tx(&tx, &collateral_view(), &params()),
        bad_registration("free tier takes no collateral")
    );
}

#[test]
fn a_paid_tier_without_collateral_is_rejected() {
    for (tier, text) in [
        (
            Tier::Bronze,
            "bronze tier needs a collateral output of 1000.00000000 TIME",
        ),
        (
            Tier::Silver,
            "silver tier needs a collateral output of 10000.00000000 TIME",
        ),
        (
            Tier::Gold,
            "gold tier needs a collateral output of 100000.00000000 TIME",
        ),
    ] {
        let tx = registration(tier, None, coin(0));
        assert_eq!(
            tx.check(&params()),
            Err(TypesError::BadRegistration {
                reason: text.to_string()
            })
        );
    }
}

#[test]
fn collateral_that_is_not_an_unspent_output_is_rejected() {
    let ghost = coin(150);
    let tx = registration(Tier::Bronze, Some(ghost), coin(0));
    assert_eq!(
        check_tx(&tx, &collateral_view(), &params()),
        bad_registration(&format!("collateral {ghost} is not an unspent output"))
    );
}

#[test]
fn collateral_below_the_tier_is_rejected() {
    let tx = registration(Tier::Silver, Some(coin(100)), coin(0));
    assert_eq!(
        check_tx(&tx, &collateral_view(), &params()),
        bad_registration(
            "collateral holds 1000.00000000 TIME, silver tier needs 10000.00000000 TIME"
        )
    );
}

#[test]
fn collateral_owned_by_someone_else_is_rejected() {
    let tx = registration(Tier::Bronze, Some(coin(101)), coin(0));
    assert_eq!(
        check_tx(&tx, &collateral_view(), &params()),
        bad_registration("collateral is not owned by any input's key")
    );
}

#[test]
fn a_registration_spending_its_own_collateral_is_rejected() {
    let k0 = key(0);
    let tx = TxBuilder::new(params().chain_id)
        .input(coin(100), Tier::Bronze.collateral(), &k0)
        .output(
            address(&k0),
            Tier::Bronze.collateral().checked_sub(sat(1_000)).unwrap(),
        )
        .kind(TxKind::RegisterMasternode(MasternodeRegistration {
            tier: Tier::Bronze,
            collateral: Some(coin(100)),
            operator_key: key(9).public_key(),
        }))
        .sign();
    assert_eq!(
        check_tx(&tx, &collateral_view(), &params()),
        bad_registration("the transaction spends its own collateral")
    );
}

#[test]
fn an_unknown_tier_name_is_rejected() {
    assert_eq!("Silver".parse::<Tier>(), Ok(Tier::Silver));
    assert_eq!(
        "platinum".parse::<Tier>(),
        Err(TypesError::BadRegistration {
            reason: "unknown tier \"platinum\"".to_string()
        })
    );
}

// ---- blocks ---------------------------------------------------------------------------------------------

fn block_of(transactions: Vec<Transaction>) -> WellFormedBlock {
    Block {
        header: BlockHeader {
            chain_id: params().chain_id,
            height: 1,
            view: 0,
            parent: BlockHash(Hash::ZERO),
            timestamp_ms: 0,
            proposer: key(0).public_key(),
            tx_root: Hash::ZERO,
            witness_root: Hash::ZERO,
            utxo_commitment: Hash::ZERO,
            validators_hash: Hash::ZERO,
        },
        transactions,
    }
    .seal()
}

/// Key `owner` spends coin `i` whole, minus `fee`, to key `to`.
fn spend(i: u8, owner: u8, to: u8, fee: u64) -> Transaction {
    let k = key(owner);
    TxBuilder::new(params().chain_id)
        .input(coin(i), COIN_VALUE, &k)
        .output(address(&key(to)), sat(COIN_VALUE.as_sat() - fee))
        .sign()
}

#[test]
fn a_valid_block_returns_its_total_fees() {
    let block = block_of(vec![
        spend(0, 0, 1, 100),
        spend(1, 1, 2, 200),
        spend(2, 2, 0, 300),
    ]);
    assert_eq!(check_block(&block, &wallet_view(), &params()), Ok(sat(600)));
    assert_eq!(
        check_block(&block_of(Vec::new()), &wallet_view(), &params()),
        Ok(Amount::ZERO)
    );
}

#[test]
fn a_block_for_another_chain_is_rejected() {
    let mut block = block_of(vec![spend(0, 0, 1, 100)]).into_block();
    block.header.chain_id = ChainId(1);
    let block = block.seal();
    assert_eq!(
        check_block(&block, &wallet_view(), &params()),
        Err(TypesError::WrongChain {
            expected: 1337,
            found: 1
        })
    );
}

#[test]
fn a_block_whose_root_does_not_match_its_transactions_is_not_well_formed() {
    let mut block = block_of(vec![spend(0, 0, 1, 100), spend(1, 1, 2, 200)]).into_block();
    block.transactions.swap(0, 1);
    assert_eq!(
        WellFormedBlock::check(block),
        Err(TypesError::TxRootMismatch)
    );
    let mut block = block_of(vec![spend(0, 0, 1, 100)]).into_block();
    block.transactions.push(spend(1, 1, 2, 200));
    assert_eq!(
        WellFormedBlock::check(block),
        Err(TypesError::TxRootMismatch)
    );
}

#[test]
fn a_block_whose_signatures_were_swapped_is_not_well_formed_though_its_txids_match() {
    let genuine = block_of(vec![spend(0, 0, 1, 100), spend(1, 1, 2, 200)]);
    let mut swapped = genuine.clone().into_block();
    swapped.transactions[1].inputs[0].signature = Signature::from_bytes([7; 64]);
    // The txids ignore signatures, so the txid root alone cannot tell the bodies apart.
    assert_eq!(swapped.compute_tx_root(), genuine.header.tx_root);
    assert_eq!(swapped.hash(), genuine.hash());
    assert_eq!(
        WellFormedBlock::check(swapped.clone()),
        Err(TypesError::WitnessRootMismatch)
    );
    // Nor does it decode: the wire path runs the same check.
    assert_eq!(
        WellFormedBlock::decode(&swapped.encode()),
        Err(TypesError::WitnessRootMismatch)
    );
    assert_eq!(
        WellFormedBlock::decode(&genuine.encode()).map(|b| b.hash()),
        Ok(genuine.hash())
    );
}

#[test]
fn a_block_over_the_chain_limit_is_rejected() {
    let block = block_of(vec![spend(0, 0, 1, 100), spend(1, 1, 2, 200)]);
    let small_chain = ChainParams {
        max_block_bytes: 400,
        ..params()
    };
    assert_eq!(
        check_block(&block, &wallet_view(), &small_chain),
        Err(TypesError::TooLarge {
            what: "block",
            len: timecoin_types::codec::encoded_len(&block),
            max: 400
        })
    );
}

#[test]
fn two_transactions_spending_one_output_conflict() {
    let block = block_of(vec![
        spend(0, 0, 1, 100),
        spend(1, 1, 2, 100),
        spend(0, 0, 2, 500),
    ]);
    assert_eq!(
        check_block(&block, &wallet_view(), &params()),
        Err(TypesError::ConflictInBlock {
            first: 0,
            second: 2,
            outpoint: coin(0)
        })
    );
}

#[test]
fn a_transaction_spending_one_output_twice_in_a_block_is_a_duplicate_input_not_a_conflict() {
    let k0 = key(0);
    let doubled = TxBuilder::new(params().chain_id)
        .input(coin(0), COIN_VALUE, &k0)
        .input(coin(0), COIN_VALUE, &k0)
        .output(address(&k0), sat(150_000))
        .sign();
    let block = block_of(vec![spend(1, 1, 2, 100), doubled]);
    assert_eq!(
        check_block(&block, &wallet_view(), &params()),
        Err(TypesError::InvalidBlockTx {
            index: 1,
            source: Box::new(TypesError::DuplicateInput {
                index: 1,
                first: 0,
                outpoint: coin(0)
            })
        })
    );
}

#[test]
fn an_invalid_transaction_in_a_block_is_named_with_its_position() {
    let block = block_of(vec![spend(0, 0, 1, 100), spend(1, 2, 2, 100)]);
    assert_eq!(
        check_block(&block, &wallet_view(), &params()),
        Err(TypesError::InvalidBlockTx {
            index: 1,
            source: Box::new(TypesError::KeyMismatch { index: 0 })
        })
    );
    let block = block_of(vec![spend(0, 0, 1, 100), spend(99, 3, 2, 100)]);
    assert_eq!(
        check_block(&block, &wallet_view(), &params()),
        Err(TypesError::InvalidBlockTx {
            index: 1,
            source: Box::new(TypesError::MissingInput {
                index: 0,
                outpoint: coin(99)
            })
        })
    );
}

#[test]
fn a_bad_signature_in_a_block_is_found_after_the_batch_fails() {
    let mut bad = spend(2, 2, 3, 100);
    bad.inputs[0].signature = spend(6, 2, 3, 100).inputs[0].signature;
    let block = block_of(vec![spend(0, 0, 1, 100), spend(1, 1, 2, 100), bad]);
    assert_eq!(
        check_block(&block, &wallet_view(), &params()),
        Err(TypesError::InvalidBlockTx {
            index: 2,
            source: Box::new(TypesError::BadSignature {
                index: 0,
                source: CryptoError::BadSignature
            })
        })
    );
}

#[test]
fn a_block_may_spend_an_output_created_earlier_in_the_same_block() {
    let first = spend(0, 0, 1, 100);
    let k1 = key(1);
    let made = OutPoint {
        txid: first.txid(),
        vout: 0,
    };
    let second = TxBuilder::new(params().chain_id)
        .input(made, sat(99_900), &k1)
        .output(address(&key(2)), sat(99_000))
        .sign();
    let block = block_of(vec![first.clone(), second.clone()]);
    assert_eq!(
        check_block(&block, &wallet_view(), &params()),
        Ok(sat(1_000))
    );

    // The other way round the output does not exist yet.
    let reversed = block_of(vec![second, first]);
    assert_eq!(
        check_block(&reversed, &wallet_view(), &params()),
        Err(TypesError::InvalidBlockTx {
            index: 0,
            source: Box::new(TypesError::MissingInput {
                index: 0,
                outpoint: made
            })
        })
    );

    // Once spent inside the block, it cannot be spent again in the block.
    let third = TxBuilder::new(params().chain_id)
        .input(made, sat(99_900), &k1)
        .output(address(&key(3)), sat(98_000))
        .sign();
    let block = block_of(vec![
        spend(0, 0, 1, 100),
        block.transactions[1].clone(),
        third,
    ]);
    assert_eq!(
        check_block(&block, &wallet_view(), &params()),
        Err(TypesError::ConflictInBlock {
            first: 1,
            second: 2,
            outpoint: made
        })
    );
}

#[test]
fn the_delta_of_a_block_that_repeats_a_transaction_is_refused() {
    let (a, b) = (spend(0, 0, 1, 100), spend(1, 1, 2, 100));
    let block = block_of(vec![a, b.clone(), b.clone()]);
    // The repeated transaction spends its input twice, which is found first.
    assert_eq!(
        block_utxo_delta(&block),
        Err(TypesError::ConflictInBlock {
            first: 1,
            second: 2,
            outpoint: coin(1)
        })
    );
    // A repeated transaction with no inputs is caught by its id.
    let mut free = b;
    free.inputs.clear();
    let block = block_of(vec![free.clone(), free.clone()]);
    assert_eq!(
        block_utxo_delta(&block),
        Err(TypesError::DuplicateTxInBlock {
            first: 0,
            second: 1,
            txid: free.txid()
        })
    );
}

#[test]
fn the_delta_refuses_two_spends_of_an_output_created_earlier_in_the_block() {
    let first = spend(0, 0, 1, 100);
    let made = OutPoint {
        txid: first.txid(),
        vout: 0,
    };
    let k1 = key(1);
    let spend_made = |to: u8| {
        TxBuilder::new(params().chain_id)
            .input(made, sat(99_900), &k1)
            .output(address(&key(to)), sat(99_000))
            .sign()
    };
    let block = block_of(vec![first.clone(), spend_made(2), spend_made(3)]);
    assert_eq!(
        block_utxo_delta(&block),
        Err(TypesError::ConflictInBlock {
            first: 1,
            second: 2,
            outpoint: made
        })
    );
    let fine = block_of(vec![first, spend_made(2)]);
    let delta = block_utxo_delta(&fine).expect("one spend of a fresh output is consistent");
    assert_eq!(delta.spent, vec![coin(0)]);
    assert!(delta.created.iter().all(|(op, _)| *op != made));
}

// ---- the UTXO commitment ------------------------------------------------------------------------------

fn from_scratch(set: &BTreeMap<OutPoint, TxOut>) -> LtHash {
    let mut h = LtHash::new();
    for (op, out) in set {
        h.insert(&utxo_element(op, out));
    }
    h
}

#[test]
fn the_local_genesis_header_commits_to_its_allocations() {
    let genesis = Genesis::local(4);
    let block = genesis.block();
    let set: BTreeMap<_, _> = genesis.utxos().into_iter().collect();
    assert_eq!(set.len(), 4);
    assert_eq!(block.header.utxo_commitment, from_scratch(&set).checksum());
    assert_eq!(block.header.utxo_commitment, genesis.utxo_hash().checksum());
    assert_eq!(block.header.tx_root, merkle_root(&[]));
    assert_eq!(block.header.height, 0);
    assert_eq!(block.header.parent, BlockHash(Hash::ZERO));
    assert_eq!(
        block.header.proposer,
        genesis
            .validators
            .iter()
            .map(|v| v.operator_key)
            .min()
            .unwrap()
    );
    // The allocations are spendable by the validator keys.
    let view: HashMap<_, _> = genesis.utxos().into_iter().collect();
    let (op, out) = genesis.utxos()[2];
    let k2 = Genesis::local_validator_key(2);
    let tx = TxBuilder::new(genesis.params.chain_id)
        .input(op, out.amount, &k2)
        .output(address(&key(0)), out.amount.checked_sub(sat(10)).unwrap())
        .sign();
    assert_eq!(check_tx(&tx, &view, &genesis.params), Ok(sat(10)));
}

/// One transaction to build against the current state: which available outputs to spend, how many
/// outputs to make and to whom, and the fee.
#[derive(Clone, Debug)]
struct TxPlan {
    inputs: Vec<prop::sample::Index>,
    payees: Vec<u8>,
    fee: u64,
}

fn tx_plan() -> impl Strategy<Value = TxPlan> {
    (
        proptest::collection::vec(any::<prop::sample::Index>(), 1..=2),
        proptest::collection::vec(0u8..4, 1..=3),
        1u64..5_000,
    )
        .prop_map(|(inputs, payees, fee)| TxPlan {
            inputs,
            payees,
            fee,
        })
}

/// Builds a valid block from plans, spending from `set` and from outputs made earlier in the block.
fn build_block(
    genesis: &Genesis,
    set: &BTreeMap<OutPoint, TxOut>,
    plans: &[TxPlan],
    height: u64,
) -> WellFormedBlock {
    let keys: Vec<SecretKey> = (0..4).map(Genesis::local_validator_key).collect();
    let owner = |a: &Address| keys.iter().find(|k| address(k) == *a).unwrap();
    let mut available: Vec<(OutPoint, TxOut)> = set.iter().map(|(o, t)| (*o, *t)).collect();
    let mut txs = Vec::new();
    for plan in plans {
        let mut chosen: Vec<(OutPoint, TxOut)> = Vec::new();
        for pick in &plan.inputs {
            if available.is_empty() {
                break;
            }
            chosen.push(available.remove(pick.index(available.len())));
        }
        if chosen.is_empty() {
            break;
        }
        let total: u64 = chosen.iter().map(|(_, o)| o.amount.as_sat()).sum();
        let spendable = total - plan.fee;
        // Keep every output well above dust, however often coins are split.
        let n = (plan.payees.len() as u64).min(spendable / 10_000).max(1);
        let mut b = TxBuilder::new(genesis.params.chain_id);
        for (op, out) in &chosen {
            b = b.input(*op, out.amount, owner(&out.address));
        }
        for (i, payee) in plan.payees.iter().take(n as usize).enumerate() {
            let share = spendable / n + if i == 0 { spendable % n } else { 0 };
            b = b.output(address(&keys[usize::from(*payee)]), sat(share));
        }
        let tx = b.sign();
        let txid = tx.txid();
        available.extend(tx.outputs.iter().enumerate().map(|(v, o)| {
            (
                OutPoint {
                    txid,
                    vout: v as u32,
                },
                *o,
            )
        }));
        txs.push(tx);
    }
    let mut block = genesis.block().into_block();
    block.header.height = height;
    block.transactions = txs;
    block.seal()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Applying each block's delta to the running multiset hash gives the same commitment as hashing the
    /// resulting UTXO set from scratch, and the delta itself describes exactly the resulting set.
    #[test]
    fn incremental_commitment_equals_recomputing_from_scratch(
        blocks in proptest::collection::vec(proptest::collection::vec(tx_plan(), 1..5), 1..6)
    ) {
        let genesis = Genesis::local(4);
        let mut set: BTreeMap<OutPoint, TxOut> = genesis.utxos().into_iter().collect();
        let mut running = genesis.utxo_hash();
        for (height, plans) in blocks.iter().enumerate() {
            let block = build_block(&genesis, &set, plans, height as u64 + 1);
            let view: HashMap<OutPoint, TxOut> = set.iter().map(|(o, t)| (*o, *t)).collect();
            let fees: u64 = plans.iter().take(block.transactions.len()).map(|p| p.fee).sum();
            prop_assert_eq!(check_block(&block, &view, &genesis.params), Ok(sat(fees)));

            let delta = block_utxo_delta(&block).expect("a valid block has a consistent delta");
            let (spent, created) = (delta.spent, delta.created);
            let spent: Vec<(OutPoint, TxOut)> = spent
                .iter()
                .map(|op| (*op, *set.get(op).expect("the delta spends only outputs that existed before the block")))
                .collect();
            apply_to_commitment(&mut running, &spent, &created);

            // The naive way: transaction by transaction.
            let mut naive = set.clone();
            for tx in &block.transactions {
                for input in &tx.inputs {
                    prop_assert!(naive.remove(&input.prevout).is_some());
                }
                let txid = tx.txid();
                for (vout, out) in tx.outputs.iter().enumerate() {
                    naive.insert(OutPoint { txid, vout: vout as u32 }, *out);
                }
            }
            for (op, _) in &spent {
                set.remove(op);
            }
            set.extend(created.iter().copied());
            prop_assert_eq!(&set, &naive);
            prop_assert_eq!(running.checksum(), from_scratch(&naive).checksum());
        }
    }
}

#[test]
fn check_block_with_skips_only_the_signatures_it_is_told_were_verified() {
    let good = spend(0, 0, 1, 100);
    let mut forged = spend(1, 1, 2, 200);
    forged.inputs[0].signature = timecoin_types::Signature::from_bytes([7; 64]);
    let block = block_of(vec![good.clone(), forged.clone()]);
    assert!(check_block(&block, &wallet_view(), &params()).is_err());
    // Told the forged one was verified (a caller's bug or a pool's word), its signature is skipped...
    assert_eq!(
        timecoin_types::check_block_with(&block, &wallet_view(), &params(), None, |tx| *tx
            == forged),
        Ok(sat(300))
    );
    // ...but skipping the good one still catches the forged one, and rules other than signatures run
    // for every transaction.
    assert!(
        timecoin_types::check_block_with(&block, &wallet_view(), &params(), None, |tx| *tx == good)
            .is_err()
    );
    let unknown_coin = block_of(vec![spend(200, 0, 1, 100)]);
    assert!(
        timecoin_types::check_block_with(&unknown_coin, &wallet_view(), &params(), None, |_| true)
            .is_err()
    );
}

fn reward(height: u64, to: u8, amount: u64) -> Transaction {
    Transaction {
        version: timecoin_types::TX_VERSION,
        inputs: Vec::new(),
        outputs: vec![TxOut {
            amount: sat(amount),
            address: address(&key(to)),
        }],
        kind: timecoin_types::TxKind::Reward { height },
    }
}

#[test]
fn a_reward_is_valid_only_first_in_a_block_and_exactly_as_expected() {
    let paid = reward(10, 1, 5_000);
    let block = block_of(vec![paid.clone(), spend(0, 0, 1, 100)]);
    let check = |block: &timecoin_types::WellFormedBlock, expected: Option<&Transaction>| {
        timecoin_types::check_block_with(block, &wallet_view(), &params(), expected, |_| false)
    };
    // As expected: the fees exclude it.
    assert_eq!(check(&block, Some(&paid)), Ok(sat(100)));
    // Not expected, or a different amount, or the plain check (which never expects one): refused.
    assert!(check(&block, None).is_err());
    assert!(check(&block, Some(&reward(10, 1, 5_001))).is_err());
    assert!(check_block(&block, &wallet_view(), &params()).is_err());
    // Expected but missing, or not first.
    let without = block_of(vec![spend(0, 0, 1, 100)]);
    assert!(check(&without, Some(&paid)).is_err());
    let late = block_of(vec![spend(0, 0, 1, 100), paid.clone()]);
    assert!(check(&late, Some(&paid)).is_err());
    // A mempool never takes one, and one with an input is malformed.
    assert!(matches!(
        timecoin_types::check_tx(&paid, &wallet_view(), &params()),
        Err(TypesError::BadReward { .. })
    ));
    let mut with_input = paid;
    with_input
        .inputs
        .push(spend(0, 0, 1, 100).inputs[0].clone());
    assert!(matches!(
        with_input.check(&params()),
        Err(TypesError::BadReward { .. })
    ));
}
