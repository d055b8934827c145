//! [`AddressBook`]: the verified addresses a node knows, one per node key, bounded, and kept in a file
//! across restarts.
//!
//! Each record remembers the peer that gave it to us, so that neither an answer to `GetAddresses` nor a
//! relay ever sends a record back where it came from (nor a node's own record back to it): echoes are
//! wasted bandwidth, and they would let a peer learn which of its records we kept.
//!
//! A record's signature proves who listens, not that the address is real: anyone can mint keys and
//! sign fresh records for made-up addresses. So one source may fill at most
//! [`MAX_ENTRIES_PER_SOURCE`] of the book, and a single peer cannot flush out every honest record
//! (an eclipse); it would need that many peers, each on its own address.
//!
//! # File
//! ```text
//! magic "TCAB" || version (1) || count (2, BE) || count × (source key (32) || record)
//!   || BLAKE3 checksum (32) of everything before it
//! ```
//! Written whole to `<file>.tmp`, synced, renamed over the file, and the directory synced, so a crash
//! leaves the old book or the new one. On load every record is verified again (the file is ours, but a
//! disk is not a signature) and any damage to the structure or the checksum is logged and the node
//! starts with an empty book: discovery refills it, and a node must never fail to start over a cache.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::seq::SliceRandom;
use timecoin_crypto::{HashDomain, hash};

use crate::bans::{BanList, BanTarget};
use crate::discovery::message::MAX_ADDRESSES_PER_MESSAGE;
use crate::discovery::record::{AddressRecord, Reader, RecordRules, VerifiedRecord};
use crate::{NetError, PeerId, SeedPeer};

/// Most records the book holds. Past it, the stalest record that is not a seed's makes room (and a
/// record staler than all of those is not taken). 1,024 is ample to find a node's 16 outbound peers
/// many times over, and small enough to answer from and to write whole.
pub const MAX_BOOK_ENTRIES: usize = 1_024;

/// Most records one source (the peer that gave them to us) may hold in the book: an eighth of it.
pub const MAX_ENTRIES_PER_SOURCE: usize = MAX_BOOK_ENTRIES / 8;

/// Most seeds taken from the configuration; further ones are ignored (with a warning). Bounds the
/// seed keys the book protects and the seed dial states the dial schedule holds.
pub const MAX_SEEDS: usize = 64;

const FILE_MAGIC: [u8; 4] = *b"TCAB";
const FILE_VERSION: u8 = 1;
const FILE_HEADER_BYTES: usize = 4 + 1 + 2;
const FILE_CHECKSUM_BYTES: usize = 32;
const FILE_CHECKSUM_DOMAIN: HashDomain =
    HashDomain::Custom("timecoin 2026-12 address book file v1");

/// The largest file a full book writes; a longer file is damaged and is not read past this.
pub const MAX_BOOK_FILE_BYTES: usize =
    FILE_HEADER_BYTES + MAX_BOOK_ENTRIES * (32 + AddressRecord::MAX_BYTES) + FILE_CHECKSUM_BYTES;

/// Whether a node or its address is banned. Implemented by the [`BanList`] (node key or IP address)
/// and by any `Fn(Option<&PeerId>, &SocketAddr) -> bool`, so tests and the simulator need no ban file.
pub trait BanCheck {
    /// True if `node` (when its key is known) or, where addresses are banned, `addr` must not be
    /// stored, shared or dialed.
    fn is_banned(&self, node: Option<&PeerId>, addr: &SocketAddr) -> bool;
}

impl BanCheck for BanList {
    fn is_banned(&self, node: Option<&PeerId>, addr: &SocketAddr) -> bool {
        node.is_some_and(|n| BanList::is_banned(self, &BanTarget::Node(*n)))
            || BanList::is_banned(self, &BanTarget::Ip(addr.ip()))
    }
}

impl<F: Fn(Option<&PeerId>, &SocketAddr) -> bool> BanCheck for F {
    fn is_banned(&self, node: Option<&PeerId>, addr: &SocketAddr) -> bool {
        self(node, addr)
    }
}

