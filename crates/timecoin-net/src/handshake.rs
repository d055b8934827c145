//! The handshake: Noise XX, then each side proves which node (and which masternode) it is.
//!
//! ```text
//! dialer (initiator)                                  listener (responder)
//!   -> e                      payload: Hello (clear)       checks version, chain, genesis
//!   <- e, ee, s, es           payload: Hello (encrypted)   dialer checks the same
//!   -> s, se                  payload: empty
//!   == both hold h, the final handshake hash; everything below is Noise transport messages ==
//!   <- IdentityProof(responder, h)                         verified against h and the expected key
//!   -> IdentityProof(initiator, h)                         verified against h
//! ```
//!
//! XX because neither side needs to know the other's Noise key in advance: identity lives in the
//! Ed25519 node key, and each side binds its Noise session to it by signing `h`. The hash covers both
//! ephemeral and both static Noise keys, so it is fresh for every session: a proof recorded from one
//! session does not verify in another, and a man in the middle (who must run two sessions with two
//! hashes) cannot pass one side's proof to the other. The role byte in the signed bytes keeps a peer
//! from reflecting our own proof back at us. The Noise static key is generated for each connection: it
//! carries no identity, so there is nothing to gain from keeping it.
//!
//! The hello travels in the clear in the first message so that a peer on another chain, genesis or
//! protocol version is refused with that reason (a mismatched Noise prologue would only say "decrypt
//! failed"). The same values are signed again in the proof, so a man in the middle who edits a hello
//! is caught there.

use timecoin_crypto::{ChainId, Hash, PublicKey, SecretKey, SigDomain, Signature};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::cipher::{Opener, Sealer};
use crate::frame::{HANDSHAKE_RECORD_MAX_BYTES, read_record, write_record};
use crate::{PeerError, PeerId};

/// The protocol version this build speaks. A peer with another version is refused.
pub const PROTOCOL_VERSION: u16 = 1;

/// The Noise protocol name: XX, X25519, ChaCha20-Poly1305, BLAKE2s (a 32-byte handshake hash).
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// Mixed into the Noise transcript, so a handshake for any other protocol cannot be mistaken for ours.
const PROLOGUE: &[u8] = b"timecoin/noise-xx/v1";

/// The length of the Noise handshake hash with BLAKE2s.
const HANDSHAKE_HASH_BYTES: usize = 32;

/// Who we are on the network: the node key every peer names us by, the optional masternode operator
/// key, and the chain we are on.
pub struct NodeIdentity {
    node_key: SecretKey,
    operator_key: Option<SecretKey>,
    chain_id: ChainId,
    genesis: Hash,
}

impl NodeIdentity {
    /// A plain node.
    pub fn new(node_key: SecretKey, chain_id: ChainId, genesis: Hash) -> Self {
        NodeIdentity {
            node_key,
            operator_key: None,
            chain_id,
            genesis,
        }
    }

    /// A masternode: it also proves its operator key in every handshake.
    pub fn with_operator(mut self, operator_key: SecretKey) -> Self {
        self.operator_key = Some(operator_key);
        self
    }

    /// The id peers know us by.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from(self.node_key.public_key())
    }

    /// The chain we are on.
    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Our genesis hash.
    pub fn genesis(&self) -> Hash {
        self.genesis
    }

    /// Our signed address record for discovery: `addr` (the address peers can reach, not the listen
    /// address if that is unspecified) at `now_ms`, signed by the node key on our chain.
    pub fn address_record(
        &self,
        addr: std::net::SocketAddr,
        now_ms: u64,
    ) -> crate::discovery::AddressRecord {
        crate::discovery::AddressRecord::sign(&self.node_key, self.chain_id, addr, now_ms)
    }

    fn hello(&self) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            chain_id: self.chain_id,
            genesis: self.genesis,
        }
    }
}

/// The first payload each side sends: what network it is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Its protocol version.
    pub version: u16,
    /// Its chain id.
    pub chain_id: ChainId,
    /// Its genesis hash.
    pub genesis: Hash,
}

