//! The network, control, consensus and masternodes.

use std::sync::Arc;

use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::json;
use timecoin_consensus::{Step, ValidatorSet};
use timecoin_crypto::PublicKey;

use super::shapes::encode_address;
use super::{METHODS, RpcResult, State, status};
use crate::rpc::errors::{codes, node_error, rpc_error};
use crate::rpc::params::Args;

async fn connections(state: &State) -> Result<(usize, usize, usize), ErrorObjectOwned> {
    match &state.context.peers {
        Some(peers) => {
            let c = peers.counts();
            Ok((c.inbound + c.outbound, c.inbound, c.outbound))
        }
        None => {
            let peers = status(state).await?.peers;
            Ok((peers, 0, 0))
        }
    }
}

pub(super) async fn getpeerinfo(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    let peers = state
        .context
        .peers
        .as_ref()
        .map(|p| p.peers())
        .unwrap_or_default();
    Ok(json!(
        peers
            .iter()
            .map(|p| json!({ "id": p.id, "banscore": p.score }))
            .collect::<Vec<_>>()
    ))
}

pub(super) async fn getnetworkinfo(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    let (total, inbound, outbound) = connections(&state).await?;
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "subversion": concat!("/timecoin:", env!("CARGO_PKG_VERSION"), "/"),
        "network": state.context.genesis.params.network.to_string(),
        "networkactive": true,
        "connections": total,
        "connections_in": inbound,
        "connections_out": outbound,
        "relayfee_sat": state.context.genesis.params.min_tx_fee.as_sat(),
        "warnings": if state.context.peers.is_none() { vec!["no network attached: counts are the engine's view"] } else { Vec::new() },
    }))
}

pub(super) async fn getconnectioncount(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    Ok(json!(connections(&state).await?.0))
}

pub(super) async fn uptime(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    Ok(json!(state.node.loop_stats().started().elapsed().as_secs()))
}

pub(super) async fn stop(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    tracing::info!("stop requested over rpc");
    state.stop.send_replace(true);
    Ok(json!("TimeCoin server stopping"))
}

pub(super) async fn help(params: Params<'static>, _state: State) -> RpcResult {
    let args = Args::parse(&params, 1)?;
    match args.optional::<String>(0, "command")? {
        None => Ok(json!(
            METHODS
                .iter()
                .map(|(name, params, _)| format!("{name} {params}").trim_end().to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )),
        Some(command) => METHODS
            .iter()
            .find(|(name, _, _)| *name == command)
            .map(|(name, params, what)| json!(format!("{name} {params}\n\n{what}")))
            .ok_or_else(|| {
                rpc_error(
                    codes::INVALID_PARAMETER,
                    format!(
                        "help: unknown command: {}",
                        command.chars().take(64).collect::<String>()
                    ),
                )
            }),
    }
}

pub(super) async fn getconsensusinfo(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    let info = state
        .node
        .query(|node| {
            let engine = node.engine();
            let core = engine.core();
            let round = core.round_state().map(|r| (r.height, r.view, r.step));
            let set = core
                .validators()
                .cloned()
                .unwrap_or_else(|| engine.registry().current());
            let leader = round.map(|(h, v, _)| *set.leader(h, v));
            (
                engine.finalized_height(),
                round,
                set,
                leader,
                engine.public_key(),
            )
        })
        .await
        .map_err(node_error)?;
    let (height, round, set, leader, me) = info;
    let total = set.total_weight();
    // The least weight w with 3w > 2·total.
    let quorum = total.saturating_mul(2) / 3 + 1;
    let phase = round.map(|(_, _, step)| match step {
        Step::PrePrepare => "preprepare",
        Step::Prepare => "prepare",
        Step::Commit => "commit",
        Step::Finalized => "finalized",
    });
    let stats = state.node.loop_stats();
    Ok(json!({
        "height": height,
        "deciding": round.map(|(h, _, _)| h),
        "view": round.map(|(_, v, _)| v),
        "phase": phase,
        "leader": leader.map(|k| k.to_hex()),
        "validators": set.len(),
        "total_weight": total,
        "quorum_weight": quorum,
        "validator": set.contains(&me),
        "operator_key": me.to_hex(),
        "view_changes": stats.view_changes(),
        "last_finality_latency_ms": stats.last_finality_latency().map(|d| d.as_secs_f64() * 1000.0),
    }))
}

async fn current_set(state: &State) -> Result<(Arc<ValidatorSet>, PublicKey), ErrorObjectOwned> {
    state
        .node
        .query(|node| {
            (
                node.engine().registry().current(),
                node.engine().public_key(),
            )
        })
        .await
        .map_err(node_error)
}

pub(super) async fn masternodelist(params: Params<'static>, state: State) -> RpcResult {
    Args::parse(&params, 0)?;
    let (set, _) = current_set(&state).await?;
    Ok(json!(
        set.members()
            .iter()
            .map(|v| json!({
                "operator_key": v.key.to_hex(),
                "tier": v.tier.name(),
                "weight": v.weight(),
                "owner": encode_address(&state, &v.owner),
                "collateral": v.collateral.map(|c| c.to_string()),
            }))
            .collect::<Vec<_>>()
    ))
}

pub(super) async fn masternodestatus(params: Params<'static>, state: State) -> RpcResult {
    let args = Args::parse(&params, 1)?;
    let asked = args
        .optional::<String>(0, "operator_key")?
        .map(|k| {
            PublicKey::from_hex(&k).map_err(|_| {
                rpc_error(
                    codes::INVALID_PARAMETER,
                    "operator_key must be 64 hex characters of a public key",
                )
            })
        })
        .transpose()?;
    let (set, me) = current_set(&state).await?;
    let key = asked.unwrap_or(me);
    Ok(match set.get(&key) {
        Some(v) => json!({
            "operator_key": key.to_hex(),
            "status": "active",
            "tier": v.tier.name(),
            "weight": v.weight(),
            "share": v.weight() as f64 / set.total_weight().max(1) as f64,
            "owner": encode_address(&state, &v.owner),
            "collateral": v.collateral.map(|c| c.to_string()),
        }),
        None => {
            json!({ "operator_key": key.to_hex(), "status": "not in the current validator set" })
        }
    })
}
