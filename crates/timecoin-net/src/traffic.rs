//! [`Traffic`]: messages and bytes by channel, counted by every link of one network, so an operator can
//! see which channel uses the bandwidth and where messages are lost.
//!
//! Bytes are message payloads as the engine hands them to [`Network::send`](crate::Network::send) and
//! gets them in [`NetEvent::Message`](crate::NetEvent::Message): the 5-byte frame header, the Noise tag,
//! keepalives and TCP's own overhead are not counted, so the figures add up to what the application
//! exchanged rather than to what the interface carried.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Channel;

/// One channel's counts since the network started, as [`Traffic::channel`] reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelTraffic {
    /// Messages a peer's writer took off its queue to write to the socket; a broadcast counts once per
    /// peer it went to.
    pub messages_sent: u64,
    /// Payload bytes of [`messages_sent`](Self::messages_sent).
    pub bytes_sent: u64,
    /// Messages that arrived from peers, counted before rate limits and gossip de-duplication: a
    /// repeated transaction or one dropped over quota is counted, though the engine never sees it.
    pub messages_received: u64,
    /// Payload bytes of [`messages_received`](Self::messages_received).
    pub bytes_received: u64,
    /// Messages a peer's queue refused (it was full, or its connection was closing).
    pub sends_dropped: u64,
    /// Messages that arrived over the channel's rate quota and were dropped. Only channels that drop
    /// over quota count any ([`peers::over_quota`](crate::peers::over_quota)); the others slow the
    /// peer down instead.
    pub receives_dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_received: AtomicU64,
    sends_dropped: AtomicU64,
    receives_dropped: AtomicU64,
}

/// The live counters of one network, shared through an `Arc` by its links and by whoever reads them.
///
/// One fixed entry per channel, so it never grows; every update is one or two relaxed atomic adds (a
/// reader needs monotonic totals, not an order between them).
#[derive(Debug, Default)]
pub struct Traffic {
    channels: [Counters; Channel::ALL.len()],
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Traffic {
    fn counters(&self, channel: Channel) -> Option<&Counters> {
        self.channels.get(usize::from(channel.priority()))
    }

    /// A message of `bytes` went to a peer's socket on `channel`.
    pub(crate) fn sent(&self, channel: Channel, bytes: usize) {
        if let Some(c) = self.counters(channel) {
            add(&c.messages_sent, 1);
            add(&c.bytes_sent, bytes as u64);
        }
    }

    /// A message of `bytes` arrived from a peer on `channel`.
    pub(crate) fn received(&self, channel: Channel, bytes: usize) {
        if let Some(c) = self.counters(channel) {
            add(&c.messages_received, 1);
            add(&c.bytes_received, bytes as u64);
        }
    }

    /// A peer's queue refused a message on `channel`.
    pub(crate) fn send_dropped(&self, channel: Channel) {
        if let Some(c) = self.counters(channel) {
            add(&c.sends_dropped, 1);
        }
    }

    /// A message that arrived on `channel` was dropped over its rate quota.
    pub(crate) fn receive_dropped(&self, channel: Channel) {
        if let Some(c) = self.counters(channel) {
            add(&c.receives_dropped, 1);
        }
    }

    /// `channel`'s counts now.
    pub fn channel(&self, channel: Channel) -> ChannelTraffic {
        let Some(c) = self.counters(channel) else {
            return ChannelTraffic::default();
        };
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ChannelTraffic {
            messages_sent: get(&c.messages_sent),
            bytes_sent: get(&c.bytes_sent),
            messages_received: get(&c.messages_received),
            bytes_received: get(&c.bytes_received),
            sends_dropped: get(&c.sends_dropped),
            receives_dropped: get(&c.receives_dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_channel_counts_only_its_own_messages() {
        let traffic = Traffic::default();
        traffic.sent(Channel::Consensus, 10);
        traffic.sent(Channel::Consensus, 5);
        traffic.received(Channel::Sync, 7);
        traffic.send_dropped(Channel::Transactions);
        traffic.receive_dropped(Channel::Discovery);
        assert_eq!(
            traffic.channel(Channel::Consensus),
            ChannelTraffic {
                messages_sent: 2,
                bytes_sent: 15,
                ..ChannelTraffic::default()
            }
        );
        assert_eq!(
            traffic.channel(Channel::Sync),
            ChannelTraffic {
                messages_received: 1,
                bytes_received: 7,
                ..ChannelTraffic::default()
            }
        );
        assert_eq!(traffic.channel(Channel::Transactions).sends_dropped, 1);
        assert_eq!(traffic.channel(Channel::Discovery).receives_dropped, 1);
    }
}
