//! Deterministic patterns: a pseudo-random generator, shuffles, and the
//! content of every byte of a dataset.
//!
//! Architecture invariant: everything here is a pure function of the seed
//! (and of the file name and offset for content). The generator is
//! SplitMix64, written out here rather than taken from `rand`, so a dataset
//! prepared by one build reads back as valid with any later build: a crate
//! update can never change the bytes or the access order of a seed.

/// The SplitMix64 increment (the golden ratio in 64 bits).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finaliser: a bijective mix of 64 bits.
pub fn mix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a byte string, to turn a file name into a number.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A SplitMix64 stream.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A stream for `seed` and a purpose (`stream`), so that the shuffle of
    /// epoch 2 does not depend on how many numbers epoch 1 drew.
    pub fn new(seed: u64, stream: u64) -> Rng {
        Rng { state: mix64(seed ^ mix64(stream)) }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A number in `0..n` (multiply-shift; the bias is below 2^-32 for the
    /// sizes used here). `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        lo + self.below(hi - lo + 1)
    }

    /// Fisher-Yates shuffle in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The content key of a file: every byte of the file is a function of this
/// key and the byte's offset.
pub fn content_key(seed: u64, path: &str) -> u64 {
    mix64(seed ^ fnv1a64(path.as_bytes()))
}

/// The 8-byte word at word index `word` of the file with key `key`.
fn word(key: u64, word: u64) -> u64 {
    mix64(key ^ word.wrapping_mul(GOLDEN_GAMMA))
}

/// Fills `buf` with the file's bytes from `offset` on.
pub fn fill(key: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = 0usize;
    while pos < buf.len() {
        let abs = offset + pos as u64;
        let w = word(key, abs / 8).to_le_bytes();
        let start = (abs % 8) as usize;
        let n = (8 - start).min(buf.len() - pos);
        buf[pos..pos + n].copy_from_slice(&w[start..start + n]);
        pos += n;
    }
}

/// The file's bytes `offset..offset+len` as a new buffer.
pub fn bytes_at(key: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill(key, offset, &mut v);
    v
}

/// The offset (relative to the file) of the first byte of `data`, read at
/// `offset`, that is not what the pattern says; `None` when all match.
pub fn first_mismatch(key: u64, offset: u64, data: &[u8]) -> Option<u64> {
    let mut pos = 0usize;
    while pos < data.len() {
        let abs = offset + pos as u64;
        let w = word(key, abs / 8).to_le_bytes();
        let start = (abs % 8) as usize;
        let n = (8 - start).min(data.len() - pos);
        if data[pos..pos + n] != w[start..start + n] {
            let i = (0..n).find(|&i| data[pos + i] != w[start + i]).unwrap_or(0);
            return Some(abs + i as u64);
        }
        pos += n;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_pinned() {
        // The first outputs of SplitMix64 seeded with 0 (the reference
        // implementation's test vector): a change here changes every dataset.
        let mut r = Rng { state: 0 };
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn streams_differ_and_repeat() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, 1);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, 1);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, 2);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_and_shuffle() {
        let mut r = Rng::new(1, 0);
        for n in [1u64, 2, 3, 1000, u64::MAX] {
            for _ in 0..100 {
                assert!(r.below(n) < n);
            }
        }
        let mut v: Vec<u32> = (0..1000).collect();
        r.shuffle(&mut v);
        assert_ne!(v, (0..1000).collect::<Vec<_>>(), "a shuffle moves things");
        v.sort();
        assert_eq!(v, (0..1000).collect::<Vec<_>>(), "a shuffle is a permutation");
    }

    #[test]
    fn content_is_offset_independent() {
        let key = content_key(42, "unet3d/img_0000001.npz");
        let whole = bytes_at(key, 0, 100);
        for (off, len) in [(0usize, 100usize), (1, 7), (3, 50), (8, 8), (13, 0), (99, 1)] {
            assert_eq!(bytes_at(key, off as u64, len), &whole[off..off + len], "{off}+{len}");
            assert_eq!(first_mismatch(key, off as u64, &whole[off..off + len]), None);
        }
        let mut bad = whole[10..40].to_vec();
        bad[5] ^= 1;
        assert_eq!(first_mismatch(key, 10, &bad), Some(15));
        assert_ne!(bytes_at(content_key(43, "unet3d/img_0000001.npz"), 0, 16), whole[..16]);
        assert_ne!(bytes_at(content_key(42, "unet3d/img_0000002.npz"), 0, 16), whole[..16]);
    }
}
