//! A cap on the size of one WebSocket message.
//!
//! actix refuses a single frame over 64 KiB, but a message may arrive as any number of
//! continuation frames, and the stock subscription handler gathers them without a limit: one
//! socket sending an endless fragmented message would grow the server's memory until it dies.
//! [`MessageCap`] reads the frame headers as the bytes stream in (the payloads pass through
//! untouched) and ends the connection once one message is larger than its limit.

use actix_web::error::PayloadError;
use actix_web::web::Bytes;

/// Where the reader is in the byte stream.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Collecting a frame header (2 to 14 bytes).
    Header { bytes: [u8; 14], have: usize },
    /// Skipping a frame's payload.
    Payload { remaining: u64 },
}

/// Follows WebSocket frames (RFC 6455 §5.2) and sums the payload of the message in progress.
#[derive(Debug, Clone)]
pub struct MessageCap {
    limit: u64,
    message: u64,
    phase: Phase,
    over: bool,
}

impl MessageCap {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
            message: 0,
            phase: Phase::Header {
                bytes: [0; 14],
                have: 0,
            },
            over: false,
        }
    }

    /// Reads `chunk`; `Err` once a message is over the limit (and for every chunk after).
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), PayloadError> {
        while !chunk.is_empty() && !self.over {
            match &mut self.phase {
                Phase::Payload { remaining } => {
                    let take = chunk
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    *remaining -= take as u64;
                    chunk = &chunk[take..];
                    if *remaining == 0 {
                        self.phase = Phase::Header {
                            bytes: [0; 14],
                            have: 0,
                        };
                    }
                }
                Phase::Header { bytes, have } => {
                    let needed = header_len(&bytes[..*have]);
                    let take = (needed - *have).min(chunk.len());
                    bytes[*have..*have + take].copy_from_slice(&chunk[..take]);
                    *have += take;
                    chunk = &chunk[take..];
                    // The length is only known once the first two bytes are in.
                    if *have < header_len(&bytes[..*have]) {
                        continue;
                    }
                    let header = &bytes[..*have];
                    let opcode = header[0] & 0x0F;
                    let length = payload_len(header);
                    match opcode {
                        // A continuation adds to the message in progress; text or binary starts one.
                        0x0 => self.message = self.message.saturating_add(length),
                        0x1 | 0x2 => self.message = length,
                        _ => {}
                    }
                    if self.message > self.limit {
                        self.over = true;
                        break;
                    }
                    self.phase = if length == 0 {
                        Phase::Header {
                            bytes: [0; 14],
                            have: 0,
                        }
                    } else {
                        Phase::Payload { remaining: length }
                    };
                }
            }
        }
        if self.over {
            Err(PayloadError::Overflow)
        } else {
            Ok(())
        }
    }
}

/// The length of a header given its first bytes (2 until the second byte is known).
fn header_len(start: &[u8]) -> usize {
    let Some(&second) = start.get(1) else {
        return 2;
    };
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7F {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(&header[2..10]);
            u64::from_be_bytes(eight)
        }
        short => u64::from(short),
    }
}

/// The payload stream with the cap applied.
pub fn capped(
    payload: impl async_graphql::futures_util::Stream<Item = Result<Bytes, PayloadError>> + 'static,
    limit: usize,
) -> impl async_graphql::futures_util::Stream<Item = Result<Bytes, PayloadError>> + 'static {
    use async_graphql::futures_util::StreamExt;
    let mut cap = MessageCap::new(limit);
    payload.map(move |chunk| {
        let bytes = chunk?;
        cap.feed(&bytes)?;
        Ok(bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::MessageCap;

    /// A masked client frame: FIN flag, opcode, `len` payload bytes.
    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match len {
            0..=125 => out.push(0x80 | len as u8),
            126..=65_535 => {
                out.push(0x80 | 126);
                out.extend((len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend((len as u64).to_be_bytes());
            }
        }
        out.extend([1, 2, 3, 4]);
        out.extend(std::iter::repeat_n(b'x', len));
        out
    }

    #[test]
    fn whole_messages_under_the_limit_pass_in_any_chunking() {
        let mut bytes = frame(true, 0x1, 100);
        bytes.extend(frame(false, 0x1, 60_000));
        bytes.extend(frame(true, 0x9, 4)); // a ping between fragments
        bytes.extend(frame(true, 0x0, 30_000));
        bytes.extend(frame(true, 0x1, 90_000));
        for chunk in [1, 7, 13, 4096, bytes.len()] {
            let mut cap = MessageCap::new(100_000);
            for piece in bytes.chunks(chunk) {
                assert!(cap.feed(piece).is_ok(), "chunks of {chunk}");
            }
        }
    }

    #[test]
    fn an_endless_fragmented_message_is_cut_at_the_limit() {
        let mut cap = MessageCap::new(1_000_000);
        assert!(cap.feed(&frame(false, 0x1, 60_000)).is_ok());
        let mut fed = 60_000;
        loop {
            let result = cap.feed(&frame(false, 0x0, 60_000));
            fed += 60_000;
            if result.is_err() {
                break;
            }
            assert!(fed <= 1_000_000, "not cut at the limit");
        }
        assert!(fed > 1_000_000);
        // Once over, it stays over.
        assert!(cap.feed(&frame(true, 0x1, 1)).is_err());
    }
}
