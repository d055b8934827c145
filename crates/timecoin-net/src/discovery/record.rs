//! [`AddressRecord`]: a node's signed statement "I listen at this address", its canonical encoding, and
//! the rules a record must pass before anyone stores or relays it.
//!
//! ```text
//! node key (32) || chain id (4, BE) || timestamp ms (8, BE) || family (1: 4 or 6)
//!   || ip (4 or 16) || port (2, BE) || signature (64)
//! ```
//!
//! The signature is the node key's, under [`SigDomain::PeerAddress`] and the record's chain id, over
//! every byte before it. Only the node itself can say where it listens, so a relay cannot point a node's
//! key at a victim's address; the timestamp lets a newer record replace an older one and lets old ones
//! age out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Deref;

use timecoin_crypto::{ChainId, PublicKey, SIGNATURE_LEN, SigDomain, Signature, Signer};

use crate::{NetError, PeerId};

/// How old a record may be before it is refused: a node re-signs its record well within this (the
/// integrator's refresh interval should be under an hour), so an older one names an address the node
/// may have left.
pub const DEFAULT_MAX_RECORD_AGE_MS: u64 = 3 * 60 * 60 * 1000;

/// How far ahead of our clock a record may be stamped: clock skew between honest nodes, and no more, so
/// a record cannot be made to outlive the age limit by dating it in the future.
pub const DEFAULT_MAX_RECORD_SKEW_MS: u64 = 10 * 60 * 1000;

const IPV4_FAMILY: u8 = 4;
const IPV6_FAMILY: u8 = 6;

/// Bytes signed for an IPv6 record: key, chain, timestamp, family, address, port.
const MAX_SIGNED_BYTES: usize = 32 + 4 + 8 + 1 + 16 + 2;

/// A node's signed address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRecord {
    /// The node key that signed, which is also the key a dialer must expect at `addr`.
    pub node: PeerId,
    /// Where it listens. IPv6 flow info and scope ids are not carried.
    pub addr: SocketAddr,
    /// The chain it is on.
    pub chain_id: ChainId,
    /// When it signed, in Unix milliseconds.
    pub timestamp_ms: u64,
    /// The node key's signature over the rest.
    pub signature: Signature,
}

impl AddressRecord {
    /// The longest encoding (an IPv6 address): the hard bound any decoder checks first.
    pub const MAX_BYTES: usize = MAX_SIGNED_BYTES + SIGNATURE_LEN;

    /// The shortest encoding (an IPv4 address).
    pub const MIN_BYTES: usize = Self::MAX_BYTES - 12;

    /// `signer`'s record for `addr` at `timestamp_ms` on `chain_id`. An IPv4-mapped IPv6 address is
    /// recorded as the IPv4 address it maps, since that is the encoding a decoder accepts.
    pub fn sign(
        signer: &dyn Signer,
        chain_id: ChainId,
        addr: SocketAddr,
        timestamp_ms: u64,
    ) -> Self {
        let addr = canonical(addr);
        let node = PeerId::from(signer.public_key());
        let signed = signed_bytes(&node, chain_id, timestamp_ms, &addr);
        let signature = signer.sign(SigDomain::PeerAddress, chain_id, &signed);
        AddressRecord {
            node,
            addr,
            chain_id,
            timestamp_ms,
            signature,
        }
    }

