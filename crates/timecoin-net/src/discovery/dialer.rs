//! [`DialSchedule`]: which addresses to dial next, given the address book, the connected peers and how
//! often each address has failed.
//!
//! Every address that fails waits `base × 2^(failures − 1)`, capped, before it is tried again, and the
//! wait is jittered (uniform in its upper half) so that nodes restarted together do not redial in step.
//! Seeds from the configuration are never dropped: they back off like any address, up to the cap, and
//! are retried for as long as they are not connected. Candidates are shuffled (seeds first), so the
//! book's key order never decides whom a node connects to.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use rand::Rng;
use rand::seq::SliceRandom;

use crate::discovery::book::{AddressBook, BanCheck, MAX_BOOK_ENTRIES, MAX_SEEDS};
use crate::{PeerId, SeedPeer};

/// The wait after an address's first failure: 1 second.
pub const DIAL_BACKOFF_BASE_MS: u64 = 1_000;

/// The longest wait between attempts on one address, however often it failed: 10 minutes.
pub const DIAL_BACKOFF_CAP_MS: u64 = 10 * 60 * 1_000;

/// How long an attempt whose outcome was never reported keeps its address off the list: longer than a
/// handshake may take, so an address is not dialed twice at once, yet short enough that a lost report
/// only delays a retry.
pub const DIAL_ATTEMPT_GRACE_MS: u64 = 30 * 1_000;

/// Addresses whose dial state (failures, next attempt) is remembered: every record the book can hold
/// and every seed. Past it, the state with the fewest failures is forgotten (that address is the one
/// least hurt by being retried sooner).
pub const MAX_DIAL_STATES: usize = MAX_BOOK_ENTRIES + MAX_SEEDS;

/// One address to dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DialCandidate {
    /// Where to dial.
    pub addr: SocketAddr,
    /// The node key the peer there must prove, when known (always, for a book record).
    pub key: Option<PeerId>,
    /// Whether it is a configured seed.
    pub seed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DialState {
    /// Failures in a row.
    failures: u32,
    /// Not dialed before this Unix millisecond.
    next_attempt_ms: u64,
}

/// The dial plan of one node.
///
/// Bound: [`MAX_SEEDS`] seeds and [`MAX_DIAL_STATES`] remembered addresses.
#[derive(Debug)]
pub struct DialSchedule {
    /// The configured seeds, tried before book records. Bound: [`MAX_SEEDS`].
    seeds: Vec<SeedPeer>,
    /// Failures and next attempt per address. Bound: [`MAX_DIAL_STATES`].
    states: BTreeMap<SocketAddr, DialState>,
}

/// The wait before retrying an address that has failed `failures` times in a row: the base doubled per
/// failure after the first, capped at [`DIAL_BACKOFF_CAP_MS`], then jittered uniformly into its upper
/// half.
pub fn backoff_ms<R: Rng + ?Sized>(failures: u32, rng: &mut R) -> u64 {
    let doublings = failures.saturating_sub(1);
    let full = 1u64
        .checked_shl(doublings)
        .and_then(|factor| DIAL_BACKOFF_BASE_MS.checked_mul(factor))
        .map_or(DIAL_BACKOFF_CAP_MS, |ms| ms.min(DIAL_BACKOFF_CAP_MS));
    rng.gen_range(full / 2..=full)
}

impl DialSchedule {
    /// A schedule that keeps dialing `seeds` (the first [`MAX_SEEDS`] of them).
    pub fn new(seeds: &[SeedPeer]) -> Self {
        DialSchedule {
            seeds: seeds.iter().take(MAX_SEEDS).cloned().collect(),
            states: BTreeMap::new(),
        }
    }

    /// Up to `want` addresses to dial now (the free outbound slots): seeds first, then records from
    /// `book`, each group shuffled. Skipped: peers in `connected` (by key, or by address for a seed
    /// without one), banned nodes or addresses, and addresses still waiting out a backoff or an attempt
    /// in flight. Each returned address is marked as attempted at `now_ms`; report its outcome with
    /// [`dial_failed`](Self::dial_failed) or [`dial_succeeded`](Self::dial_succeeded).
    pub fn next_dials<R: Rng + ?Sized>(
        &mut self,
        book: &AddressBook,
        connected: &BTreeMap<PeerId, SocketAddr>,
        want: usize,
        now_ms: u64,
        bans: &impl BanCheck,
        rng: &mut R,
    ) -> Vec<DialCandidate> {
        if want == 0 {
            return Vec::new();
        }
        let connected_addrs: BTreeSet<&SocketAddr> = connected.values().collect();
        let is_open = |key: Option<&PeerId>, addr: &SocketAddr| {
            !key.is_some_and(|k| connected.contains_key(k))
                && !connected_addrs.contains(addr)
                && !bans.is_banned(key, addr)
                && self
                    .states
                    .get(addr)
                    .is_none_or(|s| s.next_attempt_ms <= now_ms)
        };
        let mut seeds: Vec<DialCandidate> = self
            .seeds
            .iter()
            .filter(|s| is_open(s.key.as_ref(), &s.addr))
            .map(|s| DialCandidate {
                addr: s.addr,
                key: s.key,
                seed: true,
            })
            .collect();
        let seed_addrs: BTreeSet<SocketAddr> = self.seeds.iter().map(|s| s.addr).collect();
        let mut records: Vec<DialCandidate> = book
            .records()
            .filter(|r| !seed_addrs.contains(&r.addr) && is_open(Some(&r.node), &r.addr))
            .map(|r| DialCandidate {
                addr: r.addr,
                key: Some(r.node),
                seed: false,
            })
            .collect();
        seeds.shuffle(rng);
        records.shuffle(rng);
        let chosen: Vec<DialCandidate> = seeds.into_iter().chain(records).take(want).collect();
        for candidate in &chosen {
            let grace = now_ms.saturating_add(DIAL_ATTEMPT_GRACE_MS);
            self.state_mut(candidate.addr).next_attempt_ms = grace;
        }
        chosen
    }

