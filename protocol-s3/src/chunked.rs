//! Streaming decoder for `Content-Encoding: aws-chunked` bodies:
//! `hex(size)[;chunk-signature=sig] CRLF data CRLF ... 0[;sig] CRLF
//! [trailers CRLF] CRLF`. Data is passed on as it arrives (never buffered
//! whole); signatures are checked at each chunk's end, and nothing is
//! published before the whole body verified.

use bytes::{Buf, Bytes, BytesMut};
use sha2::Digest;

use crate::auth::{auth_eq, ChunkSigner};
use crate::error::{ErrorCode, S3Error};

/// Longest chunk header line.
const CHUNK_LINE_BYTES_MAX: usize = 1024;
/// Largest total trailer block.
const TRAILER_BYTES_MAX: usize = 16 << 10;
/// Largest single chunk.
const CHUNK_BYTES_MAX: u64 = 256 << 20;

enum State {
    Header,
    Data { left: u64 },
    DataEnd,
    Trailers,
    Done,
}

/// The decoder.
pub struct ChunkedDecoder {
    buf: BytesMut,
    state: State,
    signer: Option<ChunkSigner>,
    expect_trailer: bool,
    chunk_sig: String,
    chunk_hash: sha2::Sha256,
    trailer_block: Vec<u8>,
    /// Trailers received (lower-case names), excluding the signature.
    pub trailers: Vec<(String, String)>,
    trailer_sig: Option<String>,
}

fn incomplete(m: &str) -> S3Error {
    S3Error::new(ErrorCode::IncompleteBody, m)
}

fn bad_sig() -> S3Error {
    S3Error::new(ErrorCode::SignatureDoesNotMatch, "a chunk signature does not match")
}

impl ChunkedDecoder {
    /// A decoder; `signer` for the signed forms, `trailer` if trailers come.
    pub fn new(signer: Option<ChunkSigner>, trailer: bool) -> Self {
        ChunkedDecoder {
            buf: BytesMut::new(),
            state: State::Header,
            signer,
            expect_trailer: trailer,
            chunk_sig: String::new(),
            chunk_hash: sha2::Sha256::new(),
            trailer_block: Vec::new(),
            trailers: Vec::new(),
            trailer_sig: None,
        }
    }

    fn take_line(&mut self, max: usize) -> Result<Option<String>, S3Error> {
        match self.buf.windows(2).position(|w| w == b"\r\n") {
            Some(i) => {
                let line = self.buf.split_to(i);
                self.buf.advance(2);
                String::from_utf8(line.to_vec()).map(Some).map_err(|_| incomplete("non-ASCII chunk framing"))
            }
            None if self.buf.len() > max => Err(incomplete("chunk framing line too long")),
            None => Ok(None),
        }
    }

    fn end_chunk(&mut self) -> Result<(), S3Error> {
        if let Some(s) = &mut self.signer {
            let digest = std::mem::take(&mut self.chunk_hash).finalize();
            let want = s.chunk_signature(&digest);
            if !auth_eq(&want, &self.chunk_sig) {
                return Err(bad_sig());
            }
            s.prev = want;
        }
        Ok(())
    }

