//! A local chain in one process: genesis, signed payments, block validation with the shared rules, and
//! the incremental UTXO commitment. Run: `cargo run -p timecoin-examples --example local_chain`.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;

use timecoin_crypto::{Address, Hash, LtHash};
use timecoin_types::{
    Amount, Block, BlockHeader, Genesis, OutPoint, TxBuilder, TxOut, apply_to_commitment,
    block_utxo_delta, check_block,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let genesis = Genesis::local(4);
    let params = &genesis.params;
    let mut utxos: HashMap<OutPoint, TxOut> = genesis.utxos().into_iter().collect();
    let mut commitment = genesis.utxo_hash();
    let mut parent = genesis.block();
    println!(
        "genesis {} on chain {} ({}), {} validators",
        parent.hash(),
        params.chain_id,
        params.network,
        genesis.validators.len()
    );

    let keys: Vec<_> = (0..4).map(Genesis::local_validator_key).collect();
    let fee = Amount::from_sat(1_000);
    for height in 1..=3u64 {
        // Each validator pays a tenth of one of its coins to the next validator.
        let mut txs = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let me = Address::from_public_key(&key.public_key());
            let Some((op, out)) = utxos
                .iter()
                .filter(|(_, o)| o.address == me)
                .map(|(op, o)| (*op, *o))
                .min_by_key(|(op, _)| *op)
            else {
                continue;
            };
            let next = Address::from_public_key(
                &Genesis::local_validator_key((i + 1) % keys.len()).public_key(),
            );
            let pay = Amount::from_sat(out.amount.as_sat() / 10);
            let change = out
                .amount
                .checked_sub(pay)
                .and_then(|a| a.checked_sub(fee))
                .ok_or("coin too small")?;
            txs.push(
                TxBuilder::new(params.chain_id)
                    .input(op, out.amount, key)
                    .output(next, pay)
                    .output(me, change)
                    .sign(),
            );
        }
        let mut block = Block {
            header: BlockHeader {
                chain_id: params.chain_id,
                height,
                view: 0,
                parent: parent.hash(),
                timestamp_ms: genesis.timestamp_ms + height * 1_000,
                proposer: Genesis::local_validator_key(height as usize % keys.len()).public_key(),
                tx_root: Hash::ZERO,
                witness_root: Hash::ZERO,
                utxo_commitment: Hash::ZERO,
                validators_hash: Hash::ZERO,
            },
            transactions: txs,
        };
        // The header commits to the UTXO set after the block, then sealing commits it to the body.
        let delta = block_utxo_delta(&block)?;
        let spent: Vec<(OutPoint, TxOut)> = delta
            .spent
            .iter()
            .filter_map(|op| utxos.get(op).map(|o| (*op, *o)))
            .collect();
        let created = delta.created;
        let mut after = commitment.clone();
        apply_to_commitment(&mut after, &spent, &created);
        block.header.utxo_commitment = after.checksum();
        let block = block.seal();
        let fees = check_block(&block, &utxos, params)?;
        commitment = after;
        for (op, _) in &spent {
            utxos.remove(op);
        }
        utxos.extend(created.iter().copied());

        // The incremental commitment equals a recomputation over the whole set.
        let mut full = LtHash::new();
        apply_to_commitment(
            &mut full,
            &[],
            &utxos.iter().map(|(o, t)| (*o, *t)).collect::<Vec<_>>(),
        );
        assert_eq!(full.checksum(), block.header.utxo_commitment);

        println!(
            "block {height} {} txs={} fees={} utxos={} commitment={}",
            block.hash(),
            block.transactions.len(),
            fees,
            utxos.len(),
            block.header.utxo_commitment
        );
        parent = block;
    }
    Ok(())
}
