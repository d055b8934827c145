//! Addresses: a hash of a public key, written as bech32m with a network prefix.

use std::fmt;
use std::str::FromStr;

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32m, Hrp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{CryptoError, HashDomain, PublicKey, hash};

/// Which network an address is for. The text prefix differs, so an address copied from one network can
/// never be pasted into another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Network {
    /// The production chain; prefix `time`.
    Mainnet,
    /// The public test chain; prefix `ttime`.
    Testnet,
    /// A local development network; prefix `ltime`.
    Local,
}

impl Network {
    /// The bech32 human-readable part.
    pub const fn hrp(self) -> &'static str {
        match self {
            Network::Mainnet => "time",
            Network::Testnet => "ttime",
            Network::Local => "ltime",
        }
    }

    /// The network a prefix belongs to.
    pub fn from_hrp(hrp: &str) -> Option<Network> {
        [Network::Mainnet, Network::Testnet, Network::Local]
            .into_iter()
            .find(|n| n.hrp() == hrp)
    }

    /// Lower-case name, as used in config files.
    pub const fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Local => "local",
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Version byte of the address payload; lets the format change without ambiguity.
const ADDRESS_VERSION: u8 = 0;

/// The 32-byte hash of an Ed25519 public key that outputs pay to.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address([u8; 32]);

impl Address {
    /// The address of `key`.
    pub fn from_public_key(key: &PublicKey) -> Self {
        Address(*hash(HashDomain::Address, key.as_bytes()).as_bytes())
    }

    /// Wraps raw payload bytes (for decoding and tests).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Address(bytes)
    }

    /// The payload.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The bech32m text for `network`.
    pub fn encode(&self, network: Network) -> String {
        let mut data = Vec::with_capacity(33);
        data.push(ADDRESS_VERSION);
        data.extend_from_slice(&self.0);
        // The HRPs are fixed valid constants and 33 bytes is far below bech32's length limit.
        let hrp = Hrp::parse_unchecked(network.hrp());
        bech32::encode::<Bech32m>(hrp, &data).unwrap_or_default()
    }

    /// Parses text for any known network, returning which.
    pub fn decode(text: &str) -> Result<(Network, Address), CryptoError> {
        let invalid = |reason: String| CryptoError::InvalidAddress { reason };
        let checked = CheckedHrpstring::new::<Bech32m>(text).map_err(|e| invalid(e.to_string()))?;
        let hrp = checked.hrp();
        let network = Network::from_hrp(hrp.as_str())
            .ok_or_else(|| invalid(format!("unknown prefix {:?}", hrp.as_str())))?;
        let data: Vec<u8> = checked.byte_iter().collect();
        match data.split_first() {
            Some((&ADDRESS_VERSION, payload)) => {
                let bytes: [u8; 32] = payload.try_into().map_err(|_| {
                    invalid(format!("payload is {} bytes, expected 32", payload.len()))
                })?;
                Ok((network, Address(bytes)))
            }
            Some((v, _)) => Err(invalid(format!("unknown address version {v}"))),
            None => Err(invalid("empty payload".to_string())),
        }
    }

    /// Parses text, requiring `network`.
    pub fn decode_for(text: &str, network: Network) -> Result<Address, CryptoError> {
        let (found, addr) = Self::decode(text)?;
        if found != network {
            return Err(CryptoError::WrongNetwork {
                expected: network.name(),
                found: found.name().to_string(),
            });
        }
        Ok(addr)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({}…)", hex::encode(&self.0[..8]))
    }
}

/// Displays the mainnet form; use [`Address::encode`] to choose the network.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode(Network::Mainnet))
    }
}

/// Parses an address of any network (the network is then dropped).
impl FromStr for Address {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::decode(s).map(|(_, a)| a)
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::bytes::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::bytes::deserialize(d).map(Address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;

    #[test]
    fn round_trip_on_each_network() {
        let addr = Address::from_public_key(&SecretKey::from_seed(&[9; 32]).public_key());
        for net in [Network::Mainnet, Network::Testnet, Network::Local] {
            let text = addr.encode(net);
            assert!(text.starts_with(net.hrp()));
            assert_eq!(Address::decode(&text), Ok((net, addr)));
            assert_eq!(Address::decode_for(&text, net), Ok(addr));
        }
    }

    #[test]
    fn wrong_network_is_rejected() {
        let addr = Address::from_bytes([3; 32]);
        let text = addr.encode(Network::Testnet);
        assert!(matches!(
            Address::decode_for(&text, Network::Mainnet),
            Err(CryptoError::WrongNetwork { .. })
        ));
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        let text = Address::from_bytes([5; 32]).encode(Network::Mainnet);
        let alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
        let sep = text.rfind('1').unwrap_or(0);
        for i in sep + 1..text.len() {
            for c in alphabet.chars() {
                let mut t: Vec<char> = text.chars().collect();
                if t[i] == c {
                    continue;
                }
                t[i] = c;
                let bad: String = t.into_iter().collect();
                assert!(Address::decode(&bad).is_err(), "accepted {bad}");
            }
        }
    }

    #[test]
    fn bech32_non_m_checksum_is_rejected() {
        let mut data = vec![0u8];
        data.extend_from_slice(&[1; 32]);
        let legacy = bech32::encode::<bech32::Bech32>(Hrp::parse_unchecked("time"), &data).unwrap();
        assert!(Address::decode(&legacy).is_err());
    }
}
