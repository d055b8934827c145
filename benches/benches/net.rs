//! Benchmarks of `timecoin-net`: the CPU cost of framing and encrypting small messages, one per record
//! and batched, in memory and on loopback TCP, and handshakes. Run with
//! `cargo bench -p timecoin-benches --bench net`; figures are recorded in docs/BENCHMARKS.md.
//!
//! Every group but `loopback_wall` times the CPU time of the benchmark's one thread (the kernel's
//! schedstat, user and system), not the wall clock, so a machine shared with other work gives the
//! same figures; `loopback_wall` is the one wall-clock row.
//!
//! - `net/seal_open`: the sender's framing and encryption and the receiver's decryption and frame
//!   split, for 256-byte messages, in memory (no socket). `single` makes one record per message;
//!   `batched` packs 256 messages into the records a session's writer would make.
//!   `Throughput::Elements`, so criterion prints messages per second of one core.
//! - `net/loopback_cpu`: two `TcpNetwork`s on 127.0.0.1 in one single-threaded runtime, so the timed
//!   figure is the CPU time of the one thread that runs both nodes (from the kernel's schedstat), per
//!   message: framing, encryption, syscalls, queues, rate limits and event delivery on both ends.
//!   `single` waits for each message before sending the next; `batched` sends 512 and then waits.
//! - `net/loopback_wall`: the same batched run timed by the wall clock, for messages per second.
//! - `net/handshake`: one full handshake (Noise XX and both identity proofs) over an in-memory pipe.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput};
use timecoin_crypto::{ChainId, Hash, SecretKey};
use timecoin_net::frame::{Frame, FrameDecoder, NOISE_MAX_MESSAGE_BYTES, encode_message};
use timecoin_net::handshake::{self, Authenticated};
use timecoin_net::{
    Channel, ChannelRate, NetConfig, NetEvent, Network, NodeIdentity, PeerId, SeedPeer, TcpNetwork,
};
use tokio::sync::mpsc::Receiver;

const MESSAGE: usize = 256;
const BATCH: usize = 256;
const LOOPBACK_BURST: usize = 512;

fn identity(seed: u8) -> NodeIdentity {
    NodeIdentity::new(
        SecretKey::from_seed(&[seed; 32]),
        ChainId(7),
        Hash::from_bytes([1; 32]),
    )
}

async fn session_pair() -> (Authenticated, Authenticated) {
    let (mut a, mut b) = tokio::io::duplex(4096);
    let (dialer, listener) = (identity(1), identity(2));
    let (d, l) = tokio::join!(
        handshake::initiate(&mut a, &dialer, None),
        handshake::respond(&mut b, &listener)
    );
    (d.unwrap(), l.unwrap())
}

/// Decrypts every record in `sealed` and splits the frames; returns how many messages came out.
fn open_all(
    receiver: &mut Authenticated,
    sealed: &[u8],
    decoder: &mut FrameDecoder,
    out: &mut [u8],
) -> usize {
    let mut rest = sealed;
    let mut messages = 0;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = u16::from_be_bytes(*len) as usize;
        let n = receiver.open(&tail[..len], out).unwrap();
        decoder.feed(&out[..n]);
        while let Some(frame) = decoder.next_frame().unwrap() {
            if let Frame::Message { bytes, .. } = frame {
                black_box(bytes);
                messages += 1;
            }
        }
        rest = &tail[len..];
    }
    messages
}

fn seal_open(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (mut sender, mut receiver) = rt.block_on(session_pair());
    let message = vec![0x5au8; MESSAGE];
    let mut plain = BytesMut::new();
    let mut sealed = Vec::new();
    let mut decoder = FrameDecoder::new();
    let mut out = vec![0u8; NOISE_MAX_MESSAGE_BYTES];

    let mut group = c.benchmark_group("net/seal_open_256B");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single", |b| {
        b.iter_custom(|iters| {
            let start = thread_cpu();
            for _ in 0..iters {
                plain.clear();
                encode_message(Channel::Transactions, &message, &mut plain).unwrap();
                sender.seal(&plain, &mut sealed).unwrap();
                assert_eq!(open_all(&mut receiver, &sealed, &mut decoder, &mut out), 1);
            }
            thread_cpu() - start
        })
    });
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("batched_256", |b| {
        b.iter(|| {
            plain.clear();
            for _ in 0..BATCH {
                encode_message(Channel::Transactions, &message, &mut plain).unwrap();
            }
            sender.seal(&plain, &mut sealed).unwrap();
            assert_eq!(
                open_all(&mut receiver, &sealed, &mut decoder, &mut out),
                BATCH
            );
        })
    });
    group.finish();
}