impl Hello {
    /// The encoded size: version (2) || chain id (4) || genesis (32), big-endian.
    pub const BYTES: usize = 2 + 4 + 32;

    /// The fixed encoding.
    pub fn encode(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        let mut w = Writer(&mut out[..]);
        w.put(&self.version.to_be_bytes());
        w.put(&self.chain_id.0.to_be_bytes());
        w.put(self.genesis.as_bytes());
        out
    }

    /// Decodes exactly [`Hello::BYTES`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, PeerError> {
        let mut r = Reader(bytes);
        let version = u16::from_be_bytes(r.take()?);
        let chain_id = ChainId(u32::from_be_bytes(r.take()?));
        let genesis = Hash::from_bytes(r.take()?);
        r.finish()?;
        Ok(Hello {
            version,
            chain_id,
            genesis,
        })
    }

    /// Refuses a peer on another protocol version, chain or genesis.
    fn check_against(&self, ours: &Hello) -> Result<(), PeerError> {
        if self.version != ours.version {
            return Err(PeerError::WrongVersion {
                ours: ours.version,
                theirs: self.version,
            });
        }
        if self.chain_id != ours.chain_id {
            return Err(PeerError::WrongChain {
                ours: ours.chain_id,
                theirs: self.chain_id,
            });
        }
        if self.genesis != ours.genesis {
            return Err(PeerError::WrongGenesis {
                ours: ours.genesis.to_hex(),
                theirs: self.genesis.to_hex(),
            });
        }
        Ok(())
    }
}

/// Which end of the handshake signed: part of the signed bytes, so a proof cannot be reflected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The dialer.
    Initiator,
    /// The listener.
    Responder,
}

impl Role {
    fn byte(self) -> u8 {
        match self {
            Role::Initiator => 0,
            Role::Responder => 1,
        }
    }
}

/// A node's proof that it holds its node key (and its operator key, if it is a masternode) in this
/// session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityProof {
    /// The node key.
    pub node_key: PublicKey,
    /// The node key's signature over [`IdentityProof::node_signed_bytes`].
    pub node_signature: Signature,
    /// The operator key and its signature, for a masternode.
    pub operator: Option<(PublicKey, Signature)>,
}

impl IdentityProof {
    /// The encoded size without an operator: node key (32) || signature (64) || flag (1).
    pub const PLAIN_BYTES: usize = 32 + 64 + 1;
    /// The encoded size with an operator: plus its key (32) and signature (64).
    pub const MASTERNODE_BYTES: usize = Self::PLAIN_BYTES + 32 + 64;

