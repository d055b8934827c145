//! `time-cli loadgen`: signed transfers at a fixed rate, each tracked to finality.
//!
//! 1. Split: the sender's funds become `coins` outputs of `coin_value` (one transaction of up to 999
//!    outputs, or a first transaction making parents that each split into 999), all final before the
//!    run, so no transfer waits on another.
//! 2. Send: `workers` threads share one schedule (slot `i` is due at `start + i / rate`); each takes a
//!    ready coin, pays it back to the sender less the fee (one input, one output), and submits it,
//!    spreading the slots over every `--rpc` node.
//! 3. Track: one thread follows the first node's finalized blocks (`getblockcount`, then `getblock`)
//!    and times each of our transactions from its submission to the poll that saw its block. A final
//!    transaction's output goes back to the ready coins, so a run longer than the split lasts recycles.
//!
//! Bounds: the ready-coin queue holds at most `coins` entries, and the in-flight table at most `coins`
//! (every in-flight transaction holds a coin), so memory does not grow with the rate or the duration.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use crate::output::at;
use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{Value, json};
use timecoin_crypto::{Address, SecretKey};
use timecoin_types::{Amount, MAX_TX_OUTPUTS, OutPoint, TxBuilder, TxId, TxOut, Wire};

use crate::exit::Failure;
use crate::output;
use crate::payment::{self, Coin, FeePolicy};
use crate::rpc::{MAX_BATCH, RpcClient, RpcError};
use crate::wallet::{self, ChainInfo};

/// Highest `--rate`, tx/s.
pub const MAX_RATE: u64 = 100_000;
/// Longest `--duration`, s.
pub const MAX_DURATION_SECS: u64 = 3_600;
/// Most coins a split makes (and so the bound of the ready queue and the in-flight table).
pub const MAX_COINS: usize = 100_000;
/// Coins made by default: this many seconds of transfers, so that the first coins are final and
/// recycled before the split runs out.
pub const DEFAULT_COIN_SECONDS: u64 = 4;
/// Outputs per split transaction: the protocol's maximum less one for change.
const SPLIT_OUTPUTS: usize = MAX_TX_OUTPUTS - 1;
/// How often the tracker asks for the tip: the resolution of the latency figures.
const TRACK_POLL: Duration = Duration::from_millis(2);
/// The longest latency recorded (an hour, in µs); longer ones saturate.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// How long a split transaction may take to become final.
const SPLIT_TIMEOUT: Duration = Duration::from_secs(120);

/// What `loadgen` was asked.
#[derive(Clone, Debug)]
pub struct LoadArgs {
    /// Transfers per second.
    pub rate: u64,
    /// How long to send.
    pub duration: Duration,
    /// The funded key.
    pub from: PathBuf,
    /// Coins to split into (default: [`DEFAULT_COIN_SECONDS`] of transfers).
    pub coins: Option<usize>,
    /// Value of each split coin.
    pub coin_value: Amount,
    /// The fee of each transfer and split.
    pub fee: FeePolicy,
    /// Sending threads.
    pub workers: usize,
    /// How long to wait after sending for the last transactions to become final.
    pub settle: Duration,
}

/// What a run did: the report printed at the end.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadReport {
    /// Transfers the run was to send (`rate × duration`).
    pub scheduled: u64,
    /// Accepted by a node.
    pub submitted: u64,
    /// Seen final.
    pub finalized: u64,
    /// Refused by a node (a JSON-RPC error).
    pub rejected: u64,
    /// Failed in transport (the node did not answer).
    pub errors: u64,
    /// Slots skipped because no coin was ready (every coin in flight, or spent down to dust).
    pub skipped: u64,
    /// Submitted but not seen final by the end of the settle time.
    pub pending: u64,
    /// Seconds spent sending.
    pub send_secs: f64,
    /// Transfers submitted per second of sending.
    pub submitted_per_sec: f64,
    /// Transfers finalized per second, from the first submission to the last finalization seen.
    pub finalized_per_sec: f64,
    /// Finality latency, ms.
    pub latency_ms: Latency,
    /// The first rejection's message, if any.
    pub first_rejection: Option<String>,
    /// Coins the split made.
    pub coins: usize,
}

