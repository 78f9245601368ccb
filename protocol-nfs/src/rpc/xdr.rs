//! A bounds-checked XDR reader and a small writer. Every length read from
//! the wire is checked against a limit and against what remains of the
//! record before anything is sliced or allocated.

/// Decoding ran past the data or hit a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XDR: {0}")]
pub struct XdrError(pub &'static str);

/// Reads XDR from a record.
pub struct XdrReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> XdrReader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        XdrReader { buf, pos: 0 }
    }
    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, XdrError> {
        let b = self.buf.get(self.pos..self.pos + 4).ok_or(XdrError("truncated integer"))?;
        self.pos += 4;
        Ok(u32::from_be_bytes(b.try_into().expect("4 bytes")))
    }
    /// A big-endian u64 (XDR hyper).
    pub fn u64(&mut self) -> Result<u64, XdrError> {
        Ok(((self.u32()? as u64) << 32) | self.u32()? as u64)
    }
    /// An XDR bool: 0 or 1, anything else is malformed.
    pub fn bool(&mut self) -> Result<bool, XdrError> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(XdrError("bool other than 0 or 1")),
        }
    }
    /// Fixed-length opaque data of `N` bytes (N a multiple of 4).
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], XdrError> {
        let b = self.buf.get(self.pos..self.pos + N).ok_or(XdrError("truncated fixed opaque"))?;
        self.pos += N.div_ceil(4) * 4;
        Ok(b.try_into().expect("N bytes"))
    }
    /// Variable-length opaque data of at most `max` bytes (plus padding).
    pub fn opaque(&mut self, max: usize) -> Result<&'a [u8], XdrError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(XdrError("opaque longer than allowed"));
        }
        let padded = len.div_ceil(4) * 4;
        if padded > self.remaining() {
            return Err(XdrError("opaque longer than the record"));
        }
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += padded;
        Ok(out)
    }
    /// An array of u32 of at most `max` elements.
    pub fn u32_array(&mut self, max: usize) -> Result<Vec<u32>, XdrError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(XdrError("array longer than allowed"));
        }
        if n * 4 > self.remaining() {
            return Err(XdrError("array longer than the record"));
        }
        (0..n).map(|_| self.u32()).collect()
    }
}

/// Writes XDR.
#[derive(Default)]
pub struct XdrWriter {
    /// The bytes written.
    pub buf: Vec<u8>,
}

impl XdrWriter {
    /// A big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Variable-length opaque data with padding.
    pub fn opaque(&mut self, data: &[u8]) -> &mut Self {
        self.u32(data.len() as u32);
        self.buf.extend_from_slice(data);
        self.buf.resize(self.buf.len().div_ceil(4) * 4, 0);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaques_are_padded_and_bounded() {
        let mut w = XdrWriter::default();
        w.opaque(b"abcde").u32(7);
        assert_eq!(w.buf.len(), 4 + 8 + 4);
        let mut r = XdrReader::new(&w.buf);
        assert_eq!(r.opaque(16).unwrap(), b"abcde");
        assert_eq!(r.u32().unwrap(), 7);
        let mut r = XdrReader::new(&w.buf);
        assert!(r.opaque(4).is_err(), "over the limit");
        let claim = [0xFF, 0xFF, 0xFF, 0xF0];
        assert!(XdrReader::new(&claim).opaque(usize::MAX).is_err(), "longer than the record");
        assert!(XdrReader::new(&claim).u32_array(usize::MAX).is_err());
    }
}