    /// What the node key signs (under [`SigDomain::PeerHandshake`] and the chain id): the role, the
    /// session's handshake hash, the genesis hash and the protocol version.
    pub fn node_signed_bytes(
        role: Role,
        handshake_hash: &[u8],
        genesis: &Hash,
        version: u16,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 1 + handshake_hash.len() + 32 + 2);
        out.extend_from_slice(b"node");
        out.push(role.byte());
        out.extend_from_slice(handshake_hash);
        out.extend_from_slice(genesis.as_bytes());
        out.extend_from_slice(&version.to_be_bytes());
        out
    }

    /// What the operator key signs: the same, under another label, and the node key it vouches for.
    pub fn operator_signed_bytes(
        role: Role,
        handshake_hash: &[u8],
        genesis: &Hash,
        version: u16,
        node_key: &PublicKey,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 1 + handshake_hash.len() + 32 + 2 + 32);
        out.extend_from_slice(b"operator");
        out.push(role.byte());
        out.extend_from_slice(handshake_hash);
        out.extend_from_slice(genesis.as_bytes());
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(node_key.as_bytes());
        out
    }

    /// Signs a proof for this session.
    pub fn sign(identity: &NodeIdentity, role: Role, handshake_hash: &[u8]) -> Self {
        let chain = identity.chain_id;
        let node_key = identity.node_key.public_key();
        let node_bytes =
            Self::node_signed_bytes(role, handshake_hash, &identity.genesis, PROTOCOL_VERSION);
        let node_signature = identity
            .node_key
            .sign(SigDomain::PeerHandshake, chain, &node_bytes);
        let operator = identity.operator_key.as_ref().map(|op| {
            let bytes = Self::operator_signed_bytes(
                role,
                handshake_hash,
                &identity.genesis,
                PROTOCOL_VERSION,
                &node_key,
            );
            (
                op.public_key(),
                op.sign(SigDomain::PeerHandshake, chain, &bytes),
            )
        });
        IdentityProof {
            node_key,
            node_signature,
            operator,
        }
    }

    /// Checks the proof a peer in `role` sent over this session, on our chain and genesis.
    pub fn verify(
        &self,
        role: Role,
        handshake_hash: &[u8],
        chain: ChainId,
        genesis: &Hash,
    ) -> Result<(), PeerError> {
        let node_bytes = Self::node_signed_bytes(role, handshake_hash, genesis, PROTOCOL_VERSION);
        self.node_key
            .verify(
                SigDomain::PeerHandshake,
                chain,
                &node_bytes,
                &self.node_signature,
            )
            .map_err(|_| PeerError::BadSignature("node key"))?;
        if let Some((operator, signature)) = &self.operator {
            let bytes = Self::operator_signed_bytes(
                role,
                handshake_hash,
                genesis,
                PROTOCOL_VERSION,
                &self.node_key,
            );
            operator
                .verify(SigDomain::PeerHandshake, chain, &bytes, signature)
                .map_err(|_| PeerError::BadSignature("operator key"))?;
        }
        Ok(())
    }

    /// The fixed encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::MASTERNODE_BYTES);
        out.extend_from_slice(self.node_key.as_bytes());
        out.extend_from_slice(self.node_signature.as_bytes());
        match &self.operator {
            None => out.push(0),
            Some((key, signature)) => {
                out.push(1);
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(signature.as_bytes());
            }
        }
        out
    }

    /// Decodes exactly one proof: no trailing bytes, a flag of 0 or 1, keys that are valid points.
    pub fn decode(bytes: &[u8]) -> Result<Self, PeerError> {
        let mut r = Reader(bytes);
        let node_key = PublicKey::from_bytes(&r.take()?)
            .map_err(|_| PeerError::MalformedHandshake("node key is not a valid point"))?;
        let node_signature = Signature::from_bytes(r.take()?);
        let [flag] = r.take()?;
        let operator = match flag {
            0 => None,
            1 => {
                let key = PublicKey::from_bytes(&r.take()?).map_err(|_| {
                    PeerError::MalformedHandshake("operator key is not a valid point")
                })?;
                Some((key, Signature::from_bytes(r.take()?)))
            }
            _ => {
                return Err(PeerError::MalformedHandshake(
                    "operator flag is neither 0 nor 1",
                ));
            }
        };
        r.finish()?;
        Ok(IdentityProof {
            node_key,
            node_signature,
            operator,
        })
    }
}

/// A peer that finished the handshake: who it proved to be, and the keys to talk to it.
pub struct Authenticated {
    /// Its node key.
    pub node_key: PublicKey,
    /// Its operator key, if it proved one.
    pub masternode: Option<PublicKey>,
    keys: NoiseSession,
}

impl std::fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("peer", &self.peer())
            .field("masternode", &self.masternode)
            .finish_non_exhaustive()
    }
}

impl Authenticated {
    /// Its id.
    pub fn peer(&self) -> PeerId {
        PeerId::from(self.node_key)
    }

    /// Encrypts a run of frames into records (`u16 length || ciphertext`, one per 65,519 bytes of
    /// plaintext) in `out`, exactly as a session's writer does; for tools and benchmarks that drive a
    /// session by hand.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), PeerError> {
        self.keys.sealer.seal(plaintext, out)
    }

    /// Decrypts one record's body (without its length prefix) into `out`, which must hold
    /// 65,535 bytes; returns the plaintext's length.
    pub fn open(&mut self, record: &[u8], out: &mut [u8]) -> Result<usize, PeerError> {
        self.keys.opener.open(record, out)
    }

    /// The session's keys, one half for its writer and one for its reader.
    pub(crate) fn into_keys(self) -> (Sealer, Opener) {
        (self.keys.sealer, self.keys.opener)
    }
}

