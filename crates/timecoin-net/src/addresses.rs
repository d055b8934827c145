//! The network's side of discovery: the address book, the dial schedule and our own record, shared by
//! the sessions (which answer and learn on [`Channel::Discovery`]) and the dial loop.
//!
//! The decisions stay in the pure [`discovery`](crate::discovery) module; this module only supplies the
//! wall clock and an OS-seeded RNG and moves bytes. Each lock here is held for a bounded amount of work
//! (one answer, one message's inserts, one dial plan) and never across an `.await`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;
use timecoin_crypto::ChainId;
use tokio::sync::Notify;

use crate::discovery::{
    AddressBook, AddressMessage, AddressRecord, BanCheck, DialCandidate, DialSchedule,
    MAX_ADDRESSES_PER_MESSAGE, RecordRules,
};
use crate::peers::{PeerLink, Peers};
use crate::{Channel, Misbehavior, NetConfig, PeerId};

/// The wall clock in Unix milliseconds, as discovery records are stamped. A clock before 1970 reads
/// as 0, which only makes our records look stale.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Discovery state of one running network.
pub(crate) struct Discovery {
    rules: RecordRules,
    /// Bound: [`crate::discovery::MAX_BOOK_ENTRIES`].
    book: Mutex<AddressBook>,
    /// Bound: [`crate::discovery::MAX_DIAL_STATES`].
    schedule: Mutex<DialSchedule>,
    /// Our signed record while we announce one (`NetConfig::external_addr`).
    own: Mutex<Option<AddressRecord>>,
    /// Woken when the book learns something, so the dialer need not wait for its next tick.
    news: Notify,
    book_path: Option<PathBuf>,
    /// The dial schedule's clock starts here. It runs on tokio's clock, not the wall clock, so a
    /// simulated network (turmoil, paused time) backs off in its own time.
    started: tokio::time::Instant,
}

impl Discovery {
    /// The state for node `local` on `chain`, with the book loaded from the configured file (a
    /// missing or damaged file gives an empty book).
    pub(crate) fn new(
        local: PeerId,
        chain: ChainId,
        config: &NetConfig,
        bans: &impl BanCheck,
    ) -> Self {
        let rules = RecordRules::new(chain).allow_local(config.discovery_allow_local);
        let book = match &config.address_book_path {
            Some(path) => AddressBook::load(path, local, &config.seeds, &rules, now_ms(), bans),
            None => AddressBook::new(local, &config.seeds),
        };
        Discovery {
            rules,
            book: Mutex::new(book),
            schedule: Mutex::new(DialSchedule::new(&config.seeds)),
            own: Mutex::new(None),
            news: Notify::new(),
            book_path: config.address_book_path.clone(),
            started: tokio::time::Instant::now(),
        }
    }

    /// The rules records are checked against.
    pub(crate) fn rules(&self) -> &RecordRules {
        &self.rules
    }

    /// Replaces our own record, which answers and greetings carry from now on.
    pub(crate) fn set_own(&self, record: AddressRecord) {
        *self.own.lock() = Some(record);
    }

    /// Our own record, if we announce one.
    pub(crate) fn own(&self) -> Option<AddressRecord> {
        self.own.lock().clone()
    }

    /// Records in the book.
    pub(crate) fn book_len(&self) -> usize {
        self.book.lock().len()
    }

    /// Whether the book holds a record for `node`.
    pub(crate) fn knows(&self, node: &PeerId) -> bool {
        self.book.lock().get(node).is_some()
    }

    /// Resolves once the book has learned something since the last call.
    pub(crate) async fn news(&self) {
        self.news.notified().await;
    }

    /// What a new session starts with: ask the peer for addresses, and tell it ours.
    pub(crate) fn greet(&self, link: &PeerLink) {
        send(link, &AddressMessage::GetAddresses);
        if let Some(own) = self.own() {
            send(link, &AddressMessage::Addresses(vec![own]));
        }
    }