    /// The dial to `addr` failed at `now_ms`: it waits out a longer backoff before the next attempt.
    pub fn dial_failed<R: Rng + ?Sized>(&mut self, addr: SocketAddr, now_ms: u64, rng: &mut R) {
        let state = self.state_mut(addr);
        state.failures = state.failures.saturating_add(1);
        let wait = backoff_ms(state.failures, rng);
        state.next_attempt_ms = now_ms.saturating_add(wait);
    }

    /// The dial to `addr` succeeded: its failures are forgotten.
    pub fn dial_succeeded(&mut self, addr: &SocketAddr) {
        self.states.remove(addr);
    }

    /// Failures in a row of `addr`.
    pub fn failures(&self, addr: &SocketAddr) -> u32 {
        self.states.get(addr).map_or(0, |s| s.failures)
    }

    /// When `addr` may next be dialed (Unix milliseconds); `None` if it may be dialed now.
    pub fn next_attempt_ms(&self, addr: &SocketAddr) -> Option<u64> {
        self.states.get(addr).map(|s| s.next_attempt_ms)
    }

    /// Addresses whose state is remembered.
    pub fn tracked(&self) -> usize {
        self.states.len()
    }

    fn state_mut(&mut self, addr: SocketAddr) -> &mut DialState {
        if !self.states.contains_key(&addr) && self.states.len() >= MAX_DIAL_STATES {
            let least_failed = self
                .states
                .iter()
                .min_by_key(|(a, s)| (s.failures, **a))
                .map(|(a, _)| *a);
            if let Some(gone) = least_failed {
                self.states.remove(&gone);
            }
        }
        self.states.entry(addr).or_insert(DialState {
            failures: 0,
            next_attempt_ms: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use timecoin_crypto::ChainId;

    use super::*;
    use crate::discovery::test_nodes::{NOW, addr, id, key, no_bans};
    use crate::discovery::{AddressRecord, RecordRules};

    const CHAIN: ChainId = ChainId(5);

    fn book_of(nodes: impl IntoIterator<Item = u16>) -> AddressBook {
        let mut book = AddressBook::new(id(0), &[]);
        for n in nodes {
            let record = AddressRecord::sign(&key(n), CHAIN, addr(n), NOW)
                .verify(&RecordRules::new(CHAIN), NOW)
                .unwrap();
            book.insert(record, id(999), &no_bans());
        }
        book
    }

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn backoff_doubles_from_one_second_to_ten_minutes_with_jitter() {
        let mut r = rng(1);
        for failures in 0..80 {
            let full = if failures <= 1 {
                DIAL_BACKOFF_BASE_MS
            } else if failures > 20 {
                DIAL_BACKOFF_CAP_MS
            } else {
                (DIAL_BACKOFF_BASE_MS << (failures - 1)).min(DIAL_BACKOFF_CAP_MS)
            };
            for _ in 0..20 {
                let wait = backoff_ms(failures, &mut r);
                assert!(
                    wait >= full / 2 && wait <= full,
                    "{failures}: {wait} vs {full}"
                );
            }
        }
        assert!(backoff_ms(u32::MAX, &mut r) <= DIAL_BACKOFF_CAP_MS);
        let waits: BTreeSet<u64> = (0..20).map(|_| backoff_ms(5, &mut r)).collect();
        assert!(waits.len() > 1, "the wait is jittered");
    }

    #[test]
    fn a_failing_address_waits_out_its_backoff_and_a_success_resets_it() {
        let book = book_of([1]);
        let mut schedule = DialSchedule::new(&[]);
        let connected = BTreeMap::new();
        let mut r = rng(2);
        let first = schedule.next_dials(&book, &connected, 8, NOW, &no_bans(), &mut r);
        assert_eq!(
            first,
            vec![DialCandidate {
                addr: addr(1),
                key: Some(id(1)),
                seed: false
            }]
        );
        assert!(
            schedule
                .next_dials(&book, &connected, 8, NOW + 1, &no_bans(), &mut r)
                .is_empty(),
            "not twice while the attempt is in flight"
        );

        let mut now = NOW + 100;
        for failures in 1..=15u32 {
            schedule.dial_failed(addr(1), now, &mut r);
            assert_eq!(schedule.failures(&addr(1)), failures);
            let next = schedule.next_attempt_ms(&addr(1)).unwrap();
            assert!(next - now <= DIAL_BACKOFF_CAP_MS);
            assert!(
                schedule
                    .next_dials(&book, &connected, 8, next - 1, &no_bans(), &mut r)
                    .is_empty()
            );
            assert_eq!(
                schedule
                    .next_dials(&book, &connected, 8, next, &no_bans(), &mut r)
                    .len(),
                1
            );
            now = next + 1;
        }
        schedule.dial_succeeded(&addr(1));
        assert_eq!(schedule.failures(&addr(1)), 0);
        assert_eq!(schedule.next_attempt_ms(&addr(1)), None);
    }

    #[test]
    fn connected_and_banned_peers_are_not_dialed() {
        let book = book_of(1..=4);
        let mut schedule = DialSchedule::new(&[]);
        let mut connected = BTreeMap::new();
        connected.insert(id(1), addr(1));
        // Connected under another address (it dialed us): still connected.
        connected.insert(id(2), SocketAddr::from(([1, 2, 3, 4], 5555)));
        let banned = id(3);
        let bans = move |node: Option<&PeerId>, _: &SocketAddr| node == Some(&banned);
        let dials = schedule.next_dials(&book, &connected, 8, NOW, &bans, &mut rng(3));
        assert_eq!(dials.len(), 1);
        assert_eq!(dials[0].key, Some(id(4)));
    }

    #[test]
    fn seeds_come_first_and_are_always_retried() {
        let book = book_of(1..=10);
        let seeds = [
            SeedPeer {
                addr: addr(100),
                key: Some(id(100)),
            },
            SeedPeer {
                addr: addr(101),
                key: None,
            },
        ];
        let mut schedule = DialSchedule::new(&seeds);
        let connected = BTreeMap::new();
        let mut r = rng(4);
        let dials = schedule.next_dials(&book, &connected, 3, NOW, &no_bans(), &mut r);
        assert_eq!(dials.len(), 3);
        assert!(dials[0].seed && dials[1].seed && !dials[2].seed);

        // Seeds that keep failing reach the cap and are still offered after it.
        let mut now = NOW;
        for _ in 0..40 {
            for seed in &seeds {
                schedule.dial_failed(seed.addr, now, &mut r);
            }
            now += DIAL_BACKOFF_CAP_MS;
        }
        let again = schedule.next_dials(&book, &connected, 20, now, &no_bans(), &mut r);
        assert_eq!(again.iter().filter(|c| c.seed).count(), 2);

        // A keyless seed is recognised as connected by its address.
        let mut connected = BTreeMap::new();
        connected.insert(id(555), addr(101));
        connected.insert(id(100), SocketAddr::from(([1, 1, 1, 1], 1)));
        let later = now + 2 * DIAL_BACKOFF_CAP_MS;
        let none = schedule.next_dials(&book, &connected, 20, later, &no_bans(), &mut r);
        assert!(none.iter().all(|c| !c.seed));
    }

    #[test]
    fn the_order_is_shuffled_by_the_rng_and_bounded_by_the_free_slots() {
        let book = book_of(1..=30);
        let connected = BTreeMap::new();
        let plan = |seed| {
            DialSchedule::new(&[]).next_dials(
                &book,
                &connected,
                10,
                NOW,
                &no_bans(),
                &mut rng(seed),
            )
        };
        assert_eq!(plan(7), plan(7));
        assert_ne!(plan(7), plan(8));
        assert_eq!(plan(7).len(), 10);
        assert!(
            DialSchedule::new(&[])
                .next_dials(&book, &connected, 0, NOW, &no_bans(), &mut rng(1))
                .is_empty()
        );
    }

    #[test]
    fn dial_states_stay_bounded() {
        let mut schedule = DialSchedule::new(&[]);
        let mut r = rng(5);
        let hot = addr(1);
        schedule.dial_failed(hot, NOW, &mut r);
        schedule.dial_failed(hot, NOW, &mut r);
        for n in 0..(MAX_DIAL_STATES as u32 + 50) {
            let a = SocketAddr::from((n.to_be_bytes(), 1));
            schedule.dial_failed(a, NOW, &mut r);
        }
        assert_eq!(schedule.tracked(), MAX_DIAL_STATES);
        assert_eq!(
            schedule.failures(&hot),
            2,
            "the most-failed address is kept"
        );
    }
}
