//! [`Detokenizer`]: streaming ids to text without ever emitting broken UTF-8.
//!
//! One token may carry half a character (byte-fallback `<0xE4>`, or a byte-level piece
//! ending inside a multi-byte sequence). The detokenizer appends each token's bytes to a
//! small pending buffer and releases the longest prefix that is final: complete characters,
//! plus U+FFFD for byte runs that can no longer become valid. A trailing run that may still
//! be completed is held back until the next token or [`Detokenizer::flush`]. The released
//! pieces therefore concatenate to exactly `String::from_utf8_lossy` of all bytes, which is
//! what [`Tokenizer::decode`] returns. For tokenizers whose decode drops one leading space
//! (SentencePiece with a prefix space, like Llama 2), the first released text drops it too.

use crate::error::Result;
use crate::tokenizer::Tokenizer;

/// Incremental decoder over one generated sequence.
#[derive(Debug)]
pub struct Detokenizer<'a> {
    tokenizer: &'a Tokenizer,
    skip_special: bool,
    pending: Vec<u8>,
    /// Nothing has been released yet and the tokenizer's decode strips one leading space.
    strip_next_space: bool,
}

impl<'a> Detokenizer<'a> {
    /// A detokenizer for `tokenizer`; `skip_special` drops control tokens as
    /// [`Tokenizer::decode`] does.
    pub fn new(tokenizer: &'a Tokenizer, skip_special: bool) -> Detokenizer<'a> {
        Detokenizer {
            tokenizer,
            skip_special,
            pending: Vec::new(),
            strip_next_space: tokenizer.strips_leading_space(),
        }
    }

    /// Adds one token. Returns the newly completed text, or `None` when nothing new is
    /// final yet. Fails only on an id outside the vocabulary (the state is unchanged then).
    pub fn push(&mut self, id: u32) -> Result<Option<String>> {
        if let Some(piece) = self.tokenizer.piece(id, self.skip_special)? {
            self.pending.extend_from_slice(piece);
        }
        let ready = release(&mut self.pending);
        Ok(self.emit(ready))
    }

    /// Applies the one-time leading-space strip; `None` for empty text.
    fn emit(&mut self, mut text: String) -> Option<String> {
        if self.strip_next_space && !text.is_empty() {
            self.strip_next_space = false;
            if text.starts_with(' ') {
                text.remove(0);
            }
        }
        (!text.is_empty()).then_some(text)
    }

    /// Ends the stream: any held-back partial character is released as U+FFFD. Returns
    /// `None` when nothing was pending.
    pub fn flush(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        self.emit(text)
    }
}

/// Takes the final prefix out of `pending`, leaving only an incomplete trailing sequence.
fn release(pending: &mut Vec<u8>) -> String {
    let mut out = String::new();
    let mut start = 0usize;
    while start < pending.len() {
        match std::str::from_utf8(&pending[start..]) {
            Ok(valid) => {
                out.push_str(valid);
                start = pending.len();
            }
            Err(e) => {
                let valid_end = start + e.valid_up_to();
                out.push_str(
                    std::str::from_utf8(&pending[start..valid_end])
                        .expect("valid_up_to bounds valid UTF-8"),
                );
                match e.error_len() {
                    // The tail may still be completed by later bytes: hold it.
                    None => {
                        start = valid_end;
                        break;
                    }
                    // Invalid for good: one replacement character, as from_utf8_lossy does.
                    Some(n) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        start = valid_end + n;
                    }
                }
            }
        }
    }
    pending.drain(..start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splitting a byte stream anywhere and releasing piecewise equals lossy decoding of the whole.
    #[test]
    fn piecewise_release_equals_lossy_whole() {
        let samples: [&[u8]; 5] = [
            "héllo 世界 👩‍👩‍👧".as_bytes(),
            b"\xF0\x9F\x41\xE4\xB8",
            b"\xFF\xFEabc\xC3",
            b"\xE4\xB8\x96\xE7",
            b"",
        ];
        for bytes in samples {
            for chunk in 1..=4 {
                let mut pending = Vec::new();
                let mut out = String::new();
                for part in bytes.chunks(chunk) {
                    pending.extend_from_slice(part);
                    out.push_str(&release(&mut pending));
                    assert!(
                        pending.len() < 4,
                        "held back more than one partial character"
                    );
                }
                out.push_str(&String::from_utf8_lossy(&pending));
                assert_eq!(
                    out,
                    String::from_utf8_lossy(bytes),
                    "bytes {bytes:?} chunk {chunk}"
                );
            }
        }
    }

    /// A partial character is held until completed.
    #[test]
    fn holds_partial_character() {
        let mut pending = b"a\xE4\xB8".to_vec();
        assert_eq!(release(&mut pending), "a");
        assert_eq!(pending, b"\xE4\xB8");
        pending.push(0x96);
        assert_eq!(release(&mut pending), "世");
        assert!(pending.is_empty());
    }
}