/// CPU time this thread has run, in nanoseconds (user and system, from the kernel's schedstat).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    Duration::from_nanos(stat.split_whitespace().next().unwrap().parse().unwrap())
}

struct Pair {
    sender: TcpNetwork,
    receiver_events: Receiver<NetEvent>,
    receiver_id: PeerId,
    counter: u64,
}

async fn loopback_pair() -> Pair {
    // No rate limit gets in the way of the measurement; both nodes share 127.0.0.1.
    let unlimited = ChannelRate {
        per_second: 100_000_000,
        burst: 100_000_000,
    };
    let config = NetConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        max_per_ip: 8,
        consensus_rate: unlimited,
        event_queue: 8_192,
        ..NetConfig::default()
    };
    let (receiver, mut receiver_events) =
        TcpNetwork::bind(config.clone(), identity(1)).await.unwrap();
    let receiver_id = receiver.local_id();
    let seeds = vec![SeedPeer {
        addr: receiver.local_addr().unwrap(),
        key: Some(receiver_id),
    }];
    let (sender, mut sender_events) = TcpNetwork::bind(NetConfig { seeds, ..config }, identity(2))
        .await
        .unwrap();
    while !matches!(sender_events.recv().await, Some(NetEvent::Joined { .. })) {}
    while !matches!(receiver_events.recv().await, Some(NetEvent::Joined { .. })) {}
    // Keep the receiver running: it lives in the runtime's tasks, its handle can go.
    std::mem::forget(receiver);
    std::mem::forget(sender_events);
    Pair {
        sender,
        receiver_events,
        receiver_id,
        counter: 0,
    }
}

impl Pair {
    /// Sends `n` distinct messages at once, then waits until all have arrived.
    async fn burst(&mut self, n: usize) {
        let mut body = vec![0u8; MESSAGE];
        for _ in 0..n {
            self.counter += 1;
            body[..8].copy_from_slice(&self.counter.to_le_bytes());
            self.sender
                .send(
                    &self.receiver_id,
                    Channel::Consensus,
                    Bytes::copy_from_slice(&body),
                )
                .unwrap();
        }
        let mut got = 0;
        while got < n {
            if let Some(NetEvent::Message { .. }) = self.receiver_events.recv().await {
                got += 1;
            }
        }
    }
}

fn loopback(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut pair = rt.block_on(loopback_pair());

    let mut group = c.benchmark_group("net/loopback_cpu_256B");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = thread_cpu();
                for _ in 0..iters {
                    pair.burst(1).await;
                }
                thread_cpu() - start
            })
        })
    });
    group.throughput(Throughput::Elements(LOOPBACK_BURST as u64));
    group.bench_function("batched_512", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = thread_cpu();
                for _ in 0..iters {
                    pair.burst(LOOPBACK_BURST).await;
                }
                thread_cpu() - start
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("net/loopback_wall_256B");
    group.throughput(Throughput::Elements(LOOPBACK_BURST as u64));
    group.bench_function("batched_512", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    pair.burst(LOOPBACK_BURST).await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn handshakes(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("net/handshake");
    group.throughput(Throughput::Elements(1));
    group.bench_function("xx_and_proofs_in_memory", |b| {
        b.iter_custom(|iters| {
            let start = thread_cpu();
            for _ in 0..iters {
                black_box(rt.block_on(session_pair()));
            }
            thread_cpu() - start
        })
    });
    group.finish();
}

timecoin_benches::bench_main!(timecoin_benches::config(20, 1, 4); seal_open, loopback, handshakes);