    /// The canonical encoding (at most [`AddressRecord::MAX_BYTES`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::MAX_BYTES);
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&signed_bytes(
            &self.node,
            self.chain_id,
            self.timestamp_ms,
            &self.addr,
        ));
        out.extend_from_slice(self.signature.as_bytes());
    }

    /// Decodes exactly one record. Anything but a canonical encoding is an error; nothing panics and
    /// nothing is allocated past the record's fixed size.
    pub fn decode(bytes: &[u8]) -> Result<Self, NetError> {
        if bytes.len() > Self::MAX_BYTES {
            return Err(NetError::MalformedAddresses("record longer than its bound"));
        }
        let mut reader = Reader::new(bytes);
        let record = Self::read(&mut reader)?;
        reader.finish()?;
        Ok(record)
    }

    /// Reads one record off the front of `reader`.
    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self, NetError> {
        let node = PeerId::from_bytes(reader.array()?);
        let chain_id = ChainId(u32::from_be_bytes(reader.array()?));
        let timestamp_ms = u64::from_be_bytes(reader.array()?);
        let ip = match reader.byte()? {
            IPV4_FAMILY => IpAddr::V4(Ipv4Addr::from(reader.array::<4>()?)),
            IPV6_FAMILY => {
                let v6 = Ipv6Addr::from(reader.array::<16>()?);
                if v6.to_ipv4_mapped().is_some() {
                    // One address, one encoding: the IPv4 family carries it.
                    return Err(NetError::MalformedAddresses("ipv4-mapped ipv6 address"));
                }
                IpAddr::V6(v6)
            }
            _ => return Err(NetError::MalformedAddresses("unknown address family")),
        };
        let port = u16::from_be_bytes(reader.array()?);
        let signature = Signature::from_bytes(reader.array()?);
        Ok(AddressRecord {
            node,
            addr: SocketAddr::new(ip, port),
            chain_id,
            timestamp_ms,
            signature,
        })
    }

    /// Checks the record against `rules` at `now_ms` (Unix milliseconds), cheapest rule first so a
    /// flood of junk costs no signature checks: chain, freshness, address, then the signature.
    pub fn verify(self, rules: &RecordRules, now_ms: u64) -> Result<VerifiedRecord, NetError> {
        if self.chain_id != rules.chain_id {
            return Err(NetError::AddressWrongChain {
                ours: rules.chain_id,
                theirs: self.chain_id,
            });
        }
        rules.check_fresh(self.timestamp_ms, now_ms)?;
        if !rules.is_dialable(&self.addr) {
            return Err(NetError::AddressNotRoutable(self.addr));
        }
        let key = PublicKey::from_bytes(self.node.as_bytes())
            .map_err(|_| NetError::AddressBadSignature)?;
        let signed = signed_bytes(&self.node, self.chain_id, self.timestamp_ms, &self.addr);
        key.verify(
            SigDomain::PeerAddress,
            self.chain_id,
            &signed,
            &self.signature,
        )
        .map_err(|_| NetError::AddressBadSignature)?;
        Ok(VerifiedRecord(self))
    }
}

/// A record whose chain, freshness (when it was checked), address and signature passed
/// [`AddressRecord::verify`]. The address book takes only these, so an unchecked record cannot reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRecord(AddressRecord);

impl VerifiedRecord {
    /// The record.
    pub fn into_inner(self) -> AddressRecord {
        self.0
    }
}

impl Deref for VerifiedRecord {
    type Target = AddressRecord;

    fn deref(&self) -> &AddressRecord {
        &self.0
    }
}

/// What a record must satisfy to be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRules {
    /// Our chain: a record for another is refused.
    pub chain_id: ChainId,
    /// Oldest accepted, in milliseconds (default [`DEFAULT_MAX_RECORD_AGE_MS`], 3 hours).
    pub max_age_ms: u64,
    /// Furthest in the future accepted, in milliseconds (default [`DEFAULT_MAX_RECORD_SKEW_MS`],
    /// 10 minutes).
    pub max_skew_ms: u64,
    /// Accept loopback, private, link-local and other non-public addresses. Off by default; a local
    /// testnet where every node is on 127.0.0.1 turns it on.
    pub allow_local: bool,
}

impl RecordRules {
    /// The default rules for `chain_id`: public addresses only, 3 hours old at most, 10 minutes of skew.
    pub const fn new(chain_id: ChainId) -> Self {
        RecordRules {
            chain_id,
            max_age_ms: DEFAULT_MAX_RECORD_AGE_MS,
            max_skew_ms: DEFAULT_MAX_RECORD_SKEW_MS,
            allow_local: false,
        }
    }

    /// The same rules, with local addresses allowed or not.
    pub const fn allow_local(mut self, allow: bool) -> Self {
        self.allow_local = allow;
        self
    }

    /// Whether a record stamped `timestamp_ms` is inside the window at `now_ms`.
    pub fn check_fresh(&self, timestamp_ms: u64, now_ms: u64) -> Result<(), NetError> {
        let age_ms = now_ms.saturating_sub(timestamp_ms);
        if age_ms > self.max_age_ms {
            return Err(NetError::AddressTooOld {
                age_ms,
                max_ms: self.max_age_ms,
            });
        }
        let ahead_ms = timestamp_ms.saturating_sub(now_ms);
        if ahead_ms > self.max_skew_ms {
            return Err(NetError::AddressFromFuture {
                ahead_ms,
                max_ms: self.max_skew_ms,
            });
        }
        Ok(())
    }