/// Noise transport keys, a nonce counter per direction. The handshake's proofs use nonce 0 of each
/// direction; the session goes on from 1.
struct NoiseSession {
    sealer: Sealer,
    opener: Opener,
}

/// Dials: runs the handshake as the initiator and, if `expected` is set, refuses a peer that proves any
/// other node key.
pub async fn initiate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    identity: &NodeIdentity,
    expected: Option<PeerId>,
) -> Result<Authenticated, PeerError> {
    let mut noise = noise_state(Role::Initiator)?;
    let mut buf = [0u8; HANDSHAKE_RECORD_MAX_BYTES];
    let mut payload = [0u8; HANDSHAKE_RECORD_MAX_BYTES];
    let ours = identity.hello();

    let n = noise.write_message(&ours.encode(), &mut buf)?;
    write_record(stream, buf.get(..n).unwrap_or_default()).await?;

    let n = read_record(stream, HANDSHAKE_RECORD_MAX_BYTES, &mut buf).await?;
    let p = noise.read_message(buf.get(..n).unwrap_or_default(), &mut payload)?;
    Hello::decode(payload.get(..p).unwrap_or_default())?.check_against(&ours)?;

    let n = noise.write_message(&[], &mut buf)?;
    write_record(stream, buf.get(..n).unwrap_or_default()).await?;

    let (mut session, hash) = finish(noise)?;
    let proof = recv_proof(stream, &mut session).await?;
    // Check the listener before saying who we are: a dialer that reached the wrong node leaves without
    // revealing its identity, and the listener never counts it as a peer.
    let mut peer = accept_proof(proof, Role::Responder, &hash, identity, expected, session)?;
    send_proof(
        stream,
        &mut peer.keys,
        &IdentityProof::sign(identity, Role::Initiator, &hash),
    )
    .await?;
    Ok(peer)
}

/// Answers a dialer: runs the handshake as the responder.
pub async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    identity: &NodeIdentity,
) -> Result<Authenticated, PeerError> {
    let (mut session, hash) = respond_noise(stream, identity).await?;
    send_proof(
        stream,
        &mut session,
        &IdentityProof::sign(identity, Role::Responder, &hash),
    )
    .await?;
    let proof = recv_proof(stream, &mut session).await?;
    accept_proof(proof, Role::Initiator, &hash, identity, None, session)
}

/// The Noise part of the responder's side, up to the final handshake hash.
async fn respond_noise<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    identity: &NodeIdentity,
) -> Result<(NoiseSession, [u8; HANDSHAKE_HASH_BYTES]), PeerError> {
    let mut noise = noise_state(Role::Responder)?;
    let mut buf = [0u8; HANDSHAKE_RECORD_MAX_BYTES];
    let mut payload = [0u8; HANDSHAKE_RECORD_MAX_BYTES];
    let ours = identity.hello();

    let n = read_record(stream, HANDSHAKE_RECORD_MAX_BYTES, &mut buf).await?;
    let p = noise.read_message(buf.get(..n).unwrap_or_default(), &mut payload)?;
    Hello::decode(payload.get(..p).unwrap_or_default())?.check_against(&ours)?;

    let n = noise.write_message(&ours.encode(), &mut buf)?;
    write_record(stream, buf.get(..n).unwrap_or_default()).await?;

    let n = read_record(stream, HANDSHAKE_RECORD_MAX_BYTES, &mut buf).await?;
    let p = noise.read_message(buf.get(..n).unwrap_or_default(), &mut payload)?;
    if p != 0 {
        return Err(PeerError::MalformedHandshake(
            "third message carries a payload",
        ));
    }
    finish(noise)
}

