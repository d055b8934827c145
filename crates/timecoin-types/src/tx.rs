//! Transactions: outpoints, inputs, outputs, ids, the message each input signs, and stateless checks.

use std::collections::HashMap;
use std::fmt;

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};
use timecoin_crypto::{
    Address, ChainId, Hash, HashDomain, Hasher, PublicKey, SecretKey, SigDomain, Signature, hash,
};

use crate::{Amount, ChainParams, MasternodeRegistration, TypesError, Wire, codec};

/// Transaction version this software creates and accepts.
pub const TX_VERSION: u16 = 1;

/// A transaction id: the hash of the transaction without its signatures, so re-signing (or mauling a
/// signature) never changes it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TxId(pub Hash);

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxId({}…)", &self.0.to_hex()[..16])
    }
}

/// A reference to one output of a transaction.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct OutPoint {
    /// The transaction.
    pub txid: TxId,
    /// The output's position.
    pub vout: u32,
}

impl fmt::Display for OutPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.txid, self.vout)
    }
}

/// An output: an amount paid to an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxOut {
    /// Amount.
    pub amount: Amount,
    /// Recipient.
    pub address: Address,
}

/// An input: the output it spends, the key that owns it, and that key's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxIn {
    /// The output being spent.
    pub prevout: OutPoint,
    /// Must hash to the spent output's address.
    pub public_key: PublicKey,
    /// Over [`Transaction::input_message`].
    pub signature: Signature,
}

/// What a transaction does besides moving coins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxKind {
    /// A plain payment.
    Transfer,
    /// Registers a masternode.
    RegisterMasternode(MasternodeRegistration),
    /// Withdraws a masternode. The registry (outside this crate) checks that the transaction is signed by
    /// the masternode's owner.
    DeregisterMasternode {
        /// The operator key it registered with.
        operator_key: PublicKey,
    },
    /// The masternode reward paid at `height`: no inputs, one output per paid owner. Valid only as the
    /// first transaction of the block at that height, and only exactly as the node's reward schedule
    /// computes it (see [`crate::check_block_with`]); never in a mempool.
    Reward {
        /// The height of the block that pays it (makes every reward's txid distinct).
        height: crate::Height,
    },
}

/// A transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Format version; see [`TX_VERSION`].
    pub version: u16,
    /// Spent outputs.
    pub inputs: Vec<TxIn>,
    /// New outputs.
    pub outputs: Vec<TxOut>,
    /// Payment or masternode operation.
    pub kind: TxKind,
}

impl Wire for Transaction {
    const NAME: &'static str = "transaction";
    const MAX_ENCODED_LEN: usize = crate::MAX_TX_BYTES;
}

/// The transaction without its signatures: what the id is taken over.
struct Unsigned<'a>(&'a Transaction);
struct InputsWithoutSignatures<'a>(&'a [TxIn]);

impl Serialize for InputsWithoutSignatures<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for input in self.0 {
            seq.serialize_element(&(&input.prevout, &input.public_key))?;
        }
        seq.end()
    }
}

impl Serialize for Unsigned<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("UnsignedTransaction", 4)?;
        st.serialize_field("version", &self.0.version)?;
        st.serialize_field("inputs", &InputsWithoutSignatures(&self.0.inputs))?;
        st.serialize_field("outputs", &self.0.outputs)?;
        st.serialize_field("kind", &self.0.kind)?;
        st.end()
    }
}

/// Length of the message an input signs: txid (32) ‖ input index (4) ‖ spent amount (8).
pub const INPUT_MESSAGE_LEN: usize = 44;

impl Transaction {
    /// The id, over the unsigned transaction.
    pub fn txid(&self) -> TxId {
        TxId(hash(HashDomain::TxId, &codec::encode(&Unsigned(self))))
    }

    /// The witness hash: the txid and every input's signature, in order. The txid binds everything but
    /// the signatures and fixes how many there are, so this binds the whole transaction as decoded; a
    /// block header commits to it so that nobody who relays a block can swap its signatures.
    pub fn witness_hash(&self, txid: &TxId) -> Hash {
        let mut h = Hasher::new(HashDomain::TxWitness);
        h.update(txid.0.as_bytes());
        for input in &self.inputs {
            h.update(input.signature.as_bytes());
        }
        h.finalize()
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        codec::encoded_len(self)
    }

    /// The message input `index` signs (the chain id and purpose are added by the signature's domain).
    ///
    /// It commits to the whole unsigned transaction (through the txid), to the input's position (so a
    /// signature cannot be moved to another input) and to the amount of the output spent (so an offline
    /// signer cannot be lied to about what it spends).
    pub fn input_message(txid: &TxId, index: u32, spent_amount: Amount) -> [u8; INPUT_MESSAGE_LEN] {
        let mut m = [0u8; INPUT_MESSAGE_LEN];
        m[..32].copy_from_slice(txid.0.as_bytes());
        m[32..36].copy_from_slice(&index.to_le_bytes());
        m[36..].copy_from_slice(&spent_amount.as_sat().to_le_bytes());
        m
    }