/// What [`AddressBook::insert`] did with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insertion {
    /// A node we did not know: worth relaying.
    Added,
    /// A newer record for a node we knew: worth relaying.
    Updated,
    /// We already hold a record this new or newer for the node; nothing changed.
    NotNewer,
    /// The record is our own node's; we never store or dial ourselves.
    Ours,
    /// The node or its address is banned.
    Banned,
    /// The book is full and the record is staler than everything that could make room for it.
    NoRoom,
    /// Its source already holds [`MAX_ENTRIES_PER_SOURCE`] records in the book.
    SourceFull,
}

impl Insertion {
    /// Whether the record is news that should be relayed to other peers.
    pub fn is_news(self) -> bool {
        matches!(self, Insertion::Added | Insertion::Updated)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    record: AddressRecord,
    /// The peer that gave us this record: it is never sent back to it.
    source: PeerId,
}

/// The verified addresses a node knows.
///
/// Bound: [`MAX_BOOK_ENTRIES`] records (one per node key) and [`MAX_SEEDS`] protected seed keys.
#[derive(Debug)]
pub struct AddressBook {
    local: PeerId,
    /// Keys of configured seeds: their records are never evicted. Bound: [`MAX_SEEDS`].
    seeds: BTreeSet<PeerId>,
    /// One record per node key. Bound: [`MAX_BOOK_ENTRIES`].
    entries: BTreeMap<PeerId, Entry>,
    /// `(timestamp, key)` of every entry, to find the stalest. Bound: the same as `entries`.
    by_age: BTreeSet<(u64, PeerId)>,
    /// Records held per source, none at zero. Bound: the same as `entries`.
    per_source: BTreeMap<PeerId, usize>,
}

impl AddressBook {
    /// An empty book for the node `local`, protecting the records of the seeds that name their key.
    pub fn new(local: PeerId, seeds: &[SeedPeer]) -> Self {
        if seeds.len() > MAX_SEEDS {
            tracing::warn!(
                seeds = seeds.len(),
                max = MAX_SEEDS,
                "more seeds than the address book protects; the rest are ordinary peers"
            );
        }
        AddressBook {
            local,
            seeds: seeds.iter().take(MAX_SEEDS).filter_map(|s| s.key).collect(),
            entries: BTreeMap::new(),
            by_age: BTreeSet::new(),
            per_source: BTreeMap::new(),
        }
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The record held for `node`.
    pub fn get(&self, node: &PeerId) -> Option<&AddressRecord> {
        self.entries.get(node).map(|e| &e.record)
    }

    /// Every record held, in key order.
    pub fn records(&self) -> impl Iterator<Item = &AddressRecord> {
        self.entries.values().map(|e| &e.record)
    }

    /// Stores `record`, received from `source`, if it is news: a node we did not know, or a newer
    /// record for one we did (the newest signed record wins; a tie keeps the one held), and `source`
    /// has room under [`MAX_ENTRIES_PER_SOURCE`].
    pub fn insert(
        &mut self,
        record: VerifiedRecord,
        source: PeerId,
        bans: &impl BanCheck,
    ) -> Insertion {
        let record = record.into_inner();
        if record.node == self.local {
            return Insertion::Ours;
        }
        if bans.is_banned(Some(&record.node), &record.addr) {
            return Insertion::Banned;
        }
        let held = self.entries.get(&record.node);
        if held.is_some_and(|h| h.record.timestamp_ms >= record.timestamp_ms) {
            return Insertion::NotNewer;
        }
        let takes_a_slot = held.is_none_or(|h| h.source != source);
        if takes_a_slot && self.from_source(&source) >= MAX_ENTRIES_PER_SOURCE {
            return Insertion::SourceFull;
        }
        let outcome = match held {
            Some(_) => Insertion::Updated,
            None => {
                if self.entries.len() >= MAX_BOOK_ENTRIES && !self.evict_staler_than(&record) {
                    return Insertion::NoRoom;
                }
                Insertion::Added
            }
        };
        self.remove(&record.node);
        self.by_age.insert((record.timestamp_ms, record.node));
        *self.per_source.entry(source).or_insert(0) += 1;
        self.entries.insert(record.node, Entry { record, source });
        outcome
    }

    /// Forgets `node`'s record.
    pub fn remove(&mut self, node: &PeerId) -> Option<AddressRecord> {
        let entry = self.entries.remove(node)?;
        self.by_age.remove(&(entry.record.timestamp_ms, *node));
        if let Some(count) = self.per_source.get_mut(&entry.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_source.remove(&entry.source);
            }
        }
        Some(entry.record)
    }