/// A fresh Noise handshake for `role`, with a Noise static key made for this connection only.
fn noise_state(role: Role) -> Result<snow::HandshakeState, PeerError> {
    let params: snow::params::NoiseParams = NOISE_PARAMS.parse()?;
    let keypair = snow::Builder::new(params.clone()).generate_keypair()?;
    let builder = snow::Builder::new(params)
        .prologue(PROLOGUE)?
        .local_private_key(&keypair.private)?;
    Ok(match role {
        Role::Initiator => builder.build_initiator()?,
        Role::Responder => builder.build_responder()?,
    })
}

fn finish(
    noise: snow::HandshakeState,
) -> Result<(NoiseSession, [u8; HANDSHAKE_HASH_BYTES]), PeerError> {
    let hash: [u8; HANDSHAKE_HASH_BYTES] = noise
        .get_handshake_hash()
        .try_into()
        .map_err(|_| PeerError::MalformedHandshake("unexpected handshake hash length"))?;
    let (sealer, opener) = crate::cipher::split(noise.into_stateless_transport_mode()?);
    Ok((NoiseSession { sealer, opener }, hash))
}

fn accept_proof(
    proof: IdentityProof,
    role: Role,
    hash: &[u8],
    identity: &NodeIdentity,
    expected: Option<PeerId>,
    keys: NoiseSession,
) -> Result<Authenticated, PeerError> {
    let actual = PeerId::from(proof.node_key);
    if let Some(expected) = expected
        && expected != actual
    {
        return Err(PeerError::UnexpectedPeer { expected, actual });
    }
    if actual == identity.peer_id() {
        return Err(PeerError::SelfConnection);
    }
    proof.verify(role, hash, identity.chain_id, &identity.genesis)?;
    Ok(Authenticated {
        node_key: proof.node_key,
        masternode: proof.operator.map(|(key, _)| key),
        keys,
    })
}

async fn send_proof<S: AsyncWrite + Unpin>(
    stream: &mut S,
    session: &mut NoiseSession,
    proof: &IdentityProof,
) -> Result<(), PeerError> {
    let mut records = Vec::new();
    session.sealer.seal(&proof.encode(), &mut records)?;
    stream.write_all(&records).await?;
    stream.flush().await?;
    Ok(())
}

async fn recv_proof<S: AsyncRead + Unpin>(
    stream: &mut S,
    session: &mut NoiseSession,
) -> Result<IdentityProof, PeerError> {
    let plaintext = recv_sealed(stream, session).await?;
    IdentityProof::decode(&plaintext)
}

/// Reads and decrypts one handshake-sized record with the next receive nonce.
async fn recv_sealed<S: AsyncRead + Unpin>(
    stream: &mut S,
    session: &mut NoiseSession,
) -> Result<Vec<u8>, PeerError> {
    let mut buf = [0u8; HANDSHAKE_RECORD_MAX_BYTES];
    let mut plain = [0u8; HANDSHAKE_RECORD_MAX_BYTES];
    let n = read_record(stream, HANDSHAKE_RECORD_MAX_BYTES, &mut buf).await?;
    let p = session
        .opener
        .open(buf.get(..n).unwrap_or_default(), &mut plain)?;
    Ok(plain.get(..p).unwrap_or_default().to_vec())
}

/// A cursor over a fixed-layout payload.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], PeerError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(PeerError::MalformedHandshake("payload too short"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn finish(&self) -> Result<(), PeerError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(PeerError::MalformedHandshake("trailing bytes"))
        }
    }
}

