//! The checksum algorithms S3 clients send (CRC32, CRC32C, CRC64NVME,
//! SHA1, SHA256), computed while the body streams.

use base64::Engine;
use sha1::Digest as _;

/// A checksum algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    /// CRC-32 (ISO-HDLC), boto3's default.
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl Algo {
    /// Every algorithm.
    pub const ALL: [Algo; 5] = [Algo::Crc32, Algo::Crc32c, Algo::Crc64Nvme, Algo::Sha1, Algo::Sha256];

    /// From S3's name (`CRC32`, ...), case-insensitive.
    pub fn from_name(s: &str) -> Option<Algo> {
        Algo::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(s))
    }
    /// S3's name.
    pub fn name(self) -> &'static str {
        match self {
            Algo::Crc32 => "CRC32",
            Algo::Crc32c => "CRC32C",
            Algo::Crc64Nvme => "CRC64NVME",
            Algo::Sha1 => "SHA1",
            Algo::Sha256 => "SHA256",
        }
    }
    /// The header carrying it.
    pub fn header(self) -> &'static str {
        match self {
            Algo::Crc32 => "x-amz-checksum-crc32",
            Algo::Crc32c => "x-amz-checksum-crc32c",
            Algo::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algo::Sha1 => "x-amz-checksum-sha1",
            Algo::Sha256 => "x-amz-checksum-sha256",
        }
    }
    /// From a header name.
    pub fn from_header(h: &str) -> Option<Algo> {
        Algo::ALL.into_iter().find(|a| a.header().eq_ignore_ascii_case(h))
    }
}

/// An in-progress checksum.
pub struct Hasher {
    state: State,
}

enum State {
    Crc(crc_fast::Digest, usize),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    /// A fresh hasher.
    pub fn new(algo: Algo) -> Self {
        use crc_fast::CrcAlgorithm as C;
        let state = match algo {
            Algo::Crc32 => State::Crc(crc_fast::Digest::new(C::Crc32IsoHdlc), 4),
            Algo::Crc32c => State::Crc(crc_fast::Digest::new(C::Crc32Iscsi), 4),
            Algo::Crc64Nvme => State::Crc(crc_fast::Digest::new(C::Crc64Nvme), 8),
            Algo::Sha1 => State::Sha1(sha1::Sha1::new()),
            Algo::Sha256 => State::Sha256(sha2::Sha256::new()),
        };
        Hasher { state }
    }
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc(d, _) => d.update(data),
            State::Sha1(h) => h.update(data),
            State::Sha256(h) => h.update(data),
        }
    }
    /// The raw digest bytes.
    pub fn finish(self) -> Vec<u8> {
        match self.state {
            State::Crc(d, width) => {
                let v = d.finalize();
                v.to_be_bytes()[8 - width..].to_vec()
            }
            State::Sha1(h) => h.finalize().to_vec(),
            State::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// Base64 as S3 transmits checksums.
pub fn b64(raw: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// Decodes base64 (for Content-MD5 and checksum values).
pub fn unb64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let one = |a: Algo, d: &[u8]| {
            let mut h = Hasher::new(a);
            h.update(d);
            b64(&h.finish())
        };
        // The aws-chunked example in the S3 reference: "hello over tls".
        assert_eq!(one(Algo::Crc32, b"hello over tls"), "Br5oYg==");
        assert_eq!(one(Algo::Sha256, b""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(Algo::from_name("crc64nvme"), Some(Algo::Crc64Nvme));
        assert_eq!(Algo::from_header("X-Amz-Checksum-Crc32c"), Some(Algo::Crc32c));
    }
}
