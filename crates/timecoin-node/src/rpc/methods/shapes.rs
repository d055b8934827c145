//! The JSON shapes of amounts, addresses, transactions and headers.

use serde_json::{Value, json};
use timecoin_crypto::Address;
use timecoin_types::{Amount, BlockHash, BlockHeader, Height, Transaction, TxKind, TxOut};

use super::State;

pub(super) fn amount_json(amount: Amount) -> Value {
    json!(format!(
        "{}.{:08}",
        amount.as_sat() / timecoin_types::COIN,
        amount.as_sat() % timecoin_types::COIN
    ))
}

pub(super) fn encode_address(state: &State, address: &Address) -> String {
    address.encode(state.context.genesis.params.network)
}

pub(super) fn output_json(state: &State, n: usize, out: &TxOut) -> Value {
    json!({
        "n": n,
        "value": amount_json(out.amount),
        "value_sat": out.amount.as_sat(),
        "address": encode_address(state, &out.address),
    })
}

pub(super) fn kind_json(kind: &TxKind) -> Value {
    match kind {
        TxKind::Transfer => json!({ "type": "transfer" }),
        TxKind::RegisterMasternode(reg) => json!({
            "type": "register_masternode",
            "tier": reg.tier.name(),
            "operator_key": reg.operator_key.to_hex(),
            "collateral": reg.collateral.map(|c| c.to_string()),
        }),
        TxKind::DeregisterMasternode { operator_key } => json!({
            "type": "deregister_masternode",
            "operator_key": operator_key.to_hex(),
        }),
        TxKind::Reward { height } => json!({ "type": "reward", "height": height }),
    }
}

pub(super) fn tx_json(state: &State, tx: &Transaction) -> Value {
    let txid = tx.txid();
    json!({
        "txid": txid.to_string(),
        "hash": tx.witness_hash(&txid).to_hex(),
        "version": tx.version,
        "size": tx.encoded_len(),
        "kind": kind_json(&tx.kind),
        "vin": tx.inputs.iter().map(|i| json!({
            "txid": i.prevout.txid.to_string(),
            "vout": i.prevout.vout,
            "public_key": i.public_key.to_hex(),
            "signature": hex::encode(i.signature.as_bytes()),
        })).collect::<Vec<_>>(),
        "vout": tx.outputs.iter().enumerate().map(|(n, o)| output_json(state, n, o)).collect::<Vec<_>>(),
    })
}

pub(super) fn header_json(
    header: &BlockHeader,
    tip: Height,
    next: Option<BlockHash>,
    ntx: Option<usize>,
) -> Value {
    let mut v = json!({
        "hash": header.hash().to_string(),
        "confirmations": tip.saturating_sub(header.height).saturating_add(1),
        "height": header.height,
        "view": header.view,
        "chain_id": header.chain_id.0,
        "time": header.timestamp_ms / 1000,
        "timestamp_ms": header.timestamp_ms,
        "proposer": header.proposer.to_hex(),
        "merkleroot": header.tx_root.to_hex(),
        "witnessroot": header.witness_root.to_hex(),
        "utxocommitment": header.utxo_commitment.to_hex(),
        "validatorshash": header.validators_hash.to_hex(),
    });
    // A pruned block's header does not say how many transactions its body had.
    if let (Some(ntx), Some(map)) = (ntx, v.as_object_mut()) {
        map.insert("nTx".into(), json!(ntx));
    }
    if header.height > 0
        && let Some(map) = v.as_object_mut()
    {
        map.insert("previousblockhash".into(), json!(header.parent.to_string()));
    }
    if let (Some(next), Some(map)) = (next, v.as_object_mut()) {
        map.insert("nextblockhash".into(), json!(next.to_string()));
    }
    v
}
