//! Writes a seed corpus of valid encodings to `fuzz/corpus/<target>/`, so a short fuzzing run starts from
//! the real shapes instead of having to discover valid public keys and nested lists byte by byte.
//!
//! Run from the repository root: `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.

use std::path::Path;

use timecoin_types::{
    Address, Amount, Block, CommitCertificate, Genesis, MasternodeRegistration, Proposal, Tier,
    TxBuilder, TxKind, Vote, VotePhase, Wire,
};

fn write<T: Wire>(target: &str, values: &[T]) -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir)?;
    for (i, value) in values.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), value.encode())?;
    }
    println!("{target}: {} seeds in {}", values.len(), dir.display());
    Ok(())
}

fn main() -> std::io::Result<()> {
    let genesis = Genesis::local(4);
    let chain = genesis.params.chain_id;
    let keys: Vec<_> = (0..4).map(Genesis::local_validator_key).collect();
    let utxos = genesis.utxos();
    let to = |i: usize| Address::from_public_key(&keys[i].public_key());
    let sat = Amount::from_sat;

    let pay = TxBuilder::new(chain)
        .input(utxos[0].0, utxos[0].1.amount, &keys[0])
        .output(to(1), sat(500_000))
        .output(to(0), sat(utxos[0].1.amount.as_sat() - 501_000))
        .sign();
    let two_in = TxBuilder::new(chain)
        .input(utxos[1].0, utxos[1].1.amount, &keys[1])
        .input(utxos[2].0, utxos[2].1.amount, &keys[2])
        .output(to(3), sat(7_000))
        .sign();
    let register = TxBuilder::new(chain)
        .input(utxos[3].0, utxos[3].1.amount, &keys[3])
        .output(to(3), sat(1_000_000))
        .kind(TxKind::RegisterMasternode(MasternodeRegistration {
            tier: Tier::Bronze,
            collateral: Some(utxos[0].0),
            operator_key: keys[2].public_key(),
        }))
        .sign();
    let deregister = TxBuilder::new(chain)
        .input(utxos[3].0, utxos[3].1.amount, &keys[3])
        .output(to(3), sat(1_000_000))
        .kind(TxKind::DeregisterMasternode {
            operator_key: keys[2].public_key(),
        })
        .sign();
    let txs = vec![pay, two_in, register, deregister];

    let empty = genesis.block();
    let mut full = genesis.block().into_block();
    full.header.height = 1;
    full.header.parent = empty.hash();
    full.transactions = txs.clone();
    let full = full.seal();
    let blocks: Vec<Block> = vec![empty.block().clone(), full.block().clone()];

    let votes: Vec<Vote> = vec![
        Vote::sign(&keys[0], chain, VotePhase::Prepare, 1, 0, Some(full.hash())),
        Vote::sign(&keys[1], chain, VotePhase::Commit, 1, 3, None),
    ];
    let proposals = vec![
        Proposal::sign(&keys[0], chain, 1, 0, None, full.clone()),
        Proposal::sign(&keys[1], chain, 1, 2, Some(1), empty.clone()),
    ];
    let certificate = CommitCertificate {
        height: 1,
        view: 0,
        block_hash: full.hash(),
        signatures: keys
            .iter()
            .map(|k| {
                let v = Vote::sign(k, chain, VotePhase::Commit, 1, 0, Some(full.hash()));
                (v.voter, v.signature)
            })
            .collect(),
    };

    write("transaction", &txs)?;
    write("block", &blocks)?;
    write("block_header", &[empty.header.clone(), full.header.clone()])?;
    write("vote", &votes)?;
    write("proposal", &proposals)?;
    write("commit_certificate", &[certificate])?;
    write("genesis", &[genesis, Genesis::local(1)])?;
    Ok(())
}