    /// Whether `addr` may be dialed under these rules. Unspecified addresses, port 0, multicast and
    /// broadcast are never dialable; local ranges only with [`allow_local`](Self::allow_local).
    pub fn is_dialable(&self, addr: &SocketAddr) -> bool {
        if addr.port() == 0 {
            return false;
        }
        match canonical(*addr).ip() {
            IpAddr::V4(ip) => {
                if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
                    return false;
                }
                self.allow_local || is_public_v4(ip)
            }
            IpAddr::V6(ip) => {
                if ip.is_unspecified() || ip.is_multicast() {
                    return false;
                }
                self.allow_local || is_public_v6(ip)
            }
        }
    }
}

/// Whether `ip` is reachable on the public internet (std's `is_global` is not stable).
fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let this_network = a == 0;
    let shared_cgnat = a == 100 && (64..128).contains(&b);
    let protocol_assignments = a == 192 && b == 0 && c == 0;
    let benchmarking = a == 198 && (b == 18 || b == 19);
    let reserved = a >= 240;
    !(this_network
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_documentation()
        || shared_cgnat
        || protocol_assignments
        || benchmarking
        || reserved)
}

/// Whether `ip` is reachable on the public internet: not loopback, unique-local, link-local or
/// documentation space.
fn is_public_v6(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.segments();
    let documentation = first == 0x2001 && second == 0x0db8;
    let discard_only = first == 0x0100 && second == 0;
    !(ip.is_loopback()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || documentation
        || discard_only)
}

/// `addr` as it is encoded: an IPv4-mapped IPv6 address as IPv4, and no IPv6 flow info or scope id.
fn canonical(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    SocketAddr::new(ip, addr.port())
}

