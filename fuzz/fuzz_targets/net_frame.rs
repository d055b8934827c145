#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin_net::frame::{Frame, FrameDecoder};

// The decrypted stream of a session, cut into pieces of a size the input chooses (its first byte),
// as records would cut it. The decoder must never panic, never hand out a message over its channel's
// limit, and never hold more than it was fed.
fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(split).max(1);
    let mut decoder = FrameDecoder::new();
    let mut fed = 0usize;
    'stream: for piece in stream.chunks(step) {
        decoder.feed(piece);
        fed += piece.len();
        loop {
            match decoder.next_frame() {
                Ok(Some(Frame::Message { channel, bytes })) => {
                    assert!(bytes.len() <= channel.max_message_bytes());
                }
                Ok(Some(Frame::Keepalive)) => {}
                Ok(None) => break,
                Err(_) => break 'stream,
            }
        }
        assert!(decoder.buffered() <= fed);
    }
});
