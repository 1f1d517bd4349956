//! A bounds-checked little-endian reader over a byte slice.
//!
//! Every read checks the bytes left first and fails with [`Error::Truncated`]; nothing here
//! allocates more than the bytes actually present.

use crate::error::{Error, Result};

/// A position in a byte slice.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` bytes, consumed.
    pub(crate) fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let have = self.remaining();
        let n_usize = usize::try_from(n).ok().filter(|&n| n <= have);
        let Some(n) = n_usize else {
            return Err(Error::truncated(what(), n, have as u64));
        };
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        let b = self.take(N as u64, what)?;
        Ok(b.try_into().expect("take returned exactly N bytes"))
    }

    pub(crate) fn u8(&mut self, what: &dyn Fn() -> String) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &dyn Fn() -> String) -> Result<u16> {
        self.array(what).map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A GGUF string: `u64` length, then UTF-8 bytes; longer than `cap` is refused before
    /// the bytes are looked at.
    pub(crate) fn string(&mut self, cap: u64, what: &dyn Fn() -> String) -> Result<&'a str> {
        let len = self.u64(what)?;
        if len > cap {
            return Err(Error::StringTooLong {
                what: what(),
                len,
                cap,
            });
        }
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes).map_err(|_| Error::BadUtf8 { what: what() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads past the end fail with the bytes needed and present, and consume nothing.
    #[test]
    fn short_reads_are_truncated_errors() {
        let mut c = Cursor::new(&[1, 0, 0]);
        let err = c.u32(&|| "x".into()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    needed: 4,
                    have: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(c.u16(&|| "x".into()).unwrap(), 1);
        let err = c.take(u64::MAX, &|| "y".into()).unwrap_err();
        assert!(matches!(err, Error::Truncated { have: 1, .. }), "{err}");
    }

    /// Strings are length-capped before reading and UTF-8 checked.
    #[test]
    fn strings_capped_and_checked() {
        let mut buf = 3u64.to_le_bytes().to_vec();
        buf.extend_from_slice(b"abc");
        assert_eq!(Cursor::new(&buf).string(8, &|| "s".into()).unwrap(), "abc");
        let err = Cursor::new(&buf).string(2, &|| "s".into()).unwrap_err();
        assert!(
            matches!(err, Error::StringTooLong { len: 3, cap: 2, .. }),
            "{err}"
        );
        let mut bad = 1u64.to_le_bytes().to_vec();
        bad.push(0xff);
        let err = Cursor::new(&bad).string(8, &|| "s".into()).unwrap_err();
        assert!(matches!(err, Error::BadUtf8 { .. }), "{err}");
    }
}