/// Latency percentiles, ms.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Shared counters of a run.
#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    finalized: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    /// The first rejection's message, kept for the report (one string, so bounded).
    first_rejection: Mutex<Option<String>>,
}

/// A transfer on its way: when it was submitted, and the coin it makes.
struct InFlight {
    sent: Instant,
    output: Coin,
}

/// Runs the load and prints the report.
pub fn run(clients: &[RpcClient], args: &LoadArgs, as_json: bool) -> Result<()> {
    if !(1..=MAX_RATE).contains(&args.rate) {
        return Err(Failure::Usage.wrap(format!("--rate must be in 1..={MAX_RATE}")));
    }
    if args.duration.is_zero() || args.duration.as_secs() > MAX_DURATION_SECS {
        return Err(Failure::Usage.wrap(format!(
            "--duration must be in (0, {MAX_DURATION_SECS}] seconds"
        )));
    }
    let first = clients.first().context("no node to talk to")?;
    let key = wallet::load_key(&args.from)?;
    let chain = wallet::chain_info(first)?;
    let scheduled = (args.rate as f64 * args.duration.as_secs_f64()).ceil() as u64;
    let wanted = args.coins.unwrap_or_else(|| {
        usize::try_from(scheduled.min(args.rate * DEFAULT_COIN_SECONDS)).unwrap_or(MAX_COINS)
    });
    if !(1..=MAX_COINS).contains(&wanted) {
        return Err(Failure::Usage.wrap(format!("--coins must be in 1..={MAX_COINS}")));
    }
    let me = Address::from_public_key(&key.public_key());
    let transfer_fee = transfer_fee(&key, &chain, args.fee);
    let floor = chain
        .params
        .min_dust
        .checked_add(transfer_fee)
        .unwrap_or(Amount::MAX);
    if args.coin_value < floor {
        return Err(Failure::Usage.wrap(format!(
            "--coin-value must be at least {} TIME (dust plus one transfer's fee)",
            payment::format_amount(floor)
        )));
    }

    let spinner = progress(as_json, None);
    spinner.set_message(format!("splitting into {wanted} coins"));
    let coins = split(first, &key, &chain, me, wanted, args.coin_value, args.fee)?;
    spinner.finish_and_clear();

    let report = send_and_track(
        clients,
        &key,
        &chain,
        me,
        coins,
        transfer_fee,
        args,
        scheduled,
        as_json,
    )?;
    print_report(&report, as_json)
}

/// The fee of one 1-input, 1-output transfer under `policy`.
fn transfer_fee(key: &SecretKey, chain: &ChainInfo, policy: FeePolicy) -> Amount {
    let me = Address::from_public_key(&key.public_key());
    let sample = TxBuilder::new(chain.chain_id)
        .input(OutPoint::default(), Amount::from_sat(u64::MAX / 2), key)
        .output(me, Amount::from_sat(u64::MAX / 2))
        .sign();
    policy.fee_for(sample.encoded_len(), &chain.params)
}

fn submit(client: &RpcClient, tx: &timecoin_types::Transaction) -> Result<(), RpcError> {
    client
        .call("sendrawtransaction", json!([hex::encode(tx.encode())]))
        .map(|_| ())
}