fn signed_bytes(node: &PeerId, chain_id: ChainId, timestamp_ms: u64, addr: &SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_SIGNED_BYTES);
    out.extend_from_slice(node.as_bytes());
    out.extend_from_slice(&chain_id.0.to_be_bytes());
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(IPV4_FAMILY);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(IPV6_FAMILY);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// A cursor over untrusted bytes: every read is length-checked and fails instead of panicking.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader(bytes)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], NetError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(NetError::MalformedAddresses("truncated"))?;
        self.0 = rest;
        Ok(*head)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, NetError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    /// Refuses bytes left over after the last field.
    pub(crate) fn finish(self) -> Result<(), NetError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(NetError::MalformedAddresses("trailing bytes"))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use timecoin_crypto::SecretKey;

    use super::*;

    const CHAIN: ChainId = ChainId(7);
    const NOW: u64 = 1_800_000_000_000;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed(&[n; 32])
    }

    fn public(addr: &str) -> SocketAddr {
        addr.parse().unwrap()
    }

    #[test]
    fn a_signed_record_round_trips_and_verifies() {
        for addr in ["8.8.8.8:24100", "[2606:4700::1111]:24100"] {
            let record = AddressRecord::sign(&key(1), CHAIN, public(addr), NOW);
            let bytes = record.encode();
            assert!(bytes.len() <= AddressRecord::MAX_BYTES);
            assert!(bytes.len() >= AddressRecord::MIN_BYTES);
            let decoded = AddressRecord::decode(&bytes).unwrap();
            assert_eq!(decoded, record);
            let verified = decoded.verify(&RecordRules::new(CHAIN), NOW).unwrap();
            assert_eq!(verified.node, PeerId::from(key(1).public_key()));
        }
    }

    #[test]
    fn a_node_identity_signs_a_record_others_accept() {
        let identity = crate::NodeIdentity::new(key(4), CHAIN, timecoin_crypto::Hash::ZERO);
        let record = identity.address_record(public("127.0.0.1:24100"), NOW);
        assert_eq!(record.node, identity.peer_id());
        let rules = RecordRules::new(CHAIN).allow_local(true);
        assert!(record.verify(&rules, NOW).is_ok());
    }

    #[test]
    fn an_edited_record_fails_its_signature() {
        let record = AddressRecord::sign(&key(1), CHAIN, public("8.8.8.8:24100"), NOW);
        let rules = RecordRules::new(CHAIN);
        let mut moved = record.clone();
        moved.addr = public("8.8.4.4:24100");
        assert_eq!(
            moved.verify(&rules, NOW),
            Err(NetError::AddressBadSignature)
        );
        let mut newer = record.clone();
        newer.timestamp_ms += 1;
        assert_eq!(
            newer.verify(&rules, NOW),
            Err(NetError::AddressBadSignature)
        );
        let mut stolen = record;
        stolen.node = PeerId::from(key(2).public_key());
        assert_eq!(
            stolen.verify(&rules, NOW),
            Err(NetError::AddressBadSignature)
        );
    }

    #[test]
    fn a_signature_from_another_domain_does_not_pass_as_an_address() {
        let record = AddressRecord::sign(&key(1), CHAIN, public("8.8.8.8:24100"), NOW);
        let signed = record.encode();
        let body = signed.get(..signed.len() - SIGNATURE_LEN).unwrap();
        let mut forged = record.clone();
        forged.signature = key(1).sign(SigDomain::PeerHandshake, CHAIN, body);
        assert_eq!(
            forged.verify(&RecordRules::new(CHAIN), NOW),
            Err(NetError::AddressBadSignature)
        );
    }

    #[test]
    fn records_for_another_chain_are_refused_before_the_signature() {
        let record = AddressRecord::sign(&key(1), ChainId(8), public("8.8.8.8:24100"), NOW);
        assert_eq!(
            record.verify(&RecordRules::new(CHAIN), NOW),
            Err(NetError::AddressWrongChain {
                ours: CHAIN,
                theirs: ChainId(8)
            })
        );
    }

    #[test]
    fn freshness_window_is_three_hours_back_and_ten_minutes_ahead() {
        let rules = RecordRules::new(CHAIN);
        let at = |ts| AddressRecord::sign(&key(1), CHAIN, public("8.8.8.8:24100"), ts);
        assert!(
            at(NOW - DEFAULT_MAX_RECORD_AGE_MS)
                .verify(&rules, NOW)
                .is_ok()
        );
        assert!(matches!(
            at(NOW - DEFAULT_MAX_RECORD_AGE_MS - 1).verify(&rules, NOW),
            Err(NetError::AddressTooOld { .. })
        ));
        assert!(
            at(NOW + DEFAULT_MAX_RECORD_SKEW_MS)
                .verify(&rules, NOW)
                .is_ok()
        );
        assert!(matches!(
            at(NOW + DEFAULT_MAX_RECORD_SKEW_MS + 1).verify(&rules, NOW),
            Err(NetError::AddressFromFuture { .. })
        ));
        // Extremes of the clock saturate instead of overflowing.
        assert!(at(u64::MAX).verify(&rules, 0).is_err());
        assert!(at(0).verify(&rules, u64::MAX).is_err());
    }

    #[test]
    fn local_addresses_need_allow_local_and_unspecified_ones_never_pass() {
        let public_rules = RecordRules::new(CHAIN);
        let local_rules = RecordRules::new(CHAIN).allow_local(true);
        for local in [
            "127.0.0.1:24100",
            "10.1.2.3:24100",
            "192.168.1.1:24100",
            "172.16.0.1:24100",
            "169.254.1.1:24100",
            "100.64.0.1:24100",
            "192.0.2.1:24100",
            "[::1]:24100",
            "[fd00::1]:24100",
            "[fe80::1]:24100",
            "[2001:db8::1]:24100",
        ] {
            let addr = public(local);
            assert!(!public_rules.is_dialable(&addr), "{addr} passed as public");
            assert!(local_rules.is_dialable(&addr), "{addr} refused locally");
        }
        for never in [
            "0.0.0.0:24100",
            "[::]:24100",
            "8.8.8.8:0",
            "224.0.0.1:24100",
            "255.255.255.255:24100",
            "[ff02::1]:24100",
        ] {
            let addr = public(never);
            assert!(!local_rules.is_dialable(&addr), "{addr} passed");
            let record = AddressRecord::sign(&key(1), CHAIN, addr, NOW);
            assert_eq!(
                record.verify(&local_rules, NOW),
                Err(NetError::AddressNotRoutable(addr))
            );
        }
        assert!(public_rules.is_dialable(&public("8.8.8.8:24100")));
        assert!(public_rules.is_dialable(&public("[2606:4700::1111]:1")));
    }

    #[test]
    fn an_ipv4_mapped_address_is_signed_as_ipv4_and_refused_as_ipv6() {
        let mapped = public("[::ffff:8.8.8.8]:24100");
        let record = AddressRecord::sign(&key(1), CHAIN, mapped, NOW);
        assert_eq!(record.addr, public("8.8.8.8:24100"));
        // The same address spelled as IPv6 on the wire.
        let mut bytes = record.encode();
        bytes.truncate(32 + 4 + 8);
        bytes.push(IPV6_FAMILY);
        bytes.extend_from_slice(&Ipv4Addr::new(8, 8, 8, 8).to_ipv6_mapped().octets());
        bytes.extend_from_slice(&24100u16.to_be_bytes());
        bytes.extend_from_slice(record.signature.as_bytes());
        assert_eq!(
            AddressRecord::decode(&bytes),
            Err(NetError::MalformedAddresses("ipv4-mapped ipv6 address"))
        );
    }

    #[test]
    fn broken_encodings_are_errors() {
        let bytes = AddressRecord::sign(&key(1), CHAIN, public("8.8.8.8:24100"), NOW).encode();
        for len in 0..bytes.len() {
            assert!(AddressRecord::decode(bytes.get(..len).unwrap()).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            AddressRecord::decode(&long),
            Err(NetError::MalformedAddresses("trailing bytes"))
        );
        let mut family = bytes;
        family[44] = 5;
        assert_eq!(
            AddressRecord::decode(&family),
            Err(NetError::MalformedAddresses("unknown address family"))
        );
        assert!(AddressRecord::decode(&[0; AddressRecord::MAX_BYTES + 1]).is_err());
    }

    #[test]
    fn a_key_that_is_not_a_point_fails_as_a_bad_signature() {
        let mut record = AddressRecord::sign(&key(1), CHAIN, public("8.8.8.8:24100"), NOW);
        // y = 2^255 - 1 is not a canonical field element.
        record.node = PeerId::from_bytes([0xff; 32]);
        assert_eq!(
            record.verify(&RecordRules::new(CHAIN), NOW),
            Err(NetError::AddressBadSignature)
        );
    }

    /// BLAKE3 of an encoding, as hex: a short fingerprint of the exact bytes.
    pub(crate) fn fingerprint(bytes: &[u8]) -> String {
        timecoin_crypto::hash(
            timecoin_crypto::HashDomain::Custom("timecoin test fixture"),
            bytes,
        )
        .to_hex()
    }

    #[test]
    fn the_wire_format_of_known_records_does_not_change() {
        // Ed25519 signing is deterministic, so these bytes are fixed. A failure means every node's
        // signed record and every saved book changed with it: update the fixtures only for a
        // deliberate, versioned format change (a new signature domain tag and file version).
        let v4 = AddressRecord::sign(&key(1), CHAIN, public("8.8.8.8:24100"), NOW);
        let v6 = AddressRecord::sign(&key(2), CHAIN, public("[2606:4700::1111]:24100"), NOW);
        let message = crate::discovery::AddressMessage::Addresses(vec![v4.clone(), v6.clone()]);
        let actual = [
            ("ipv4 record", fingerprint(&v4.encode())),
            ("ipv6 record", fingerprint(&v6.encode())),
            ("addresses", fingerprint(&message.encode().unwrap())),
        ];
        let expected = [
            (
                "ipv4 record",
                "e5758c88ff9debd216bd523b3e4f8efec529d5ceb5bf44d6d9c706065839972e",
            ),
            (
                "ipv6 record",
                "ccd6554d0e07f78a14af7c783754f62bd3075a13966e5046d9d52d950d6d3fee",
            ),
            (
                "addresses",
                "8c5aac78dc7e1a341504992818b4fba1f136066837ed9a9aadbc974e50b57d62",
            ),
        ];
        assert_eq!(actual, expected.map(|(name, hex)| (name, hex.to_string())));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics_and_what_decodes_is_canonical(
            bytes in proptest::collection::vec(any::<u8>(), 0..(AddressRecord::MAX_BYTES + 8))
        ) {
            if let Ok(record) = AddressRecord::decode(&bytes) {
                prop_assert_eq!(record.encode(), bytes);
                let _ = record.verify(&RecordRules::new(CHAIN).allow_local(true), NOW);
            }
        }

        #[test]
        fn decoding_mutated_records_never_panics(
            seed in any::<u8>(),
            flips in proptest::collection::vec((0usize..AddressRecord::MAX_BYTES, any::<u8>()), 1..6),
            v6 in any::<bool>(),
        ) {
            let addr = if v6 { public("[2606:4700::1111]:24100") } else { public("8.8.8.8:24100") };
            let mut bytes = AddressRecord::sign(&key(seed), CHAIN, addr, NOW).encode();
            let len = bytes.len();
            for (at, xor) in flips {
                if let Some(b) = bytes.get_mut(at % len) {
                    *b ^= xor;
                }
            }
            if let Ok(record) = AddressRecord::decode(&bytes) {
                prop_assert_eq!(record.encode(), bytes);
                let _ = record.verify(&RecordRules::new(CHAIN), NOW);
            }
        }
    }
}