    /// Records held that came from `source`.
    pub fn from_source(&self, source: &PeerId) -> usize {
        self.per_source.get(source).copied().unwrap_or(0)
    }

    /// Forgets records that are banned now or too old under `rules` at `now_ms`, so the book does not
    /// keep offering addresses that every receiver would refuse.
    pub fn prune(&mut self, rules: &RecordRules, now_ms: u64, bans: &impl BanCheck) {
        let doomed: Vec<PeerId> = self
            .entries
            .values()
            .filter(|e| {
                bans.is_banned(Some(&e.record.node), &e.record.addr)
                    || rules.check_fresh(e.record.timestamp_ms, now_ms).is_err()
            })
            .map(|e| e.record.node)
            .collect();
        for node in doomed {
            self.remove(&node);
        }
    }

    /// Whether `node`'s record may be sent to peer `to`: never back to the peer it came from, and never
    /// a node's own record back to it.
    pub fn may_send(&self, node: &PeerId, to: &PeerId) -> bool {
        self.entries
            .get(node)
            .is_some_and(|e| e.source != *to && e.record.node != *to)
    }

    /// The answer to `GetAddresses` from `requester`: a random sample of at most
    /// [`MAX_ADDRESSES_PER_MESSAGE`] records that may be sent to it, are fresh at `now_ms` and are not
    /// banned.
    pub fn answer<R: Rng + ?Sized>(
        &self,
        requester: &PeerId,
        rules: &RecordRules,
        now_ms: u64,
        bans: &impl BanCheck,
        rng: &mut R,
    ) -> Vec<AddressRecord> {
        let eligible: Vec<&Entry> = self
            .entries
            .values()
            .filter(|e| {
                e.source != *requester
                    && e.record.node != *requester
                    && rules.check_fresh(e.record.timestamp_ms, now_ms).is_ok()
                    && !bans.is_banned(Some(&e.record.node), &e.record.addr)
            })
            .collect();
        eligible
            .choose_multiple(rng, MAX_ADDRESSES_PER_MESSAGE)
            .map(|e| e.record.clone())
            .collect()
    }

    /// Of the records just learned (the nodes whose [`insert`](Self::insert) was news), those that may be
    /// relayed to `to`, at most [`MAX_ADDRESSES_PER_MESSAGE`].
    pub fn relay_to(&self, learned: &[PeerId], to: &PeerId) -> Vec<AddressRecord> {
        learned
            .iter()
            .filter(|node| self.may_send(node, to))
            .filter_map(|node| self.get(node).cloned())
            .take(MAX_ADDRESSES_PER_MESSAGE)
            .collect()
    }

    /// Makes room for `record` by evicting the stalest record that is not a seed's, if that one is
    /// staler than `record`. False if nothing could go.
    fn evict_staler_than(&mut self, record: &AddressRecord) -> bool {
        let stalest = self
            .by_age
            .iter()
            .find(|(_, node)| !self.seeds.contains(node))
            .copied();
        match stalest {
            Some((timestamp_ms, node)) if timestamp_ms < record.timestamp_ms => {
                self.remove(&node);
                true
            }
            _ => false,
        }
    }

    /// Writes the book to `path` atomically: a temporary file beside it, synced, renamed over it, and
    /// the directory synced so the rename itself survives a crash.
    pub fn save(&self, path: &Path) -> Result<(), NetError> {
        write_file(path, &self.encode_file())
    }

