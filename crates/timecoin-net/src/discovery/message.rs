//! [`AddressMessage`]: the discovery gossip between two peers.
//!
//! ```text
//! GetAddresses:  0x01
//! Addresses:     0x02 || count (1) || count records, each in its canonical encoding
//! ```
//!
//! A record's encoding is self-delimiting (its family byte fixes its length), so records need no length
//! prefix. The count is checked against [`MAX_ADDRESSES_PER_MESSAGE`] before anything is allocated, and
//! the whole message against [`MAX_ADDRESS_MESSAGE_BYTES`] before anything is read.

use crate::NetError;
use crate::discovery::record::{AddressRecord, Reader};

/// Most records in one `Addresses` message: enough to fill a fresh node's outbound slots several times
/// over from one answer, few enough that one message is a few KiB.
pub const MAX_ADDRESSES_PER_MESSAGE: usize = 32;

/// The longest encoded message: the tag, the count, and that many IPv6 records.
pub const MAX_ADDRESS_MESSAGE_BYTES: usize =
    2 + MAX_ADDRESSES_PER_MESSAGE * AddressRecord::MAX_BYTES;

const GET_ADDRESSES_TAG: u8 = 0x01;
const ADDRESSES_TAG: u8 = 0x02;

/// One discovery message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressMessage {
    /// "Send me addresses you know." Answered with a random sample, never with records the asker gave
    /// us (see [`AddressBook::answer`](crate::discovery::AddressBook::answer)).
    GetAddresses,
    /// Records the sender knows: an answer, or new ones relayed. At most
    /// [`MAX_ADDRESSES_PER_MESSAGE`]; each must still be verified by the receiver.
    Addresses(Vec<AddressRecord>),
}

impl AddressMessage {
    /// The canonical encoding. An `Addresses` with more than [`MAX_ADDRESSES_PER_MESSAGE`] records is
    /// refused rather than sent, since every receiver would refuse it.
    pub fn encode(&self) -> Result<Vec<u8>, NetError> {
        match self {
            AddressMessage::GetAddresses => Ok(vec![GET_ADDRESSES_TAG]),
            AddressMessage::Addresses(records) => {
                let count = u8::try_from(records.len())
                    .ok()
                    .filter(|n| usize::from(*n) <= MAX_ADDRESSES_PER_MESSAGE)
                    .ok_or(NetError::TooManyAddresses {
                        count: records.len(),
                        max: MAX_ADDRESSES_PER_MESSAGE,
                    })?;
                let mut out = Vec::with_capacity(2 + records.len() * AddressRecord::MAX_BYTES);
                out.push(ADDRESSES_TAG);
                out.push(count);
                for record in records {
                    record.encode_into(&mut out);
                }
                Ok(out)
            }
        }
    }

    /// Decodes one message from a peer. Anything but a canonical encoding within the bounds is an
    /// error; it never panics, and allocates at most [`MAX_ADDRESSES_PER_MESSAGE`] records.
    pub fn decode(bytes: &[u8]) -> Result<Self, NetError> {
        if bytes.len() > MAX_ADDRESS_MESSAGE_BYTES {
            return Err(NetError::MalformedAddresses(
                "message longer than its bound",
            ));
        }
        let mut reader = Reader::new(bytes);
        let message = match reader.byte()? {
            GET_ADDRESSES_TAG => AddressMessage::GetAddresses,
            ADDRESSES_TAG => {
                let count = usize::from(reader.byte()?);
                if count > MAX_ADDRESSES_PER_MESSAGE {
                    return Err(NetError::TooManyAddresses {
                        count,
                        max: MAX_ADDRESSES_PER_MESSAGE,
                    });
                }
                let mut records = Vec::with_capacity(count);
                for _ in 0..count {
                    records.push(AddressRecord::read(&mut reader)?);
                }
                AddressMessage::Addresses(records)
            }
            _ => return Err(NetError::MalformedAddresses("unknown message tag")),
        };
        reader.finish()?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use proptest::prelude::*;
    use timecoin_crypto::{ChainId, SecretKey};

    use super::*;
    use crate::Channel;

    fn record(n: u8, addr: &str) -> AddressRecord {
        let addr: SocketAddr = addr.parse().unwrap();
        AddressRecord::sign(&SecretKey::from_seed(&[n; 32]), ChainId(1), addr, 1_000)
    }

    #[test]
    fn both_messages_round_trip() {
        let get = AddressMessage::GetAddresses;
        assert_eq!(AddressMessage::decode(&get.encode().unwrap()).unwrap(), get);
        let records = (0..MAX_ADDRESSES_PER_MESSAGE as u8)
            .map(|n| {
                if n % 2 == 0 {
                    record(n, "8.8.8.8:1")
                } else {
                    record(n, "[2606:4700::1]:2")
                }
            })
            .collect();
        let full = AddressMessage::Addresses(records);
        let bytes = full.encode().unwrap();
        assert!(bytes.len() <= MAX_ADDRESS_MESSAGE_BYTES);
        assert_eq!(AddressMessage::decode(&bytes).unwrap(), full);
        let empty = AddressMessage::Addresses(Vec::new());
        assert_eq!(
            AddressMessage::decode(&empty.encode().unwrap()).unwrap(),
            empty
        );
    }

    #[test]
    fn a_full_message_fits_the_smallest_channel() {
        for channel in Channel::ALL {
            assert!(channel.check_len(MAX_ADDRESS_MESSAGE_BYTES).is_ok());
        }
    }

    #[test]
    fn too_many_records_are_refused_both_ways() {
        let many =
            AddressMessage::Addresses(vec![record(1, "8.8.8.8:1"); MAX_ADDRESSES_PER_MESSAGE + 1]);
        assert!(matches!(
            many.encode(),
            Err(NetError::TooManyAddresses { count: 33, .. })
        ));
        let header = [ADDRESSES_TAG, (MAX_ADDRESSES_PER_MESSAGE + 1) as u8];
        assert_eq!(
            AddressMessage::decode(&header),
            Err(NetError::TooManyAddresses {
                count: MAX_ADDRESSES_PER_MESSAGE + 1,
                max: MAX_ADDRESSES_PER_MESSAGE
            })
        );
        let huge = AddressMessage::Addresses(vec![record(1, "8.8.8.8:1"); 300]);
        assert!(huge.encode().is_err());
    }

    #[test]
    fn malformed_messages_are_errors_that_cost_the_sender() {
        let good = AddressMessage::Addresses(vec![record(1, "8.8.8.8:1")])
            .encode()
            .unwrap();
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x00],
            vec![0x03],
            vec![GET_ADDRESSES_TAG, 0],
            vec![ADDRESSES_TAG],
            vec![ADDRESSES_TAG, 2],
            vec![0; MAX_ADDRESS_MESSAGE_BYTES + 1],
        ];
        cases.push(good.get(..good.len() - 1).unwrap().to_vec());
        let mut trailing = good;
        trailing.push(0);
        cases.push(trailing);
        for bytes in cases {
            let err = AddressMessage::decode(&bytes).unwrap_err();
            assert_eq!(
                err.misbehavior(),
                Some(crate::Misbehavior::Malformed),
                "{err}"
            );
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_messages_never_panics_and_is_canonical(
            bytes in proptest::collection::vec(any::<u8>(), 0..600)
        ) {
            if let Ok(message) = AddressMessage::decode(&bytes) {
                prop_assert_eq!(message.encode().unwrap(), bytes);
            }
        }
    }
}