    /// Sum of outputs, or an error on overflow.
    pub fn output_total(&self) -> Result<Amount, TypesError> {
        Amount::checked_sum(self.outputs.iter().map(|o| o.amount)).ok_or(TypesError::OutputOverflow)
    }

    /// The rules that need no state: version, non-empty inputs and outputs, counts, no duplicate input,
    /// no dust, no overflow, well-formed registration, size.
    pub fn check(&self, params: &ChainParams) -> Result<(), TypesError> {
        if self.version != TX_VERSION {
            return Err(TypesError::UnsupportedVersion(self.version));
        }
        let reward = matches!(self.kind, TxKind::Reward { .. });
        if reward && !self.inputs.is_empty() {
            return Err(TypesError::BadReward {
                reason: "a reward spends nothing".into(),
            });
        }
        if self.inputs.is_empty() && !reward {
            return Err(TypesError::NoInputs);
        }
        if self.outputs.is_empty() {
            return Err(TypesError::NoOutputs);
        }
        if self.inputs.len() > crate::MAX_TX_INPUTS {
            return Err(TypesError::TooManyInputs {
                count: self.inputs.len(),
                max: crate::MAX_TX_INPUTS,
            });
        }
        if self.outputs.len() > crate::MAX_TX_OUTPUTS {
            return Err(TypesError::TooManyOutputs {
                count: self.outputs.len(),
                max: crate::MAX_TX_OUTPUTS,
            });
        }
        let len = self.encoded_len();
        if len > params.tx_limit() {
            return Err(TypesError::TooLarge {
                what: "transaction",
                len,
                max: params.tx_limit(),
            });
        }
        let mut seen: HashMap<&OutPoint, usize> = HashMap::with_capacity(self.inputs.len());
        for (index, input) in self.inputs.iter().enumerate() {
            if let Some(first) = seen.insert(&input.prevout, index) {
                return Err(TypesError::DuplicateInput {
                    index,
                    first,
                    outpoint: input.prevout,
                });
            }
        }
        for (index, out) in self.outputs.iter().enumerate() {
            if out.amount < params.min_dust {
                return Err(TypesError::DustOutput {
                    index,
                    amount: out.amount,
                    min: params.min_dust,
                });
            }
        }
        self.output_total()?;
        if let TxKind::RegisterMasternode(reg) = &self.kind {
            reg.check()?;
        }
        Ok(())
    }
}

/// Builds and signs a transaction.
///
/// ```
/// use timecoin_crypto::{Address, SecretKey};
/// use timecoin_types::{Amount, ChainParams, OutPoint, TxBuilder, TxOut};
/// use timecoin_crypto::Network;
///
/// let params = ChainParams::for_network(Network::Local);
/// let key = SecretKey::from_seed(&[1; 32]);
/// let coin = OutPoint::default();
/// let tx = TxBuilder::new(params.chain_id)
///     .input(coin, Amount::from_sat(10_000), &key)
///     .output(Address::from_public_key(&key.public_key()), Amount::from_sat(9_000))
///     .sign();
/// assert!(tx.check(&params).is_ok());
/// ```
pub struct TxBuilder<'k> {
    chain: ChainId,
    inputs: Vec<(OutPoint, Amount, &'k SecretKey)>,
    outputs: Vec<TxOut>,
    kind: TxKind,
}

impl<'k> TxBuilder<'k> {
    /// A transfer on `chain`.
    pub fn new(chain: ChainId) -> Self {
        TxBuilder {
            chain,
            inputs: Vec::new(),
            outputs: Vec::new(),
            kind: TxKind::Transfer,
        }
    }

    /// Spends `prevout`, worth `amount`, owned by `key`.
    pub fn input(mut self, prevout: OutPoint, amount: Amount, key: &'k SecretKey) -> Self {
        self.inputs.push((prevout, amount, key));
        self
    }

    /// Pays `amount` to `address`.
    pub fn output(mut self, address: Address, amount: Amount) -> Self {
        self.outputs.push(TxOut { amount, address });
        self
    }

    /// Sets the kind (default: transfer).
    pub fn kind(mut self, kind: TxKind) -> Self {
        self.kind = kind;
        self
    }

    /// Signs every input.
    pub fn sign(self) -> Transaction {
        let placeholder = Signature::from_bytes([0; 64]);
        let mut tx = Transaction {
            version: TX_VERSION,
            inputs: self
                .inputs
                .iter()
                .map(|(prevout, _, key)| TxIn {
                    prevout: *prevout,
                    public_key: key.public_key(),
                    signature: placeholder,
                })
                .collect(),
            outputs: self.outputs,
            kind: self.kind,
        };
        let txid = tx.txid();
        for (index, (input, (_, amount, key))) in tx.inputs.iter_mut().zip(&self.inputs).enumerate()
        {
            let msg = Transaction::input_message(&txid, index as u32, *amount);
            input.signature = key.sign(SigDomain::TxInput, self.chain, &msg);
        }
        tx
    }
}