    /// The bytes [`save`](Self::save) writes, for a caller that writes them later with [`write_file`]
    /// (outside a lock, off an async worker).
    pub fn file_bytes(&self) -> Vec<u8> {
        self.encode_file()
    }

    /// The book saved in `path`, for the node `local` with `seeds`, keeping the records that still
    /// verify under `rules` at `now_ms` and are not banned. A missing file is an empty book; a damaged
    /// one is logged and also gives an empty book, never an error.
    pub fn load(
        path: &Path,
        local: PeerId,
        seeds: &[SeedPeer],
        rules: &RecordRules,
        now_ms: u64,
        bans: &impl BanCheck,
    ) -> Self {
        let mut book = AddressBook::new(local, seeds);
        let bytes = match read_bounded(path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return book,
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "address book unreadable; starting empty");
                return book;
            }
        };
        let entries = match decode_file(&bytes) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(path = %path.display(), %e, "address book damaged; starting empty");
                return book;
            }
        };
        let mut dropped = 0usize;
        for (source, record) in entries {
            match record.verify(rules, now_ms) {
                Ok(record) => {
                    book.insert(record, source, bans);
                }
                Err(_) => dropped += 1,
            }
        }
        tracing::debug!(kept = book.len(), dropped, "address book loaded");
        book
    }

    fn encode_file(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_BOOK_FILE_BYTES);
        out.extend_from_slice(&FILE_MAGIC);
        out.push(FILE_VERSION);
        // The book never holds more than MAX_BOOK_ENTRIES (< 2^16) records.
        let count = u16::try_from(self.entries.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for entry in self.entries.values().take(usize::from(count)) {
            out.extend_from_slice(entry.source.as_bytes());
            entry.record.encode_into(&mut out);
        }
        let checksum = hash(FILE_CHECKSUM_DOMAIN, &out);
        out.extend_from_slice(checksum.as_bytes());
        out
    }
}

