//! Record marking (RFC 5531 §11): a record is one or more fragments, each
//! behind a 4-byte header holding a last-fragment bit and a 31-bit length.
//! The whole record's size is checked against a cap **before** any buffer
//! is grown for it, so a header claiming 2 GiB costs nothing.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest record accepted: a 1 MiB WRITE plus 64 KiB for headers.
pub const RECORD_BYTES_MAX: usize = (1 << 20) + (64 << 10);
/// Largest single fragment a reply is split into.
const REPLY_FRAGMENT_BYTES_MAX: usize = 1 << 30;
const LAST_FRAGMENT: u32 = 0x8000_0000;

/// Why a record could not be read; every case closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The record is larger than allowed.
    #[error("record of at least {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// The connection ended inside a record.
    #[error("connection closed inside a record")]
    Truncated,
    /// A read failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one record; `Ok(None)` when the peer closed between records.
pub async fn read_record<R: AsyncRead + Unpin>(r: &mut R, max_bytes: usize) -> Result<Option<Vec<u8>>, RecordError> {
    let mut record: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let mut head = [0u8; 4];
        match r.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return if first { Ok(None) } else { Err(RecordError::Truncated) };
            }
            Err(e) => return Err(e.into()),
        }
        first = false;
        let h = u32::from_be_bytes(head);
        let len = (h & !LAST_FRAGMENT) as usize;
        let total = record.len() + len;
        if total > max_bytes {
            return Err(RecordError::TooLarge(total));
        }
        let start = record.len();
        record.resize(total, 0);
        match r.read_exact(&mut record[start..]).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(RecordError::Truncated),
            Err(e) => return Err(e.into()),
        }
        if h & LAST_FRAGMENT != 0 {
            return Ok(Some(record));
        }
    }
}

/// Frames a reply as a record (one fragment unless it is enormous).
pub fn frame_reply(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    let mut pieces = body.chunks(REPLY_FRAGMENT_BYTES_MAX).peekable();
    if pieces.peek().is_none() {
        out.extend_from_slice(&LAST_FRAGMENT.to_be_bytes());
    }
    while let Some(p) = pieces.next() {
        let last = if pieces.peek().is_none() { LAST_FRAGMENT } else { 0 };
        out.extend_from_slice(&(p.len() as u32 | last).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(data: &[u8], last: bool) -> Vec<u8> {
        let mut v = ((data.len() as u32) | if last { LAST_FRAGMENT } else { 0 }).to_be_bytes().to_vec();
        v.extend_from_slice(data);
        v
    }

    #[tokio::test]
    async fn multi_fragment_records_assemble() {
        let wire = [frag(b"abc", false), frag(b"", false), frag(b"defg", true), frag(b"next", true)].concat();
        let mut r = &wire[..];
        assert_eq!(read_record(&mut r, 100).await.unwrap().unwrap(), b"abcdefg");
        assert_eq!(read_record(&mut r, 100).await.unwrap().unwrap(), b"next");
        assert!(read_record(&mut r, 100).await.unwrap().is_none(), "clean end between records");
    }

    #[tokio::test]
    async fn absurd_lengths_fail_before_allocating() {
        // A 4-byte header claiming 2 GiB and nothing after it.
        let wire = 0xFFFF_FFFFu32.to_be_bytes();
        let mut r = &wire[..];
        assert!(matches!(read_record(&mut r, RECORD_BYTES_MAX).await, Err(RecordError::TooLarge(_))));
        // Many small fragments that add up past the cap.
        let wire: Vec<u8> = (0..5).flat_map(|_| frag(&[0u8; 30], false)).collect();
        let mut r = &wire[..];
        assert!(matches!(read_record(&mut r, 100).await, Err(RecordError::TooLarge(_))));
    }

    #[tokio::test]
    async fn truncated_records_are_errors() {
        let wire = [&frag(b"abc", false)[..], &8u32.to_be_bytes(), b"xy"].concat();
        let mut r = &wire[..];
        assert!(matches!(read_record(&mut r, 100).await, Err(RecordError::Truncated)));
        let half_header = [0x80u8, 0];
        let mut r = &half_header[..];
        assert!(read_record(&mut r, 100).await.unwrap().is_none());
    }

    #[test]
    fn replies_are_single_last_fragments() {
        assert_eq!(frame_reply(b"hi"), [&[0x80, 0, 0, 2][..], b"hi"].concat());
        assert_eq!(frame_reply(b""), vec![0x80, 0, 0, 0]);
    }
}
