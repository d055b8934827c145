//! The two layers of bytes on a connection.
//!
//! - A **record** is `u16 length (big-endian) || body` on the socket. During the handshake a body is one
//!   Noise handshake message, at most [`HANDSHAKE_RECORD_MAX_BYTES`]; after it, one Noise transport
//!   message (ciphertext), at most [`NOISE_MAX_MESSAGE_BYTES`]. A length over the limit closes the
//!   connection before the body is read.
//! - A **frame** is `u32 length (big-endian) || u8 tag || body` inside the decrypted stream of records.
//!   The tag is a [`Channel`]'s tag or [`KEEPALIVE_TAG`]. Frames and records are independent: a large
//!   frame spans many records, and many small frames share one record (that is the batching).
//!
//! [`FrameDecoder`] checks a frame's length against its channel's limit as soon as the five header bytes
//! are in, so an over-long length prefix is refused before anything is allocated for its body.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Channel, NetError, PeerError};

/// Bytes of a frame header: the length and the tag.
pub const FRAME_HEADER_BYTES: usize = 5;

/// The tag of a keepalive frame, which has an empty body. Outside the channel tags so that a channel
/// added later cannot collide with it.
pub const KEEPALIVE_TAG: u8 = 0xff;

/// The largest Noise message (a protocol constant of Noise).
pub const NOISE_MAX_MESSAGE_BYTES: usize = 65_535;

/// Bytes Noise adds to every transport message (the AEAD tag).
pub const NOISE_TAG_BYTES: usize = 16;

/// The largest plaintext one record carries after the handshake.
pub const RECORD_MAX_PLAINTEXT_BYTES: usize = NOISE_MAX_MESSAGE_BYTES - NOISE_TAG_BYTES;

/// The largest handshake record. Our XX messages carry at most two keys, two tags and the small
/// cleartext hello (well under 200 bytes); the limit leaves room for a later field and keeps an
/// unauthenticated stranger from making us read more than this before we know who it is.
pub const HANDSHAKE_RECORD_MAX_BYTES: usize = 1024;

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A message on a channel, undecoded.
    Message {
        /// The channel its tag named.
        channel: Channel,
        /// The body, within the channel's limit.
        bytes: Bytes,
    },
    /// Proof of life from an otherwise quiet peer.
    Keepalive,
}

/// Appends one message frame to `out`, refusing a message over its channel's limit.
pub fn encode_message(
    channel: Channel,
    message: &[u8],
    out: &mut BytesMut,
) -> Result<(), NetError> {
    channel.check_len(message.len())?;
    // Every channel's limit is under 10 MB, so the length always fits the u32 prefix.
    let len = u32::try_from(message.len()).map_err(|_| NetError::TooLarge {
        channel,
        len: message.len(),
        max: channel.max_message_bytes(),
    })?;
    out.reserve(FRAME_HEADER_BYTES + message.len());
    out.put_u32(len);
    out.put_u8(channel.tag());
    out.put_slice(message);
    Ok(())
}

/// Appends one keepalive frame to `out`.
pub fn encode_keepalive(out: &mut BytesMut) {
    out.put_u32(0);
    out.put_u8(KEEPALIVE_TAG);
}

/// The bytes a message frame takes on the plaintext stream.
pub fn encoded_len(message_len: usize) -> usize {
    FRAME_HEADER_BYTES + message_len
}

/// Splits the decrypted stream back into frames.
///
/// Bound: it holds at most one partial frame plus the last record fed to it, so at most
/// [`timecoin_types::MAX_MESSAGE_BYTES`] + [`FRAME_HEADER_BYTES`] + [`RECORD_MAX_PLAINTEXT_BYTES`], and only
/// as much as the peer actually sent (nothing is reserved from a length prefix).
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds decrypted bytes. Callers drain [`next_frame`](Self::next_frame) before feeding more, which
    /// keeps the bound above.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held, waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `None` if more bytes are needed, or why the stream is broken (the
    /// connection must then be closed: a framing error leaves no way to resynchronise).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, PeerError> {
        let Some(header) = self.buf.get(..FRAME_HEADER_BYTES) else {
            return Ok(None);
        };
        let mut header = header;
        let len = header.get_u32() as usize;
        let tag = header.get_u8();
        if tag == KEEPALIVE_TAG {
            if len != 0 {
                return Err(PeerError::KeepaliveWithBody(len));
            }
            self.buf.advance(FRAME_HEADER_BYTES);
            return Ok(Some(Frame::Keepalive));
        }
        let channel = Channel::from_tag(tag).ok_or(PeerError::UnknownTag(tag))?;
        let max = channel.max_message_bytes();
        if len > max {
            return Err(PeerError::FrameTooLarge { channel, len, max });
        }
        if self.buf.len() < FRAME_HEADER_BYTES + len {
            return Ok(None);
        }
        self.buf.advance(FRAME_HEADER_BYTES);
        let bytes = self.buf.split_to(len).freeze();
        Ok(Some(Frame::Message { channel, bytes }))
    }
}