/// A cursor that fills a fixed-size buffer; the caller sizes it exactly.
struct Writer<'a>(&'a mut [u8]);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let buf = std::mem::take(&mut self.0);
        let (head, rest) = buf.split_at_mut(bytes.len().min(buf.len()));
        head.copy_from_slice(bytes.get(..head.len()).unwrap_or_default());
        self.0 = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(seed: u8, chain: u32, genesis: u8) -> NodeIdentity {
        NodeIdentity::new(
            SecretKey::from_seed(&[seed; 32]),
            ChainId(chain),
            Hash::from_bytes([genesis; 32]),
        )
    }

    async fn run(
        dialer: &NodeIdentity,
        listener: &NodeIdentity,
        expected: Option<PeerId>,
    ) -> (
        Result<Authenticated, PeerError>,
        Result<Authenticated, PeerError>,
    ) {
        let (mut a, mut b) = tokio::io::duplex(4096);
        // Each side drops its end when it stops, as a real connection would, so a refusal on one side
        // is an end of stream on the other.
        tokio::join!(
            async move { initiate(&mut a, dialer, expected).await },
            async move { respond(&mut b, listener).await }
        )
    }

    #[tokio::test]
    async fn two_nodes_learn_each_others_keys_and_the_masternode_its_operator() {
        let operator = SecretKey::from_seed(&[9; 32]);
        let dialer = identity(1, 7, 0);
        let listener = identity(2, 7, 0).with_operator(SecretKey::from_seed(&[9; 32]));
        let (d, l) = run(&dialer, &listener, Some(listener.peer_id())).await;
        let (d, l) = (d.unwrap(), l.unwrap());
        assert_eq!(d.peer(), listener.peer_id());
        assert_eq!(d.masternode, Some(operator.public_key()));
        assert_eq!(l.peer(), dialer.peer_id());
        assert_eq!(l.masternode, None);
    }

    #[tokio::test]
    async fn a_peer_on_another_chain_genesis_or_key_is_refused_with_its_reason() {
        let ours = identity(1, 7, 0);
        let (_, l) = run(&identity(2, 8, 0), &ours, None).await;
        assert!(matches!(l, Err(PeerError::WrongChain { .. })), "{l:?}");
        let (_, l) = run(&identity(2, 7, 1), &ours, None).await;
        assert!(matches!(l, Err(PeerError::WrongGenesis { .. })), "{l:?}");
        let wanted = identity(3, 7, 0).peer_id();
        let (d, _) = run(&identity(2, 7, 0), &ours, Some(wanted)).await;
        assert!(matches!(d, Err(PeerError::UnexpectedPeer { .. })), "{d:?}");
        // The dialer checks first, so it is the one that notices it reached itself.
        let (d, _) = run(&ours, &identity(1, 7, 0), None).await;
        assert!(matches!(d, Err(PeerError::SelfConnection)), "{d:?}");
    }

    #[tokio::test]
    async fn a_proof_replayed_from_another_session_does_not_verify() {
        let victim = identity(1, 7, 0);
        let attacker = identity(2, 7, 0);
        let dialer = identity(3, 7, 0);

        // Session 1: the attacker dials the victim and records the victim's proof.
        let (mut a, mut b) = tokio::io::duplex(4096);
        let recorded = {
            let attack = async {
                let mut noise = noise_state(Role::Initiator).unwrap();
                let mut buf = [0u8; HANDSHAKE_RECORD_MAX_BYTES];
                let mut payload = [0u8; HANDSHAKE_RECORD_MAX_BYTES];
                let n = noise
                    .write_message(&attacker.hello().encode(), &mut buf)
                    .unwrap();
                write_record(&mut a, &buf[..n]).await.unwrap();
                let n = read_record(&mut a, HANDSHAKE_RECORD_MAX_BYTES, &mut buf)
                    .await
                    .unwrap();
                noise.read_message(&buf[..n], &mut payload).unwrap();
                let n = noise.write_message(&[], &mut buf).unwrap();
                write_record(&mut a, &buf[..n]).await.unwrap();
                let (mut session, hash) = finish(noise).unwrap();
                let recorded = recv_proof(&mut a, &mut session).await.unwrap();
                send_proof(
                    &mut a,
                    &mut session,
                    &IdentityProof::sign(&attacker, Role::Initiator, &hash),
                )
                .await
                .unwrap();
                recorded
            };
            let (recorded, victim_side) = tokio::join!(attack, respond(&mut b, &victim));
            assert!(victim_side.is_ok());
            recorded
        };
        assert_eq!(recorded.node_key, victim.node_key.public_key());

        // Session 2: the attacker answers a dialer who wants the victim, replaying the recorded proof.
        let (mut a, mut b) = tokio::io::duplex(4096);
        let impersonate = async {
            let (mut session, _hash) = respond_noise(&mut b, &attacker).await.unwrap();
            send_proof(&mut b, &mut session, &recorded).await.unwrap();
        };
        let (dialed, ()) = tokio::join!(
            initiate(&mut a, &dialer, Some(victim.peer_id())),
            impersonate
        );
        assert!(
            matches!(dialed, Err(PeerError::BadSignature("node key"))),
            "{:?}",
            dialed.err()
        );
    }

    #[tokio::test]
    async fn a_frame_larger_than_a_noise_message_crosses_in_several_records() {
        use crate::Channel;
        use crate::frame::{Frame, FrameDecoder, NOISE_MAX_MESSAGE_BYTES, encode_message};

        let (d, l) = run(&identity(1, 7, 0), &identity(2, 7, 0), None).await;
        let (mut sender, mut receiver) = (d.unwrap(), l.unwrap());
        let body: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut plain = bytes::BytesMut::new();
        encode_message(Channel::Sync, &body, &mut plain).unwrap();
        encode_message(Channel::Consensus, b"vote", &mut plain).unwrap();
        let mut sealed = Vec::new();
        sender.seal(&plain, &mut sealed).unwrap();

        let mut decoder = FrameDecoder::new();
        let mut out = vec![0u8; NOISE_MAX_MESSAGE_BYTES];
        let mut rest = &sealed[..];
        let mut records = 0;
        while let Some((len, tail)) = rest.split_first_chunk::<2>() {
            let len = u16::from_be_bytes(*len) as usize;
            let n = receiver.open(&tail[..len], &mut out).unwrap();
            decoder.feed(&out[..n]);
            rest = &tail[len..];
            records += 1;
        }
        assert_eq!(
            records, 4,
            "200 kB in records of at most 65,519 bytes of plaintext"
        );
        assert_eq!(
            decoder.next_frame().unwrap(),
            Some(Frame::Message {
                channel: Channel::Sync,
                bytes: body.into()
            })
        );
        assert!(matches!(
            decoder.next_frame().unwrap(),
            Some(Frame::Message {
                channel: Channel::Consensus,
                ..
            })
        ));
        // Replaying a record: the receiver's nonce has moved on, so it does not decrypt.
        let first_len = u16::from_be_bytes([sealed[0], sealed[1]]) as usize;
        assert!(receiver.open(&sealed[2..2 + first_len], &mut out).is_err());
    }

    #[test]
    fn payloads_round_trip_and_reject_trailing_or_short_bytes() {
        let hello = identity(1, 7, 3).hello();
        assert_eq!(Hello::decode(&hello.encode()).unwrap(), hello);
        assert!(Hello::decode(&hello.encode()[..Hello::BYTES - 1]).is_err());
        let mut long = hello.encode().to_vec();
        long.push(0);
        assert!(Hello::decode(&long).is_err());

        let masternode = identity(1, 7, 3).with_operator(SecretKey::from_seed(&[5; 32]));
        for id in [identity(1, 7, 3), masternode] {
            let proof = IdentityProof::sign(&id, Role::Initiator, &[4; 32]);
            let bytes = proof.encode();
            assert_eq!(IdentityProof::decode(&bytes).unwrap(), proof);
            assert!(
                proof
                    .verify(
                        Role::Initiator,
                        &[4; 32],
                        ChainId(7),
                        &Hash::from_bytes([3; 32])
                    )
                    .is_ok()
            );
            // Reflected (the other role) or on another session hash: refused.
            assert!(
                proof
                    .verify(
                        Role::Responder,
                        &[4; 32],
                        ChainId(7),
                        &Hash::from_bytes([3; 32])
                    )
                    .is_err()
            );
            assert!(
                proof
                    .verify(
                        Role::Initiator,
                        &[5; 32],
                        ChainId(7),
                        &Hash::from_bytes([3; 32])
                    )
                    .is_err()
            );
            let mut bad_flag = bytes.clone();
            bad_flag[96] = 2;
            assert!(IdentityProof::decode(&bad_flag).is_err());
            assert!(IdentityProof::decode(&bytes[..bytes.len() - 1]).is_err());
        }
    }
}