    /// Handles one discovery message from `link`: answers a `GetAddresses`, takes an `Addresses` into
    /// the book. Undecodable bytes and records that fail verification cost the sender, once per
    /// message (a message of 32 forged records is one offence, not 32).
    pub(crate) fn receive(&self, link: &PeerLink, bytes: &[u8], peers: &Peers) {
        let message = match AddressMessage::decode(bytes) {
            Ok(message) => message,
            Err(e) => {
                tracing::debug!(peer = %link.id, %e, "undecodable discovery message");
                if let Some(offence) = e.misbehavior() {
                    peers.penalize(link, offence);
                }
                return;
            }
        };
        let bans = |node: Option<&PeerId>, addr: &SocketAddr| peers.is_banned(node, addr);
        let now = now_ms();
        match message {
            AddressMessage::GetAddresses => {
                let own = self.own();
                let mut records = self.book.lock().answer(
                    &link.id,
                    &self.rules,
                    now,
                    &bans,
                    &mut rand::thread_rng(),
                );
                if let Some(own) = own {
                    records.truncate(MAX_ADDRESSES_PER_MESSAGE.saturating_sub(1));
                    records.push(own);
                }
                send(link, &AddressMessage::Addresses(records));
            }
            AddressMessage::Addresses(records) => {
                // Verified before the book is locked: signatures are the expensive part.
                let mut offence: Option<Misbehavior> = None;
                let mut verified = Vec::with_capacity(records.len());
                for record in records {
                    match record.verify(&self.rules, now) {
                        Ok(record) => verified.push(record),
                        Err(e) => {
                            tracing::debug!(peer = %link.id, %e, "discovery record refused");
                            offence = offence.or(e.misbehavior());
                        }
                    }
                }
                if let Some(offence) = offence {
                    peers.penalize(link, offence);
                }
                let mut news = false;
                {
                    let mut book = self.book.lock();
                    for record in verified {
                        news |= book.insert(record, link.id, &bans).is_news();
                    }
                }
                if news {
                    self.news.notify_one();
                }
            }
        }
    }

    /// Milliseconds on the dial schedule's clock.
    fn dial_clock_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Up to `want` addresses to dial now, given the peers connected now.
    pub(crate) fn next_dials(
        &self,
        connected: &BTreeMap<PeerId, SocketAddr>,
        want: usize,
        bans: &impl BanCheck,
    ) -> Vec<DialCandidate> {
        let book = self.book.lock();
        self.schedule.lock().next_dials(
            &book,
            connected,
            want,
            self.dial_clock_ms(),
            bans,
            &mut rand::thread_rng(),
        )
    }

    /// A dial to `addr` reached the node it expected.
    pub(crate) fn dial_succeeded(&self, addr: &SocketAddr) {
        self.schedule.lock().dial_succeeded(addr);
    }

    /// A dial to `addr` failed: it backs off.
    pub(crate) fn dial_failed(&self, addr: SocketAddr) {
        self.schedule
            .lock()
            .dial_failed(addr, self.dial_clock_ms(), &mut rand::thread_rng());
    }

    /// Drops records that went stale or banned, then writes the book to its file, if it has one. The
    /// file is written after the lock is released, so a slow disk never holds up the peers' tasks; call
    /// it off an async worker (`spawn_blocking`) or where blocking is fine (shutdown).
    pub(crate) fn prune_and_save(&self, bans: &impl BanCheck) {
        let bytes = {
            let mut book = self.book.lock();
            book.prune(&self.rules, now_ms(), bans);
            book.file_bytes()
        };
        if let Some(path) = &self.book_path
            && let Err(e) = crate::discovery::write_file(path, &bytes)
        {
            tracing::warn!(%e, "could not save the address book");
        }
    }
}

/// Queues `message` to `link` on the discovery channel; a full queue drops it (discovery is
/// best-effort, and the peer will be asked again on its next session).
pub(crate) fn send(link: &PeerLink, message: &AddressMessage) {
    let bytes = match message.encode() {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(%e, "a discovery message we built does not encode");
            return;
        }
    };
    if let Err(e) = link.enqueue(Channel::Discovery, Bytes::from(bytes)) {
        tracing::debug!(peer = %link.id, %e, "discovery message dropped");
    }
}