/// Makes `count` coins of `value` owned by `me`, all final; returns them.
fn split(
    rpc: &RpcClient,
    key: &SecretKey,
    chain: &ChainInfo,
    me: Address,
    count: usize,
    value: Amount,
    fee: FeePolicy,
) -> Result<Vec<Coin>> {
    let funds = wallet::list_coins(rpc, &me.encode(chain.network))?;
    let pay = |n: usize, each: Amount| {
        vec![
            TxOut {
                address: me,
                amount: each
            };
            n
        ]
    };
    // The fee a child split of `n` outputs pays: generous (each output encodes in under 48 bytes), so a
    // parent always covers its child.
    let child_fee = |n: usize| fee.fee_for(256 + 48 * n, &chain.params);
    let sizes: Vec<usize> = (0..count.div_ceil(SPLIT_OUTPUTS))
        .map(|i| (count - i * SPLIT_OUTPUTS).min(SPLIT_OUTPUTS))
        .collect();
    if let [only] = sizes.as_slice() {
        let p = payment::build_payment(
            key,
            chain.chain_id,
            &chain.params,
            &funds,
            &pay(*only, value),
            me,
            fee,
        )
        .context("splitting the funds")?;
        submit(rpc, &p.tx).context("submitting the split")?;
        wallet::wait_for(rpc, &p.tx.txid().to_string(), SPLIT_TIMEOUT)?;
        return Ok(outputs_of(p.tx.txid(), *only, value));
    }
    let parents: Vec<TxOut> = sizes
        .iter()
        .map(|n| {
            let each = value.as_sat().saturating_mul(*n as u64);
            TxOut {
                address: me,
                amount: Amount::from_sat(each.saturating_add(child_fee(*n).as_sat())),
            }
        })
        .collect();
    let top = payment::build_payment(
        key,
        chain.chain_id,
        &chain.params,
        &funds,
        &parents,
        me,
        fee,
    )
    .context("splitting the funds")?;
    submit(rpc, &top.tx).context("submitting the split")?;
    wallet::wait_for(rpc, &top.tx.txid().to_string(), SPLIT_TIMEOUT)?;
    let mut children = Vec::with_capacity(sizes.len());
    for (vout, (n, parent)) in sizes.iter().zip(&parents).enumerate() {
        let coin = Coin {
            outpoint: OutPoint {
                txid: top.tx.txid(),
                vout: u32::try_from(vout).context("too many parents")?,
            },
            amount: parent.amount,
        };
        let child = payment::build_payment(
            key,
            chain.chain_id,
            &chain.params,
            &[coin],
            &pay(*n, value),
            me,
            fee,
        )
        .context("splitting a parent coin")?;
        submit(rpc, &child.tx).context("submitting a split")?;
        children.push((child.tx.txid(), *n));
    }
    let mut coins = Vec::with_capacity(count);
    for (txid, n) in children {
        wallet::wait_for(rpc, &txid.to_string(), SPLIT_TIMEOUT)?;
        coins.extend(outputs_of(txid, n, value));
    }
    Ok(coins)
}

fn outputs_of(txid: TxId, n: usize, value: Amount) -> Vec<Coin> {
    (0..n)
        .filter_map(|i| u32::try_from(i).ok())
        .map(|vout| Coin {
            outpoint: OutPoint { txid, vout },
            amount: value,
        })
        .collect()
}

