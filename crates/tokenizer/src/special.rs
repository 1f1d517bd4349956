//! Finding special-token text in input, for `encode_with_special_tokens`.
//!
//! Rendered chat templates carry their control tokens as text (`<|im_start|>user`); this
//! module splits such text into literal fragments and special-token ids. Matching is
//! leftmost-longest over a byte trie, so `<|im_start|>` wins over a shorter token that is
//! its prefix. Only tokens the caller registers are matched (control and unknown tokens):
//! user-defined tokens are split by the encoding pipeline itself.

/// One piece of split input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fragment<'a> {
    /// Ordinary text, to be run through the encoder.
    Text(&'a str),
    /// A special token found verbatim.
    Token(u32),
}

/// How a special token treats whitespace next to it (Hugging Face `lstrip`/`rstrip`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Strip {
    /// Whitespace before the token is swallowed.
    pub left: bool,
    /// Whitespace after the token is swallowed.
    pub right: bool,
}

#[derive(Default)]
struct Node {
    /// Children sorted by byte, searched by binary search.
    children: Vec<(u8, u32)>,
    /// The token ending here, if any.
    token: Option<(u32, Strip)>,
}

/// A byte trie over special-token texts.
pub(crate) struct SpecialMatcher {
    nodes: Vec<Node>,
}

impl SpecialMatcher {
    /// Builds the trie. Empty texts are ignored; a text registered twice keeps its first id.
    pub(crate) fn new<'a>(
        entries: impl IntoIterator<Item = (&'a str, u32, Strip)>,
    ) -> SpecialMatcher {
        let mut m = SpecialMatcher {
            nodes: vec![Node::default()],
        };
        for (text, id, strip) in entries {
            if text.is_empty() {
                continue;
            }
            let mut at = 0usize;
            for &b in text.as_bytes() {
                at = m.child_or_insert(at, b);
            }
            m.nodes[at].token.get_or_insert((id, strip));
        }
        m
    }

    fn child_or_insert(&mut self, at: usize, b: u8) -> usize {
        match self.nodes[at]
            .children
            .binary_search_by_key(&b, |(k, _)| *k)
        {
            Ok(i) => self.nodes[at].children[i].1 as usize,
            Err(i) => {
                let new = self.nodes.len();
                self.nodes.push(Node::default());
                let new_u32 = u32::try_from(new)
                    .expect("a trie over a u32-indexed vocabulary has < 2^32 nodes");
                self.nodes[at].children.insert(i, (b, new_u32));
                new
            }
        }
    }

    /// The longest registered token starting at `text[start..]`: its id, strip flags and byte length.
    fn longest_at(&self, text: &[u8], start: usize) -> Option<(u32, Strip, usize)> {
        let mut at = 0usize;
        let mut best = None;
        for (offset, &b) in text[start..].iter().enumerate() {
            let node = &self.nodes[at];
            match node.children.binary_search_by_key(&b, |(k, _)| *k) {
                Ok(i) => at = node.children[i].1 as usize,
                Err(_) => break,
            }
            if let Some((id, strip)) = self.nodes[at].token {
                best = Some((id, strip, offset + 1));
            }
        }
        best
    }

    /// Splits `text` into text fragments and special tokens, leftmost-longest. Fragments
    /// are never empty; `lstrip`/`rstrip` tokens swallow adjacent whitespace.
    pub(crate) fn split<'a>(&self, text: &'a str) -> Vec<Fragment<'a>> {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut literal_start = 0usize;
        let mut pos = 0usize;
        while pos < bytes.len() {
            // Tokens are valid UTF-8 strings, so a match always starts and ends on char boundaries.
            let Some((id, strip, len)) = self.longest_at(bytes, pos) else {
                pos += 1;
                continue;
            };
            let mut literal = &text[literal_start..pos];
            if strip.left {
                literal = literal.trim_end();
            }
            if !literal.is_empty() {
                out.push(Fragment::Text(literal));
            }
            out.push(Fragment::Token(id));
            pos += len;
            if strip.right {
                pos = text.len() - text[pos..].trim_start().len();
            }
            literal_start = pos;
        }
        if literal_start < text.len() {
            out.push(Fragment::Text(&text[literal_start..]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> SpecialMatcher {
        SpecialMatcher::new([
            ("<|im_start|>", 1, Strip::default()),
            ("<|im", 7, Strip::default()),
            ("<|im_end|>", 2, Strip::default()),
            (
                "<mask>",
                3,
                Strip {
                    left: true,
                    right: false,
                },
            ),
        ])
    }

    /// Text around and between tokens is kept; the longest token wins at each position.
    #[test]
    fn splits_leftmost_longest() {
        let m = matcher();
        assert_eq!(
            m.split("<|im_start|>user\nhi<|im_end|>\n"),
            vec![
                Fragment::Token(1),
                Fragment::Text("user\nhi"),
                Fragment::Token(2),
                Fragment::Text("\n"),
            ]
        );
        assert_eq!(
            m.split("<|imx"),
            vec![Fragment::Token(7), Fragment::Text("x")]
        );
        assert_eq!(m.split(""), Vec::<Fragment>::new());
        assert_eq!(
            m.split("plain é text"),
            vec![Fragment::Text("plain é text")]
        );
    }

    /// An lstrip token swallows the whitespace before it.
    #[test]
    fn lstrip_swallows_whitespace() {
        assert_eq!(
            matcher().split("a  <mask>b"),
            vec![Fragment::Text("a"), Fragment::Token(3), Fragment::Text("b")]
        );
    }
}
