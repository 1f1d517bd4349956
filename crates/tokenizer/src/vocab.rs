//! Token classes and special-token bookkeeping shared by every tokenizer source.
//!
//! A token's class decides three things: whether its text is split out of input before
//! the model sees it (user-defined always; control and unknown only when special tokens
//! are parsed), whether `decode(skip_special = true)` drops it, and how its bytes are
//! produced. The end-of-generation set follows llama.cpp's `special_eog_ids`: the eos and
//! eot ids plus every token whose text is one of the well-known turn/stream terminators.

/// What kind of token an id is (GGUF `tokenizer.ggml.token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenClass {
    /// An ordinary vocabulary piece (type 1, and any unknown type value).
    Normal,
    /// The unknown token (type 2).
    Unknown,
    /// A control token such as `<|im_start|>` or `<bos>` (type 3).
    Control,
    /// A user-defined token, always matched verbatim in input text (type 4).
    UserDefined,
    /// A reserved, unused slot (type 5).
    Unused,
    /// A byte-fallback token `<0xXX>` (type 6).
    Byte,
}

impl TokenClass {
    /// Maps a GGUF `token_type` value; values outside 1..=6 count as normal, as in
    /// llama.cpp (which calls them "undefined" and treats them like normal pieces).
    pub fn from_gguf(token_type: i32) -> TokenClass {
        match token_type {
            2 => TokenClass::Unknown,
            3 => TokenClass::Control,
            4 => TokenClass::UserDefined,
            5 => TokenClass::Unused,
            6 => TokenClass::Byte,
            _ => TokenClass::Normal,
        }
    }

    /// True for tokens that `decode(skip_special = true)` drops.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            TokenClass::Control | TokenClass::Unknown | TokenClass::Unused
        )
    }

    /// True for tokens whose text `encode_with_special_tokens` recognises in input
    /// (llama.cpp's `parse_special` set, less the user-defined ones, which are always split).
    pub fn is_parsed_special(self) -> bool {
        matches!(self, TokenClass::Control | TokenClass::Unknown)
    }
}

/// Token texts that end generation wherever they appear in a vocabulary
/// (llama.cpp `llama_vocab::impl::load`, the `special_eog_ids` text list).
pub const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
];

/// Token texts llama.cpp adopts as the eot id when `tokenizer.ggml.eot_token_id` is absent.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "<end_of_utterance>",
];

/// Fill-in-the-middle pad/repo/file-separator texts: llama.cpp stops generation on these too.
const FIM_EOG_TEXTS: &[&str] = &[
    "<|fim_pad|>",
    "<fim-pad>",
    "<fim_pad>",
    "<PAD>",
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
    "<|file_sep|>",
];

/// Computes the end-of-generation ids and marks each of them as a control token.
///
/// `eos` and `eot` come from metadata; when `eot` is absent the first vocabulary entry
/// (lowest id) with an [`EOT_TEXTS`] text is adopted, as llama.cpp does. Returns the ids
/// sorted ascending.
pub(crate) fn eog_ids(
    tokens: &[String],
    classes: &mut [TokenClass],
    eos: Option<u32>,
    eot: Option<u32>,
) -> Vec<u32> {
    let by_text = |list: &[&str]| -> Vec<u32> {
        (0u32..)
            .zip(tokens)
            .filter(|(_, t)| list.contains(&t.as_str()))
            .map(|(id, _)| id)
            .collect()
    };
    let eot = eot.or_else(|| by_text(EOT_TEXTS).first().copied());
    let mut ids = by_text(EOG_TEXTS);
    ids.extend(by_text(FIM_EOG_TEXTS));
    ids.extend(eos);
    ids.extend(eot);
    ids.sort_unstable();
    ids.dedup();
    for &id in &ids {
        if let Some(class) = classes.get_mut(id as usize)
            && !class.is_special()
        {
            *class = TokenClass::Control;
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    /// ChatML-style vocabularies stop on `<|im_end|>` and `<|endoftext|>`, and those become control tokens.
    #[test]
    fn eog_covers_chatml_terminators() {
        let tokens = strings(&["<|endoftext|>", "<|im_start|>", "<|im_end|>", "hello"]);
        let mut classes = vec![TokenClass::Normal; 4];
        let ids = eog_ids(&tokens, &mut classes, Some(0), None);
        assert_eq!(ids, vec![0, 2]);
        assert_eq!(classes[2], TokenClass::Control);
        assert_eq!(classes[3], TokenClass::Normal);
    }

    /// An explicit eot id joins the set even when its text is not a known terminator.
    #[test]
    fn explicit_eot_is_eog() {
        let tokens = strings(&["a", "b", "<stop>"]);
        let mut classes = vec![TokenClass::Normal; 3];
        assert_eq!(eog_ids(&tokens, &mut classes, None, Some(2)), vec![2]);
        assert!(classes[2].is_special());
    }

    /// GGUF type values map onto classes, unknown values onto `Normal`.
    #[test]
    fn gguf_type_mapping() {
        assert_eq!(TokenClass::from_gguf(3), TokenClass::Control);
        assert_eq!(TokenClass::from_gguf(6), TokenClass::Byte);
        assert_eq!(TokenClass::from_gguf(0), TokenClass::Normal);
        assert_eq!(TokenClass::from_gguf(99), TokenClass::Normal);
        assert!(TokenClass::Unused.is_special() && !TokenClass::Unused.is_parsed_special());
        assert!(!TokenClass::UserDefined.is_special());
    }
}
