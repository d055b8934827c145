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
//! - `net/gossip_block`: a proposal of a 1000-transaction block (two-in/two-out transfers) broadcast by
//!   one of four fully connected nodes on loopback, timed by the wall clock from the broadcast until all
//!   three peers delivered it; the sender's transport counts the bytes it writes, printed per peer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::hint::black_box;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput};
use timecoin_crypto::{ChainId, Hash, SecretKey};
use timecoin_net::frame::{Frame, FrameDecoder, NOISE_MAX_MESSAGE_BYTES, encode_message};
use timecoin_net::handshake::{self, Authenticated};
use timecoin_net::{
    Channel, ChannelRate, NetConfig, NetEvent, Network, NodeIdentity, PeerId, SeedPeer, TcpNetwork,
};
use timecoin_net::{PeerNetwork, TcpTransport, Transport};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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

/// Nodes on 127.0.0.1 whose consensus rate limit never gets in the way of a measurement.
fn loopback_config() -> NetConfig {
    NetConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        // Every node shares 127.0.0.1.
        max_per_ip: 16,
        consensus_rate: ChannelRate {
            per_second: 100_000_000,
            burst: 100_000_000,
        },
        event_queue: 8_192,
        ..NetConfig::default()
    }
}

async fn loopback_pair() -> Pair {
    let config = loopback_config();
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

/// TCP that counts the bytes its streams write, to measure what a broadcast puts on the wire.
struct Counting {
    inner: TcpTransport,
    written: Arc<AtomicU64>,
}

struct CountingStream {
    inner: tokio::net::TcpStream,
    written: Arc<AtomicU64>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Transport for Counting {
    type Stream = CountingStream;

    async fn dial(&self, addr: SocketAddr) -> io::Result<CountingStream> {
        Ok(CountingStream {
            inner: self.inner.dial(addr).await?,
            written: Arc::clone(&self.written),
        })
    }

    async fn accept(&self) -> io::Result<(CountingStream, SocketAddr)> {
        let (inner, addr) = self.inner.accept().await?;
        Ok((
            CountingStream {
                inner,
                written: Arc::clone(&self.written),
            },
            addr,
        ))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// The encoding of a leader's proposal of a block of 1000 two-in/two-out transfers (about 340 KB).
fn block_proposal() -> Vec<u8> {
    use timecoin_storage::ChainDb;
    use timecoin_storage::testing::BlockFactory;
    use timecoin_types::{Proposal, Wire};
    let factory = BlockFactory::local(4);
    let store = ChainDb::memory(factory.genesis()).unwrap();
    // The factory's first block splits the genesis coins into the 2000 outputs the second one spends
    // in 1000 two-in/two-out transfers.
    let (split, cert) = factory.next_block(&store, 1000).unwrap();
    timecoin_storage::ChainStore::apply_finalized(&store, &split, &cert).unwrap();
    let (block, _) = factory.next_block(&store, 1000).unwrap();
    assert_eq!(block.transactions.len(), 1000);
    assert!(block.transactions.iter().all(|t| t.inputs.len() == 2));
    let key = timecoin_types::Genesis::local_validator_key(0);
    let chain = factory.genesis().params.chain_id;
    let height = block.header.height;
    timecoin_consensus::Message::Proposal(Proposal::sign(&key, chain, height, 0, None, block))
        .encode()
}

fn gossip_block(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let proposal = block_proposal();
    let config = loopback_config();
    let written = Arc::new(AtomicU64::new(0));
    let (sender, mut receivers) = rt.block_on(async {
        let mut nodes = Vec::new();
        for i in 0..4u8 {
            let transport = Counting {
                inner: TcpTransport::bind(config.listen).await.unwrap(),
                written: if i == 0 {
                    Arc::clone(&written)
                } else {
                    Arc::new(AtomicU64::new(0))
                },
            };
            nodes.push(PeerNetwork::start(config.clone(), identity(10 + i), transport).unwrap());
        }
        let sender = &nodes[0].0;
        for (peer, _) in &nodes[1..] {
            sender.dial(peer.local_addr().unwrap(), Some(peer.local_id()));
        }
        while sender.peers().len() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut nodes = nodes.into_iter();
        let (sender, _) = nodes.next().unwrap();
        let receivers: Vec<Receiver<NetEvent>> = nodes
            .map(|(net, events)| {
                std::mem::forget(net);
                events
            })
            .collect();
        (sender, receivers)
    });
    let mut counter = 0u64;
    let mut sent_bytes = 0u64;
    let mut blocks = 0u64;
    let mut group = c.benchmark_group("net/gossip_block");
    group.throughput(Throughput::Bytes(proposal.len() as u64));
    group.bench_function("proposal_1000_tx_to_3_peers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    // A new message each time: the network delivers a repeat only once.
                    counter += 1;
                    let mut message = proposal.clone();
                    let tail = message.len() - 8;
                    message[tail..].copy_from_slice(&counter.to_le_bytes());
                    let before = written.load(Ordering::Relaxed);
                    let start = Instant::now();
                    sender
                        .broadcast(Channel::Consensus, Bytes::from(message))
                        .unwrap();
                    for events in receivers.iter_mut() {
                        loop {
                            match events.recv().await {
                                Some(NetEvent::Message { .. }) => break,
                                Some(_) => {}
                                None => panic!("a receiver's network stopped"),
                            }
                        }
                    }
                    took += start.elapsed();
                    sent_bytes += written.load(Ordering::Relaxed) - before;
                    blocks += 1;
                }
                took
            })
        })
    });
    group.finish();
    eprintln!(
        "gossip_block: proposal {} bytes; the sender wrote {:.0} bytes per block to its 3 peers \
         ({:.0} per peer, {:.2}% over the message), mean over {blocks} blocks",
        proposal.len(),
        sent_bytes as f64 / blocks.max(1) as f64,
        sent_bytes as f64 / blocks.max(1) as f64 / 3.0,
        (sent_bytes as f64 / blocks.max(1) as f64 / 3.0 / proposal.len() as f64 - 1.0) * 100.0,
    );
}

timecoin_benches::bench_main!(timecoin_benches::config(20, 1, 4); seal_open, loopback, handshakes, gossip_block);
