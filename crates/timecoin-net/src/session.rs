//! One authenticated connection after its handshake: a reader that decrypts records, splits frames,
//! rate-limits and delivers them, and a writer that drains the peer's queues in priority order, batches
//! small frames into one record and sends keepalives.
//!
//! The two halves share only the link; each owns its direction of the Noise keys. Whichever half stops
//! first ends the session.

use std::num::NonZeroU32;
use std::sync::Arc;

use bytes::BytesMut;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::cipher::{Opener, Sealer};
use crate::frame::{
    Frame, FrameDecoder, NOISE_MAX_MESSAGE_BYTES, RECORD_MAX_PLAINTEXT_BYTES, encode_keepalive,
    encode_message, read_record,
};
use crate::peers::{Outbox, OverQuota, PeerLink, Peers, over_quota};
use crate::{Channel, Misbehavior, NetConfig, PeerError};

/// The writer stops adding frames to a batch past this many plaintext bytes, so one batch is at most
/// a few records and a consensus message queued meanwhile waits for at most one batch.
pub(crate) const BATCH_BYTES: usize = 4 * RECORD_MAX_PLAINTEXT_BYTES;

/// Runs the session until either half stops, and says why.
pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    sealer: Sealer,
    opener: Opener,
    link: Arc<PeerLink>,
    outbox: Outbox,
    peers: Arc<Peers>,
) -> PeerError {
    let (reader, writer) = tokio::io::split(stream);
    let read = read_loop(reader, opener, &link, &peers);
    let write = write_loop(writer, sealer, outbox, &link, peers.config());
    let why = tokio::select! {
        why = read => why,
        why = write => why,
        () = link.closing() => {
            let score = link.score();
            if score >= crate::peers::BAN_SCORE { PeerError::ScoreExceeded(score) } else { PeerError::Shutdown }
        }
    };
    link.close();
    why
}

fn limiter(config: &NetConfig, channel: Channel) -> DefaultDirectRateLimiter {
    let quota = match config.rate(channel) {
        Some(rate) => {
            let per_second = NonZeroU32::new(rate.per_second).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
            Quota::per_second(per_second).allow_burst(burst)
        }
        None => {
            let per_minute =
                NonZeroU32::new(config.discovery_per_minute).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(config.discovery_burst).unwrap_or(per_minute);
            Quota::per_minute(per_minute).allow_burst(burst)
        }
    };
    DefaultDirectRateLimiter::direct(quota)
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: R,
    mut opener: Opener,
    link: &PeerLink,
    peers: &Peers,
) -> PeerError {
    let config = peers.config();
    let limiters = Channel::ALL.map(|c| limiter(config, c));
    let clock = DefaultClock::default();
    let mut record = vec![0u8; NOISE_MAX_MESSAGE_BYTES];
    let mut plain = vec![0u8; NOISE_MAX_MESSAGE_BYTES];
    let mut decoder = FrameDecoder::new();
    loop {
        let read = tokio::time::timeout(
            config.idle_timeout,
            read_record(&mut reader, NOISE_MAX_MESSAGE_BYTES, &mut record),
        )
        .await;
        let n = match read {
            Err(_) => return PeerError::Idle(config.idle_timeout),
            Ok(Err(e)) => return e,
            Ok(Ok(n)) => n,
        };
        let ciphertext = record.get(..n).unwrap_or_default();
        let p = match opener.open(ciphertext, &mut plain) {
            Ok(p) => p,
            Err(e) => return e,
        };
        decoder.feed(plain.get(..p).unwrap_or_default());
        loop {
            let (channel, bytes) = match decoder.next_frame() {
                Err(e) => return e,
                Ok(None) => break,
                Ok(Some(Frame::Keepalive)) => continue,
                Ok(Some(Frame::Message { channel, bytes })) => (channel, bytes),
            };
            link.traffic().received(channel, bytes.len());
            if let Some(limiter) = limiters.get(usize::from(channel.priority())) {
                let mut admitted = true;
                while let Err(not_until) = limiter.check() {
                    match over_quota(channel) {
                        OverQuota::Drop => {
                            link.traffic().receive_dropped(channel);
                            peers.penalize(link, Misbehavior::Spam);
                            admitted = false;
                            break;
                        }
                        // Not reading is what slows the peer: its bytes wait in the socket buffers.
                        OverQuota::BackPressure => {
                            tokio::time::sleep(not_until.wait_time_from(clock.now())).await;
                        }
                    }
                }
                if !admitted {
                    continue;
                }
            }
            if channel == Channel::Discovery {
                // The network's own business: answered or taken into the address book here, never
                // handed to the engine.
                peers.discovery().receive(link, &bytes, peers);
                continue;
            }
            if let Some(event) = peers.receive(link, channel, bytes)
                && !peers.deliver(event).await
            {
                return PeerError::Shutdown;
            }
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut sealer: Sealer,
    mut outbox: Outbox,
    link: &PeerLink,
    config: &NetConfig,
) -> PeerError {
    let mut plain = BytesMut::with_capacity(BATCH_BYTES);
    let mut sealed = Vec::new();
    loop {
        plain.clear();
        let [consensus, sync, transactions, discovery] = &mut outbox.queues;
        let first = tokio::select! {
            biased;
            m = consensus.recv() => m.map(|m| (Channel::Consensus, m)),
            m = sync.recv() => m.map(|m| (Channel::Sync, m)),
            m = transactions.recv() => m.map(|m| (Channel::Transactions, m)),
            m = discovery.recv() => m.map(|m| (Channel::Discovery, m)),
            () = tokio::time::sleep(config.keepalive_interval) => {
                encode_keepalive(&mut plain);
                None
            }
        };
        if let Some((channel, message)) = first {
            frame(link, channel, &message, &mut plain);
        }
        // Batch: take whatever else is waiting, highest priority first, up to the batch size.
        'batch: while plain.len() < BATCH_BYTES {
            for (channel, queue) in Channel::ALL.into_iter().zip(outbox.queues.iter_mut()) {
                if let Ok(message) = queue.try_recv() {
                    frame(link, channel, &message, &mut plain);
                    continue 'batch;
                }
            }
            break;
        }
        if plain.is_empty() {
            continue;
        }
        if let Err(e) = sealer.seal(&plain, &mut sealed) {
            return e;
        }
        // A peer that does not read for a whole idle period is as good as gone; its queue has been
        // refusing our sends meanwhile.
        match tokio::time::timeout(config.idle_timeout, writer.write_all(&sealed)).await {
            Err(_) => return PeerError::Idle(config.idle_timeout),
            Ok(Err(e)) => return PeerError::Io(e),
            Ok(Ok(())) => {}
        }
    }
}

/// Frames one message the writer took off `link`'s queue, and counts it as sent.
fn frame(link: &PeerLink, channel: Channel, message: &[u8], plain: &mut BytesMut) {
    link.dequeued(message.len());
    // Checked against the channel's limit when it was queued; a failure here is a bug, not the peer's
    // doing, so the frame is skipped rather than the session ended.
    match encode_message(channel, message, plain) {
        Ok(()) => link.traffic().sent(channel, message.len()),
        Err(e) => tracing::error!(%e, "a queued message no longer fits its channel"),
    }
}