    /// Feeds received bytes; decoded data is appended to `out`.
    pub fn push(&mut self, input: Bytes, out: &mut Vec<Bytes>) -> Result<(), S3Error> {
        self.buf.extend_from_slice(&input);
        loop {
            match self.state {
                State::Header => {
                    let Some(line) = self.take_line(CHUNK_LINE_BYTES_MAX)? else { return Ok(()) };
                    let (size, ext) = line.split_once(';').unwrap_or((&line, ""));
                    let size = u64::from_str_radix(size.trim(), 16).map_err(|_| incomplete("bad chunk size"))?;
                    if size > CHUNK_BYTES_MAX {
                        return Err(S3Error::new(ErrorCode::InvalidArgument, "aws-chunked chunk too large"));
                    }
                    if self.signer.is_some() {
                        self.chunk_sig = ext
                            .trim()
                            .strip_prefix("chunk-signature=")
                            .ok_or_else(|| S3Error::new(ErrorCode::SignatureDoesNotMatch, "missing chunk signature"))?
                            .to_string();
                    }
                    if size == 0 {
                        self.end_chunk()?;
                        // Trailer lines (if any), then the final empty line.
                        self.state = State::Trailers;
                    } else {
                        self.state = State::Data { left: size };
                    }
                }
                State::Data { left } => {
                    if self.buf.is_empty() {
                        return Ok(());
                    }
                    let n = (left as usize).min(self.buf.len());
                    let piece = self.buf.split_to(n).freeze();
                    if self.signer.is_some() {
                        self.chunk_hash.update(&piece);
                    }
                    out.push(piece);
                    self.state =
                        if left as usize == n { State::DataEnd } else { State::Data { left: left - n as u64 } };
                }
                State::DataEnd => {
                    if self.buf.len() < 2 {
                        return Ok(());
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(incomplete("chunk data longer than its declared size"));
                    }
                    self.buf.advance(2);
                    self.end_chunk()?;
                    self.state = State::Header;
                }
                State::Trailers => {
                    let Some(line) = self.take_line(TRAILER_BYTES_MAX)? else { return Ok(()) };
                    if line.is_empty() {
                        self.finish_trailers()?;
                        self.state = State::Done;
                        continue;
                    }
                    if !self.expect_trailer {
                        return Err(incomplete("data after the final chunk"));
                    }
                    let (name, value) = line.split_once(':').ok_or_else(|| incomplete("malformed trailer"))?;
                    let name = name.trim().to_ascii_lowercase();
                    if name == "x-amz-trailer-signature" {
                        self.trailer_sig = Some(value.trim().to_string());
                    } else {
                        self.trailer_block.extend_from_slice(format!("{name}:{}\n", value.trim()).as_bytes());
                        if self.trailer_block.len() > TRAILER_BYTES_MAX {
                            return Err(S3Error::new(ErrorCode::InvalidRequest, "trailers too large"));
                        }
                        self.trailers.push((name, value.trim().to_string()));
                    }
                }
                State::Done => {
                    if !self.buf.is_empty() {
                        return Err(incomplete("data after the end of the aws-chunked body"));
                    }
                    return Ok(());
                }
            }
        }
    }

    fn finish_trailers(&mut self) -> Result<(), S3Error> {
        if let Some(s) = &self.signer {
            if self.expect_trailer {
                let got = self
                    .trailer_sig
                    .as_deref()
                    .ok_or_else(|| S3Error::new(ErrorCode::SignatureDoesNotMatch, "missing trailer signature"))?;
                if !auth_eq(&s.trailer_signature(&self.trailer_block), got) {
                    return Err(bad_sig());
                }
            }
        }
        Ok(())
    }

    /// Whether the whole body was received.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(d: &mut ChunkedDecoder, wire: &[u8], step: usize) -> Result<Vec<u8>, S3Error> {
        let mut out = Vec::new();
        for piece in wire.chunks(step) {
            d.push(Bytes::copy_from_slice(piece), &mut out)?;
        }
        Ok(out.concat())
    }

    #[test]
    fn unsigned_trailer_form_in_any_split() {
        let wire = b"e\r\nhello over tls\r\n0\r\nx-amz-checksum-crc32:Br5oYg==\r\n\r\n";
        for step in [1, 2, 3, 7, 64] {
            let mut d = ChunkedDecoder::new(None, true);
            assert_eq!(decode(&mut d, wire, step).unwrap(), b"hello over tls");
            assert!(d.is_done());
            assert_eq!(d.trailers, vec![("x-amz-checksum-crc32".to_string(), "Br5oYg==".to_string())]);
        }
    }

    #[test]
    fn framing_errors() {
        let mut d = ChunkedDecoder::new(None, true);
        assert!(decode(&mut d, b"zz\r\n", 64).is_err());
        let mut d = ChunkedDecoder::new(None, true);
        assert!(decode(&mut d, b"2\r\nabc\r\n", 64).is_err(), "data longer than declared");
        let mut d = ChunkedDecoder::new(None, false);
        let out = decode(&mut d, b"3\r\nabc\r\n", 64).unwrap();
        assert_eq!(out, b"abc");
        assert!(!d.is_done(), "a body cut short is not done");
    }
}