/// Writes an address book file atomically: a temporary file beside `path`, synced, renamed over it,
/// and the directory synced so the rename itself survives a crash.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), NetError> {
    let err = |e: std::io::Error| NetError::AddressBook {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let tmp = temporary_path(path);
    {
        let mut file = std::fs::File::create(&tmp).map_err(err)?;
        file.write_all(bytes).map_err(err)?;
        file.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Not every platform can open a directory to sync it; the rename is done either way.
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// The file's bytes, reading at most one byte past [`MAX_BOOK_FILE_BYTES`]; `None` if there is no file.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut bytes = Vec::new();
    file.take(MAX_BOOK_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > MAX_BOOK_FILE_BYTES {
        return Err(format!("longer than {MAX_BOOK_FILE_BYTES} bytes"));
    }
    Ok(Some(bytes))
}

/// The file's entries, unverified. Any structural fault or checksum mismatch is an error.
fn decode_file(bytes: &[u8]) -> Result<Vec<(PeerId, AddressRecord)>, NetError> {
    let body_len =
        bytes
            .len()
            .checked_sub(FILE_CHECKSUM_BYTES)
            .ok_or(NetError::MalformedAddresses(
                "book file shorter than its checksum",
            ))?;
    let (body, checksum) = bytes.split_at(body_len);
    if hash(FILE_CHECKSUM_DOMAIN, body).as_bytes().as_slice() != checksum {
        return Err(NetError::MalformedAddresses("book file checksum mismatch"));
    }
    let mut reader = Reader::new(body);
    if reader.array::<4>()? != FILE_MAGIC {
        return Err(NetError::MalformedAddresses("not an address book file"));
    }
    if reader.byte()? != FILE_VERSION {
        return Err(NetError::MalformedAddresses("unknown address book version"));
    }
    let count = usize::from(u16::from_be_bytes(reader.array()?));
    if count > MAX_BOOK_ENTRIES {
        return Err(NetError::MalformedAddresses(
            "more entries than a book holds",
        ));
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let source = PeerId::from_bytes(reader.array()?);
        entries.push((source, AddressRecord::read(&mut reader)?));
    }
    reader.finish()?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use timecoin_crypto::ChainId;

    use super::*;
    use crate::discovery::test_nodes::{NOW, addr, id, key, no_bans};

    const CHAIN: ChainId = ChainId(3);

    fn rules() -> RecordRules {
        RecordRules::new(CHAIN)
    }

    fn verified(n: u16, timestamp_ms: u64) -> VerifiedRecord {
        AddressRecord::sign(&key(n), CHAIN, addr(n), timestamp_ms)
            .verify(&rules(), timestamp_ms)
            .unwrap()
    }

    fn book() -> AddressBook {
        AddressBook::new(id(0), &[])
    }

    /// A peer that relays records; its key is never verified, so it need not be a curve point.
    fn relay(n: u16) -> PeerId {
        let mut bytes = [0xee; 32];
        bytes[..2].copy_from_slice(&n.to_le_bytes());
        PeerId::from_bytes(bytes)
    }

    #[test]
    fn the_newest_record_of_a_node_wins() {
        let mut book = book();
        let source = id(900);
        assert_eq!(
            book.insert(verified(1, NOW), source, &no_bans()),
            Insertion::Added
        );
        assert_eq!(
            book.insert(verified(1, NOW - 1), source, &no_bans()),
            Insertion::NotNewer
        );
        assert_eq!(
            book.insert(verified(1, NOW), source, &no_bans()),
            Insertion::NotNewer
        );
        assert_eq!(
            book.insert(verified(1, NOW + 5), source, &no_bans()),
            Insertion::Updated
        );
        assert_eq!(book.len(), 1);
        assert_eq!(book.get(&id(1)).unwrap().timestamp_ms, NOW + 5);
        assert_eq!(book.by_age.len(), 1);
    }

    #[test]
    fn our_own_and_banned_records_are_not_stored() {
        let mut book = book();
        assert_eq!(
            book.insert(verified(0, NOW), id(5), &no_bans()),
            Insertion::Ours
        );
        let banned = id(2);
        let bans = move |node: Option<&PeerId>, _: &SocketAddr| node == Some(&banned);
        assert_eq!(
            book.insert(verified(2, NOW), id(5), &bans),
            Insertion::Banned
        );
        assert!(book.is_empty());

        let list = Arc::new(BanList::in_memory());
        list.ban(&[BanTarget::Ip(addr(3).ip())], Duration::from_secs(60));
        assert_eq!(
            book.insert(verified(3, NOW), id(5), list.as_ref()),
            Insertion::Banned
        );
        assert_eq!(
            book.insert(verified(4, NOW), id(5), list.as_ref()),
            Insertion::Added
        );

        list.ban(&[BanTarget::Node(id(4))], Duration::from_secs(60));
        book.prune(&rules(), NOW, list.as_ref());
        assert!(book.is_empty(), "a ban after the fact prunes the record");
    }

    #[test]
    fn a_full_book_evicts_the_stalest_but_keeps_seeds() {
        let seed = SeedPeer {
            addr: addr(1),
            key: Some(id(1)),
        };
        let mut book = AddressBook::new(id(0), &[seed]);
        let source = relay(5_000);
        // The seed's record is the stalest of all.
        assert_eq!(
            book.insert(verified(1, NOW), source, &no_bans()),
            Insertion::Added
        );
        for n in 2..=(MAX_BOOK_ENTRIES as u16) {
            let outcome = book.insert(verified(n, NOW + u64::from(n)), relay(n), &no_bans());
            assert_eq!(outcome, Insertion::Added);
        }
        assert_eq!(book.len(), MAX_BOOK_ENTRIES);

        let newest = MAX_BOOK_ENTRIES as u16 + 1;
        assert_eq!(
            book.insert(verified(newest, NOW + 10_000), source, &no_bans()),
            Insertion::Added
        );
        assert_eq!(book.len(), MAX_BOOK_ENTRIES);
        assert!(book.get(&id(1)).is_some(), "the seed is kept");
        assert!(book.get(&id(2)).is_none(), "the stalest other record went");

        // Staler than everything that could go: refused, and nothing is lost.
        assert_eq!(
            book.insert(verified(newest + 1, NOW), source, &no_bans()),
            Insertion::NoRoom
        );
        assert!(book.get(&id(3)).is_some());
        assert_eq!(book.len(), MAX_BOOK_ENTRIES);
        assert_eq!(book.by_age.len(), MAX_BOOK_ENTRIES);
    }

    #[test]
    fn one_source_fills_at_most_an_eighth_of_the_book() {
        let mut book = book();
        let flooder = relay(1);
        for n in 1..=(MAX_ENTRIES_PER_SOURCE as u16) {
            assert_eq!(
                book.insert(verified(n, NOW), flooder, &no_bans()),
                Insertion::Added
            );
        }
        let next = MAX_ENTRIES_PER_SOURCE as u16 + 1;
        assert_eq!(
            book.insert(verified(next, NOW), flooder, &no_bans()),
            Insertion::SourceFull
        );
        // Records it already gave may still be refreshed through it, and others still get in.
        assert_eq!(
            book.insert(verified(1, NOW + 1), flooder, &no_bans()),
            Insertion::Updated
        );
        assert_eq!(
            book.insert(verified(next, NOW), relay(2), &no_bans()),
            Insertion::Added
        );
        // A newer record through another peer moves the slot to that peer.
        assert_eq!(
            book.insert(verified(2, NOW + 1), relay(2), &no_bans()),
            Insertion::Updated
        );
        assert_eq!(book.from_source(&flooder), MAX_ENTRIES_PER_SOURCE - 1);
        assert_eq!(book.from_source(&relay(2)), 2);
        assert_eq!(
            book.insert(verified(next + 1, NOW), flooder, &no_bans()),
            Insertion::Added
        );
        for n in 1..=(next + 1) {
            book.remove(&id(n));
        }
        assert!(book.per_source.is_empty(), "no source is kept at zero");
    }

    #[test]
    fn records_never_echo_to_their_source_or_their_node() {
        let mut book = book();
        let (alice, bob) = (id(100), id(101));
        book.insert(verified(1, NOW), alice, &no_bans());
        book.insert(verified(2, NOW), bob, &no_bans());
        // Node 3 announced itself.
        book.insert(verified(3, NOW), id(3), &no_bans());
        let mut rng = ChaCha8Rng::seed_from_u64(1);

        let to_alice = book.answer(&alice, &rules(), NOW, &no_bans(), &mut rng);
        let mut nodes: Vec<PeerId> = to_alice.iter().map(|r| r.node).collect();
        nodes.sort();
        let mut expected = vec![id(2), id(3)];
        expected.sort();
        assert_eq!(nodes, expected);

        let to_three = book.answer(&id(3), &rules(), NOW, &no_bans(), &mut rng);
        assert!(to_three.iter().all(|r| r.node != id(3)));
        assert_eq!(to_three.len(), 2);

        let learned = [id(1), id(2), id(3)];
        let relayed: Vec<PeerId> = book
            .relay_to(&learned, &bob)
            .iter()
            .map(|r| r.node)
            .collect();
        assert_eq!(relayed, vec![id(1), id(3)]);
        assert!(!book.may_send(&id(1), &alice));
        assert!(book.may_send(&id(1), &bob));
        assert!(
            !book.may_send(&id(99), &bob),
            "an unknown node has nothing to send"
        );
    }

    #[test]
    fn an_answer_is_a_bounded_random_sample_of_fresh_records() {
        let mut book = book();
        for n in 1..=200 {
            book.insert(verified(n, NOW), relay(n % 4), &no_bans());
        }
        book.insert(
            verified(500, NOW - rules().max_age_ms),
            relay(0),
            &no_bans(),
        );
        let asker = relay(9);
        let later = NOW + 1;
        let answer = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            book.answer(&asker, &rules(), later, &no_bans(), &mut rng)
        };
        let first = answer(1);
        assert_eq!(first.len(), MAX_ADDRESSES_PER_MESSAGE);
        assert_eq!(first, answer(1), "the same seed gives the same sample");
        assert_ne!(first, answer(2), "another seed gives another sample");
        assert!(
            first.iter().all(|r| r.node != id(500)),
            "stale records stay home"
        );

        book.prune(&rules(), later, &no_bans());
        assert_eq!(book.len(), 200);
    }

    #[test]
    fn the_book_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.book");
        let mut book = book();
        for n in 1..=20 {
            book.insert(verified(n, NOW + u64::from(n)), id(300 + n), &no_bans());
        }
        book.save(&path).unwrap();
        assert!(!temporary_path(&path).exists());

        let loaded = AddressBook::load(&path, id(0), &[], &rules(), NOW + 100, &no_bans());
        assert_eq!(loaded.entries, book.entries);
        assert_eq!(loaded.by_age, book.by_age);
        assert_eq!(loaded.per_source, book.per_source);

        // A restart much later drops what has gone stale, and bans still apply.
        let late = NOW + 15 + rules().max_age_ms;
        let banned = id(20);
        let bans = move |node: Option<&PeerId>, _: &SocketAddr| node == Some(&banned);
        let aged = AddressBook::load(&path, id(0), &[], &rules(), late, &bans);
        assert_eq!(aged.len(), 5, "records 15..=19 are fresh; 20 is banned");
    }

    #[test]
    fn the_book_file_format_does_not_change() {
        // Signing is deterministic, so a book of known records saves to fixed bytes. A failure means
        // books saved by running nodes would no longer load: change the format only with a new
        // FILE_VERSION.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.book");
        let mut book = book();
        book.insert(verified(1, NOW), relay(1), &no_bans());
        book.insert(verified(2, NOW + 1), id(2), &no_bans());
        book.save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            crate::discovery::record::tests::fingerprint(&bytes),
            "b8c179308d3575161838b71fef612ae742793c7588b72aec674ead43c2686902"
        );
    }

    #[test]
    fn a_damaged_or_missing_file_gives_an_empty_book() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.book");
        let load = |path: &Path| AddressBook::load(path, id(0), &[], &rules(), NOW, &no_bans());
        assert!(load(&path).is_empty(), "missing");

        let mut book = book();
        for n in 1..=3 {
            book.insert(verified(n, NOW), id(300), &no_bans());
        }
        book.save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        assert_eq!(load(&path).len(), 3);

        let mut flipped = good.clone();
        flipped[20] ^= 1;
        let mut cases = vec![Vec::new(), b"garbage".to_vec(), flipped];
        cases.push(good[..good.len() - 1].to_vec());
        cases.push(vec![0; MAX_BOOK_FILE_BYTES + 1]);
        for bytes in cases {
            std::fs::write(&path, &bytes).unwrap();
            assert!(load(&path).is_empty());
        }

        // A file with a valid checksum over a broken structure is refused by the parser.
        let mut body = good[..good.len() - FILE_CHECKSUM_BYTES].to_vec();
        body[6] = 4; // claims four entries, holds three
        let checksum = hash(FILE_CHECKSUM_DOMAIN, &body);
        body.extend_from_slice(checksum.as_bytes());
        std::fs::write(&path, &body).unwrap();
        assert!(load(&path).is_empty());

        // A directory where the file should be is unreadable, not fatal.
        assert!(load(dir.path()).is_empty());
    }

    #[test]
    fn a_forged_record_in_the_file_is_dropped_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.book");
        let mut book = book();
        book.insert(verified(1, NOW), id(300), &no_bans());
        // Bypass verification, as an edit of the file would.
        let mut forged = AddressRecord::sign(&key(2), CHAIN, addr(2), NOW);
        forged.addr = addr(77);
        book.by_age.insert((NOW, forged.node));
        book.entries.insert(
            forged.node,
            Entry {
                record: forged,
                source: id(300),
            },
        );
        book.save(&path).unwrap();
        let loaded = AddressBook::load(&path, id(0), &[], &rules(), NOW, &no_bans());
        assert_eq!(loaded.len(), 1);
        assert!(loaded.get(&id(1)).is_some());
    }
}