fn progress(as_json: bool, len: Option<u64>) -> ProgressBar {
    if as_json {
        return ProgressBar::hidden();
    }
    match len {
        Some(n) => {
            let bar = ProgressBar::new(n);
            if let Ok(style) = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} sent · {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        }
        None => {
            let spinner = ProgressBar::new_spinner();
            spinner.enable_steady_tick(Duration::from_millis(120));
            spinner
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn send_and_track(
    clients: &[RpcClient],
    key: &SecretKey,
    chain: &ChainInfo,
    me: Address,
    coins: Vec<Coin>,
    fee: Amount,
    args: &LoadArgs,
    scheduled: u64,
    as_json: bool,
) -> Result<LoadReport> {
    let coin_count = coins.len();
    let (ready_tx, ready_rx) = sync_channel::<Coin>(coin_count);
    for coin in coins {
        // The queue was sized for every coin, so this never finds it full.
        let _ = ready_tx.try_send(coin);
    }
    let ready_rx = Mutex::new(ready_rx);
    let inflight: Mutex<HashMap<TxId, InFlight>> = Mutex::new(HashMap::with_capacity(coin_count));
    let counters = Counters::default();
    let next_slot = AtomicU64::new(0);
    let sending = AtomicBool::new(true);
    let bar = progress(as_json, Some(scheduled));
    let mut latency = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)
        .context("creating the latency histogram")?;
    let tracker_hist = latency.clone();
    let start = Instant::now();
    let tip = wallet::chain_info(clients.first().context("no node")?)?.height;
    let mut last_final = start;
    let mut send_secs = 0.0;

    let sender = Sender {
        clients,
        key,
        chain,
        me,
        fee,
        rate: args.rate,
        scheduled,
        start,
        next_slot: &next_slot,
        ready_rx: &ready_rx,
        ready_tx: &ready_tx,
        inflight: &inflight,
        counters: &counters,
        bar: &bar,
    };
    let sender = &sender;
    std::thread::scope(|scope| -> Result<()> {
        let tracker = scope.spawn(|| {
            track(
                tracker_hist,
                clients.first(),
                tip,
                &inflight,
                &ready_tx,
                &counters,
                &sending,
                args.settle,
                &bar,
            )
        });
        let workers: Vec<_> = (0..args.workers.max(1))
            .map(|_| scope.spawn(move || sender.run()))
            .collect();
        for w in workers {
            let _ = w.join();
        }
        send_secs = start.elapsed().as_secs_f64();
        sending.store(false, Ordering::SeqCst);
        bar.set_message(format!(
            "sent; waiting up to {} s for the last to finalize",
            args.settle.as_secs()
        ));
        let (hist, last) = tracker
            .join()
            .map_err(|_| anyhow::anyhow!("the tracker thread failed"))?;
        latency = hist;
        last_final = last;
        Ok(())
    })?;
    bar.finish_and_clear();

    let finalized = counters.finalized.load(Ordering::SeqCst);
    let submitted = counters.submitted.load(Ordering::SeqCst);
    let span = last_final.duration_since(start).as_secs_f64();
    let pending = inflight.lock().map(|m| m.len() as u64).unwrap_or(0);
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(LoadReport {
        scheduled,
        submitted,
        finalized,
        rejected: counters.rejected.load(Ordering::SeqCst),
        errors: counters.errors.load(Ordering::SeqCst),
        skipped: counters.skipped.load(Ordering::SeqCst),
        pending,
        send_secs,
        submitted_per_sec: if send_secs > 0.0 {
            submitted as f64 / send_secs
        } else {
            0.0
        },
        finalized_per_sec: if span > 0.0 {
            finalized as f64 / span
        } else {
            0.0
        },
        latency_ms: Latency {
            p50: ms(latency.value_at_quantile(0.50)),
            p90: ms(latency.value_at_quantile(0.90)),
            p99: ms(latency.value_at_quantile(0.99)),
            max: ms(latency.max()),
        },
        first_rejection: counters.first_rejection.lock().ok().and_then(|r| r.clone()),
        coins: coin_count,
    })
}

/// What a sending thread shares with the others.
struct Sender<'a> {
    clients: &'a [RpcClient],
    key: &'a SecretKey,
    chain: &'a ChainInfo,
    me: Address,
    fee: Amount,
    rate: u64,
    scheduled: u64,
    start: Instant,
    next_slot: &'a AtomicU64,
    ready_rx: &'a Mutex<Receiver<Coin>>,
    ready_tx: &'a SyncSender<Coin>,
    inflight: &'a Mutex<HashMap<TxId, InFlight>>,
    counters: &'a Counters,
    bar: &'a ProgressBar,
}

impl Sender<'_> {
    fn due(&self, slot: u64) -> Instant {
        self.start + Duration::from_secs_f64(slot as f64 / self.rate as f64)
    }

    /// Takes slots until the schedule is done. Slots already due when a thread wakes go out together
    /// in one batch request (at most [`MAX_BATCH`]): at a high rate that saves an HTTP round trip per
    /// transfer on both sides; at a low rate each slot goes alone, on time.
    fn run(&self) {
        loop {
            let first = self.next_slot.fetch_add(1, Ordering::SeqCst);
            if first >= self.scheduled {
                return;
            }
            let due = self.due(first);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let mut slots = 1;
            while slots < MAX_BATCH {
                let next = self.next_slot.load(Ordering::SeqCst);
                if next >= self.scheduled || self.due(next) > Instant::now() {
                    break;
                }
                if self
                    .next_slot
                    .compare_exchange(next, next + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    slots += 1;
                }
            }
            self.bar.inc(slots as u64);
            let transfers: Vec<(TxId, Coin, Value)> =
                (0..slots).filter_map(|_| self.transfer()).collect();
            if transfers.is_empty() {
                continue;
            }
            let client_index =
                usize::try_from(first % self.clients.len().max(1) as u64).unwrap_or(0);
            let Some(client) = self.clients.get(client_index) else {
                return;
            };
            let params: Vec<Value> = transfers.iter().map(|(_, _, p)| p.clone()).collect();
            match client.batch("sendrawtransaction", &params) {
                Ok(answers) => {
                    for ((txid, coin, _), answer) in transfers.into_iter().zip(answers) {
                        match answer {
                            Ok(_) => {
                                self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => self.refused(txid, coin, &e),
                        }
                    }
                }
                Err(e) => {
                    for (txid, coin, _) in transfers {
                        self.refused(txid, coin, &e);
                    }
                }
            }
        }
    }

    /// Signs a transfer of the next ready coin back to the sender and registers it in flight, or
    /// counts the slot as skipped when no coin is ready.
    fn transfer(&self) -> Option<(TxId, Coin, Value)> {
        let coin = self.ready_rx.lock().ok().and_then(|rx| rx.try_recv().ok());
        let Some(coin) = coin else {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let Some(back) = coin
            .amount
            .checked_sub(self.fee)
            .filter(|a| *a >= self.chain.params.min_dust)
        else {
            // Spent down to dust by fees: retire it, and the slot goes unused.
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let tx = TxBuilder::new(self.chain.chain_id)
            .input(coin.outpoint, coin.amount, self.key)
            .output(self.me, back)
            .sign();
        let txid = tx.txid();
        // Registered before submitting, so a block that lands before the answer still counts it.
        if let Ok(mut map) = self.inflight.lock() {
            map.insert(
                txid,
                InFlight {
                    sent: Instant::now(),
                    output: Coin {
                        outpoint: OutPoint { txid, vout: 0 },
                        amount: back,
                    },
                },
            );
        }
        Some((txid, coin, json!([hex::encode(tx.encode())])))
    }

    /// Books a transfer the node did not take.
    fn refused(&self, txid: TxId, coin: Coin, e: &RpcError) {
        if let Ok(mut map) = self.inflight.lock() {
            map.remove(&txid);
        }
        match e {
            RpcError::Node { code, .. } => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.counters.first_rejection.lock()
                    && first.is_none()
                {
                    *first = Some(e.to_string());
                }
                // A refusal for the pool's state (full, warming up) leaves the coin unspent; one for
                // the coin itself retires it.
                if matches!(code, -26 | -28 | -1) {
                    let _ = self.ready_tx.try_send(coin);
                }
            }
            _ => {
                // The node may hold it even though the answer was lost: retire the coin rather than
                // risk a conflict.
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Follows finalized blocks until sending has stopped and every transfer is final or `settle` has
/// passed. Returns the latency histogram and when the last transfer was seen final.
#[allow(clippy::too_many_arguments)]
fn track(
    mut hist: Histogram<u64>,
    client: Option<&RpcClient>,
    mut seen: u64,
    inflight: &Mutex<HashMap<TxId, InFlight>>,
    ready: &SyncSender<Coin>,
    counters: &Counters,
    sending: &AtomicBool,
    settle: Duration,
    bar: &ProgressBar,
) -> (Histogram<u64>, Instant) {
    let mut last_final = Instant::now();
    let Some(client) = client else {
        return (hist, last_final);
    };
    let mut settle_deadline: Option<Instant> = None;
    loop {
        if !sending.load(Ordering::SeqCst) {
            let deadline = *settle_deadline.get_or_insert_with(|| Instant::now() + settle);
            let empty = inflight.lock().map(|m| m.is_empty()).unwrap_or(true);
            if empty || Instant::now() >= deadline {
                return (hist, last_final);
            }
        }
        let tip = match client.call("getblockcount", json!([])) {
            Ok(v) => v.as_u64().unwrap_or(seen),
            Err(_) => {
                std::thread::sleep(TRACK_POLL);
                continue;
            }
        };
        while seen < tip {
            // Blocks come in batches: a node under light load finalizes a block per transaction or
            // two, faster than one request per block could follow.
            let count = (tip - seen).min(MAX_BATCH as u64);
            let Ok(blocks) = blocks_txids(client, seen + 1, count) else {
                break;
            };
            let now = Instant::now();
            let mut done = Vec::new();
            if let Ok(mut map) = inflight.lock() {
                for txid in blocks.iter().flatten() {
                    if let Some(f) = map.remove(txid) {
                        done.push(f);
                    }
                }
            }
            for f in done {
                let us = u64::try_from(now.duration_since(f.sent).as_micros()).unwrap_or(u64::MAX);
                let _ = hist.record(us.clamp(1, MAX_LATENCY_US));
                counters.finalized.fetch_add(1, Ordering::Relaxed);
                last_final = now;
                if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                    ready.try_send(f.output)
                {
                    // Cannot happen (the queue holds every coin); the coin is simply not reused.
                }
            }
            seen += blocks.len() as u64;
            bar.set_message(format!(
                "{} final · {} rejected · height {seen}",
                counters.finalized.load(Ordering::Relaxed),
                counters.rejected.load(Ordering::Relaxed)
            ));
            if blocks.len() as u64 != count {
                break;
            }
        }
        std::thread::sleep(TRACK_POLL);
    }
}

/// The txids of the `count` blocks from height `from`, in two batch requests; stops at the first
/// block that could not be read (so the result may be shorter, never out of order).
fn blocks_txids(client: &RpcClient, from: u64, count: u64) -> Result<Vec<Vec<TxId>>, RpcError> {
    let heights: Vec<Value> = (from..from + count).map(|h| json!([h])).collect();
    let hashes: Vec<Value> = client
        .batch("getblockhash", &heights)?
        .into_iter()
        .map_while(Result::ok)
        .map(|hash| json!([hash, 1]))
        .collect();
    Ok(client
        .batch("getblock", &hashes)?
        .into_iter()
        .map_while(Result::ok)
        .map(|block| {
            at(&block, "tx")
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|t| t.as_str().and_then(|t| wallet::parse_txid(t).ok()))
                .collect()
        })
        .collect())
}

fn print_report(r: &LoadReport, as_json: bool) -> Result<()> {
    let value = serde_json::to_value(r)?;
    let l = &r.latency_ms;
    output::either(
        as_json,
        &value,
        &[
            ("scheduled", r.scheduled.to_string()),
            (
                "submitted",
                format!("{} ({:.1} tx/s)", r.submitted, r.submitted_per_sec),
            ),
            (
                "finalized",
                format!("{} ({:.1} tx/s)", r.finalized, r.finalized_per_sec),
            ),
            ("rejected", r.rejected.to_string()),
            ("errors", r.errors.to_string()),
            ("skipped", format!("{} (no coin ready)", r.skipped)),
            ("pending", format!("{} (not final by the end)", r.pending)),
            (
                "latency",
                format!(
                    "p50 {:.1} ms · p90 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
                    l.p50, l.p90, l.p99, l.max
                ),
            ),
            ("coins", r.coins.to_string()),
            (
                "first rejection",
                r.first_rejection.clone().unwrap_or_else(|| "-".into()),
            ),
        ],
    )
}
