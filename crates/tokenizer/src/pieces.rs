//! The bytes each token contributes to decoded text.
//!
//! Decoding is concatenation: `decode(ids)` is the lossy UTF-8 reading of the
//! concatenated pieces, and the streaming [`crate::Detokenizer`] reads the same bytes
//! incrementally. Building one table up front (llama.cpp's `cache_token_to_piece`) keeps
//! both paths identical by construction.
//!
//! Two encodings exist in the models we load:
//! - byte-level BPE (GPT-2 family): every byte is stored as a printable code point
//!   (`Ġ` for a space, `Ċ` for a newline); decoding maps each code point back;
//! - SentencePiece: `▁` stands for a space and byte-fallback tokens `<0xXX>` carry one raw byte.

use std::collections::HashMap;

use crate::vocab::TokenClass;

/// How normal vocabulary pieces map to bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PieceStyle {
    /// GPT-2 byte-to-unicode mapping.
    ByteLevel,
    /// SentencePiece: `▁` is a space, `<0xXX>` is a byte.
    SentencePiece,
}

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other 68
/// bytes to U+0100 onwards, in byte order.
pub(crate) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (byte, slot) in table.iter_mut().enumerate() {
        let b = byte as u32;
        let printable =
            (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        let code = if printable {
            b
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(code).expect("code points below U+0144 are valid scalars");
    }
    table
}

/// The inverse of [`byte_to_char_table`].
fn char_to_byte_map() -> HashMap<char, u8> {
    (0u8..=255)
        .zip(byte_to_char_table())
        .map(|(b, c)| (c, b))
        .collect()
}

/// Parses a SentencePiece byte token `<0xXX>` (two hex digits, either case).
pub(crate) fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Builds the piece table for a vocabulary.
///
/// Control, unknown, unused and user-defined tokens decode to their text verbatim (for
/// SentencePiece with `▁` unescaped); normal tokens go through `style`; byte tokens
/// become their byte. A byte-level piece containing a code point outside the GPT-2 table
/// (possible only in a malformed vocabulary) falls back to its UTF-8 text, as the
/// `tokenizers` ByteLevel decoder does.
pub(crate) fn build(
    tokens: &[String],
    classes: &[TokenClass],
    style: PieceStyle,
) -> Vec<Box<[u8]>> {
    let char_to_byte = match style {
        PieceStyle::ByteLevel => Some(char_to_byte_map()),
        PieceStyle::SentencePiece => None,
    };
    tokens
        .iter()
        .zip(classes)
        .map(|(text, class)| piece(text, *class, style, char_to_byte.as_ref()).into_boxed_slice())
        .collect()
}

fn piece(
    text: &str,
    class: TokenClass,
    style: PieceStyle,
    char_to_byte: Option<&HashMap<char, u8>>,
) -> Vec<u8> {
    match (style, class) {
        (PieceStyle::SentencePiece, TokenClass::Byte) => match parse_byte_token(text) {
            Some(b) => vec![b],
            None => text.as_bytes().to_vec(),
        },
        (PieceStyle::SentencePiece, _) => text.replace('\u{2581}', " ").into_bytes(),
        (PieceStyle::ByteLevel, TokenClass::Normal | TokenClass::Byte) => {
            let map = char_to_byte.expect("byte-level style always builds its map");
            text.chars()
                .map(|c| map.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .unwrap_or_else(|| text.as_bytes().to_vec())
        }
        (PieceStyle::ByteLevel, _) => text.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GPT-2 table is a bijection onto 256 distinct code points with the well-known anchors.
    #[test]
    fn byte_level_table_anchors() {
        let t = byte_to_char_table();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[0], '\u{100}');
        let mut sorted = t.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
    }

    /// Byte-level pieces decode through the table; control tokens stay verbatim.
    #[test]
    fn byte_level_pieces() {
        let tokens = vec![
            "Ġhello".to_string(),
            "<|im_end|>".to_string(),
            "ĊĊ".to_string(),
            "Ã©".to_string(),
        ];
        let classes = [
            TokenClass::Normal,
            TokenClass::Control,
            TokenClass::Normal,
            TokenClass::Normal,
        ];
        let p = build(&tokens, &classes, PieceStyle::ByteLevel);
        assert_eq!(&*p[0], b" hello");
        assert_eq!(&*p[1], b"<|im_end|>");
        assert_eq!(&*p[2], b"\n\n");
        assert_eq!(&*p[3], "é".as_bytes());
    }

    /// SentencePiece pieces unescape `▁` and read byte tokens; bad byte tokens stay text.
    #[test]
    fn sentencepiece_pieces() {
        let tokens = vec![
            "▁the".to_string(),
            "<0x0A>".to_string(),
            "<0xZZ>".to_string(),
            "<start_of_turn>".to_string(),
        ];
        let classes = [
            TokenClass::Normal,
            TokenClass::Byte,
            TokenClass::Byte,
            TokenClass::Control,
        ];
        let p = build(&tokens, &classes, PieceStyle::SentencePiece);
        assert_eq!(&*p[0], b" the");
        assert_eq!(&*p[1], b"\n");
        assert_eq!(&*p[2], b"<0xZZ>");
        assert_eq!(&*p[3], b"<start_of_turn>");
        assert_eq!(parse_byte_token("<0xfe>"), Some(0xFE));
        assert_eq!(parse_byte_token("<0x100>"), None);
    }
}