/// Reads one record body into `buf`, refusing a length prefix over `max` before reading the body.
/// Returns the body's length; `buf` must hold at least `max` bytes.
pub async fn read_record<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    buf: &mut [u8],
) -> Result<usize, PeerError> {
    let len = usize::from(reader.read_u16().await?);
    // Only the handshake's limit can be hit: a session record's limit is the most a u16 can say.
    if len > max {
        return Err(PeerError::HandshakeFrameTooLarge { len, max });
    }
    let body = buf.get_mut(..len).ok_or(PeerError::MalformedHandshake(
        "record buffer shorter than its limit",
    ))?;
    reader.read_exact(body).await?;
    Ok(len)
}

/// Writes one record (length prefix and body) and flushes it.
pub async fn write_record<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> Result<(), PeerError> {
    let len = u16::try_from(body.len())
        .map_err(|_| PeerError::MalformedHandshake("record body over 65,535 bytes"))?;
    let mut out = Vec::with_capacity(2 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    writer.write_all(&out).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(decoder: &mut FrameDecoder) -> Result<Vec<Frame>, PeerError> {
        let mut out = Vec::new();
        while let Some(f) = decoder.next_frame()? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn frames_on_every_channel_round_trip_whatever_the_split() {
        let mut stream = BytesMut::new();
        let mut expected = Vec::new();
        for (i, channel) in Channel::ALL.into_iter().enumerate() {
            let body = vec![i as u8; 100 * (i + 1)];
            encode_message(channel, &body, &mut stream).unwrap();
            expected.push(Frame::Message {
                channel,
                bytes: Bytes::from(body),
            });
        }
        encode_keepalive(&mut stream);
        expected.push(Frame::Keepalive);
        encode_message(Channel::Sync, b"", &mut stream).unwrap();
        expected.push(Frame::Message {
            channel: Channel::Sync,
            bytes: Bytes::new(),
        });

        for chunk in [1, 2, 5, 7, 64, stream.len()] {
            let mut decoder = FrameDecoder::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                decoder.feed(piece);
                got.extend(frames(&mut decoder).unwrap());
            }
            assert_eq!(got, expected, "split into {chunk}-byte pieces");
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn an_over_long_length_prefix_is_refused_from_the_header_alone() {
        for channel in Channel::ALL {
            let mut decoder = FrameDecoder::new();
            let len = channel.max_message_bytes() + 1;
            let mut header = BytesMut::new();
            header.put_u32(len as u32);
            header.put_u8(channel.tag());
            decoder.feed(&header);
            assert!(matches!(
                decoder.next_frame(),
                Err(PeerError::FrameTooLarge { len: l, .. }) if l == len
            ));
        }
        // The largest prefix a u32 can say, on the biggest channel.
        let mut decoder = FrameDecoder::new();
        decoder.feed(&[0xff, 0xff, 0xff, 0xff, Channel::Consensus.tag()]);
        assert!(matches!(
            decoder.next_frame(),
            Err(PeerError::FrameTooLarge { .. })
        ));
        assert_eq!(decoder.buffered(), FRAME_HEADER_BYTES);
    }

    #[test]
    fn a_frame_at_its_channel_limit_is_accepted() {
        let channel = Channel::Transactions;
        let body = vec![7u8; channel.max_message_bytes()];
        let mut stream = BytesMut::new();
        encode_message(channel, &body, &mut stream).unwrap();
        let mut decoder = FrameDecoder::new();
        decoder.feed(&stream);
        assert!(
            matches!(decoder.next_frame(), Ok(Some(Frame::Message { bytes, .. })) if bytes.len() == body.len())
        );
        assert!(encode_message(channel, &[0; 1], &mut BytesMut::new()).is_ok());
        assert!(matches!(
            encode_message(
                channel,
                &vec![0; channel.max_message_bytes() + 1],
                &mut BytesMut::new()
            ),
            Err(NetError::TooLarge { .. })
        ));
    }

    #[test]
    fn unknown_tags_and_keepalives_with_a_body_break_the_stream() {
        let mut decoder = FrameDecoder::new();
        decoder.feed(&[0, 0, 0, 1, 4, 9]);
        assert!(matches!(
            decoder.next_frame(),
            Err(PeerError::UnknownTag(4))
        ));
        let mut decoder = FrameDecoder::new();
        decoder.feed(&[0, 0, 0, 1, KEEPALIVE_TAG, 9]);
        assert!(matches!(
            decoder.next_frame(),
            Err(PeerError::KeepaliveWithBody(1))
        ));
    }

    #[tokio::test]
    async fn a_handshake_record_over_its_limit_is_refused_before_its_body() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let len = (HANDSHAKE_RECORD_MAX_BYTES + 1) as u16;
        // Only the prefix is sent: the reader must refuse without waiting for a body.
        tokio::io::AsyncWriteExt::write_all(&mut a, &len.to_be_bytes())
            .await
            .unwrap();
        let mut buf = [0u8; HANDSHAKE_RECORD_MAX_BYTES];
        let err = read_record(&mut b, HANDSHAKE_RECORD_MAX_BYTES, &mut buf).await;
        assert!(matches!(err, Err(PeerError::HandshakeFrameTooLarge { .. })));

        write_record(&mut a, b"hello").await.unwrap();
        let n = read_record(&mut b, HANDSHAKE_RECORD_MAX_BYTES, &mut buf)
            .await
            .unwrap();
        assert_eq!(&buf[..n], b"hello");
    }
}
