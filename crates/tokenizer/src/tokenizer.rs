//! [`Tokenizer`]: text to token ids and back, whatever the source of the vocabulary.
//!
//! Encoding runs the Hugging Face `tokenizers` pipeline built by [`crate::gguf`] or
//! [`crate::hf`]. Decoding does not: every token's bytes are precomputed once
//! ([`crate::pieces`]) and decoding concatenates them, so [`Tokenizer::decode`] and the
//! streaming [`crate::Detokenizer`] agree byte for byte by construction.

use skiff_formats::{SpecialTokens, TokenizerSpec};

use crate::error::{Error, Result};
use crate::gguf::spm::SpmEncoder;
use crate::pieces::{self, PieceStyle};
use crate::special::{Fragment, SpecialMatcher, Strip};
use crate::vocab::{self, TokenClass};

/// Largest text `encode` accepts: 256 MiB, far above any context window, well below where
/// offsets or allocation sizes could overflow.
pub const MAX_ENCODE_BYTES: usize = 256 << 20;

/// The pipeline that encodes plain text (special-token text is not parsed by it).
pub(crate) enum Encoder {
    /// A `tokenizers` pipeline: byte-level BPE, or a `tokenizer.json`.
    Hf(Box<tokenizers::Tokenizer>),
    /// SentencePiece by token scores (GGUF `llama` vocabularies).
    Spm(SpmEncoder),
}

/// Everything a tokenizer source provides, before the shared tables are derived.
pub(crate) struct Parts {
    /// The encoding pipeline (special-token text is not parsed by it).
    pub inner: Encoder,
    /// Token texts by id.
    pub tokens: Vec<String>,
    /// Token classes by id.
    pub classes: Vec<TokenClass>,
    /// A pipeline that recognises special-token text itself (`tokenizer.json` sources);
    /// `None` to split special tokens with [`SpecialMatcher`] (GGUF sources).
    pub special_inner: Option<tokenizers::Tokenizer>,
    /// How normal pieces decode.
    pub style: PieceStyle,
    /// Special ids and flags.
    pub special: SpecialTokens,
    /// `add_bos` when `special.add_bos` is `None`.
    pub default_add_bos: bool,
    /// `decode` drops one leading space.
    pub strip_leading_space: bool,
    /// Description.
    pub kind: String,
}

/// A loaded tokenizer: encoding, decoding and special-token facts for one model.
pub struct Tokenizer {
    inner: Encoder,
    special_inner: Option<tokenizers::Tokenizer>,
    tokens: Vec<String>,
    classes: Vec<TokenClass>,
    pieces: Vec<Box<[u8]>>,
    matcher: SpecialMatcher,
    bos: Option<u32>,
    eos: Option<u32>,
    eog: Vec<u32>,
    add_bos: bool,
    add_eos: bool,
    strip_leading_space: bool,
    kind: String,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind)
            .field("n_vocab", &self.tokens.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("eog", &self.eog)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Builds the tokenizer a model declares. Fails with [`Error::NoTokenizer`] for
    /// [`TokenizerSpec::Missing`], and with a typed error naming the field for an
    /// unsupported or inconsistent vocabulary.
    pub fn from_spec(spec: &TokenizerSpec) -> Result<Tokenizer> {
        let parts = match spec {
            TokenizerSpec::Gguf(v) => {
                let b = crate::gguf::build(v)?;
                Parts {
                    inner: b.inner,
                    tokens: b.tokens,
                    classes: b.classes,
                    special_inner: None,
                    style: b.style,
                    special: v.special.clone(),
                    default_add_bos: b.default_add_bos,
                    strip_leading_space: b.strip_leading_space,
                    kind: b.kind,
                }
            }
            TokenizerSpec::HfJson { json, special } => crate::hf::build(json, special)?,
            TokenizerSpec::Missing => return Err(Error::NoTokenizer),
        };
        Ok(Tokenizer::from_parts(parts))
    }

    fn from_parts(p: Parts) -> Tokenizer {
        let mut classes = p.classes;
        let eog = vocab::eog_ids(&p.tokens, &mut classes, p.special.eos, p.special.eot);
        let pieces = pieces::build(&p.tokens, &classes, p.style);
        // Only needed when the pipeline cannot split special tokens itself.
        let parsed = (0u32..)
            .zip(&p.tokens)
            .zip(&classes)
            .filter(|(_, c)| p.special_inner.is_none() && c.is_parsed_special())
            .map(|((id, t), _)| (t.as_str(), id, Strip::default()));
        let matcher = SpecialMatcher::new(parsed);
        Tokenizer {
            inner: p.inner,
            special_inner: p.special_inner,
            tokens: p.tokens,
            classes,
            pieces,
            matcher,
            bos: p.special.bos,
            eos: p.special.eos,
            eog,
            add_bos: p.special.add_bos.unwrap_or(p.default_add_bos) && p.special.bos.is_some(),
            add_eos: p.special.add_eos.unwrap_or(false) && p.special.eos.is_some(),
            strip_leading_space: p.strip_leading_space,
            kind: p.kind,
        }
    }

    /// Encodes user text. Special-token text inside `text` (say `<|im_start|>`) is encoded
    /// as ordinary characters, never as the special token, so user content cannot inject
    /// control tokens. With `add_special`, bos/eos are added as the model's flags say.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        check_len(text)?;
        let mut ids = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            ids.extend(self.bos);
        }
        self.encode_plain(text, &mut ids)?;
        if add_special && self.add_eos {
            ids.extend(self.eos);
        }
        Ok(ids)
    }

    /// Encodes text in which special-token text is recognised as the special token: use it
    /// for prompts rendered by a chat template, whose control tokens are text. Adds no
    /// bos/eos (templates write their own).
    pub fn encode_with_special_tokens(&self, text: &str) -> Result<Vec<u32>> {
        check_len(text)?;
        if let Some(special_inner) = &self.special_inner {
            let enc = special_inner
                .encode_fast(text, false)
                .map_err(|e| Error::tokenizers("encoding", e))?;
            return Ok(enc.get_ids().to_vec());
        }
        let mut ids = Vec::with_capacity(text.len() / 3 + 2);
        for fragment in self.matcher.split(text) {
            match fragment {
                Fragment::Text(t) => self.encode_plain(t, &mut ids)?,
                Fragment::Token(id) => ids.push(id),
            }
        }
        Ok(ids)
    }

    fn encode_plain(&self, text: &str, ids: &mut Vec<u32>) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        match &self.inner {
            Encoder::Hf(inner) => {
                let enc = inner
                    .encode_fast(text, false)
                    .map_err(|e| Error::tokenizers("encoding", e))?;
                ids.extend_from_slice(enc.get_ids());
            }
            Encoder::Spm(spm) => spm.encode(&self.tokens, text, ids),
        }
        Ok(())
    }

    /// Decodes ids to text. With `skip_special`, control, unknown and unused tokens are
    /// dropped. Bytes that do not form valid UTF-8 become U+FFFD. Fails on an id outside
    /// the vocabulary.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            if let Some(piece) = self.piece(id, skip_special)? {
                bytes.extend_from_slice(piece);
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let text = match (self.strip_leading_space, text.strip_prefix(' ')) {
            (true, Some(rest)) => rest,
            _ => &text,
        };
        Ok(text.to_string())
    }

    /// The bytes `id` decodes to, or `None` when it is special and `skip_special` is set.
    pub(crate) fn piece(&self, id: u32, skip_special: bool) -> Result<Option<&[u8]>> {
        let Some(piece) = self.pieces.get(id as usize) else {
            return Err(Error::TokenOutOfRange {
                id,
                n_vocab: self.n_vocab(),
            });
        };
        if skip_special && self.classes[id as usize].is_special() {
            return Ok(None);
        }
        Ok(Some(piece))
    }

    /// Number of token ids (the vocabulary's size, including added tokens).
    pub fn n_vocab(&self) -> usize {
        self.tokens.len()
    }

    /// The beginning-of-sequence id, if the model has one.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence id, if the model has one.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Ids that end generation, ascending: eos, eot, and every vocabulary token whose text
    /// is a known terminator such as `<|im_end|>`, `<end_of_turn>`, `<|eot_id|>` or
    /// `<|endoftext|>` (llama.cpp's EOG set).
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }

    /// True if generating `id` ends the sequence.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// The vocabulary text of `id` as stored (e.g. `Ġhello`, `▁the`, `<0x0A>`), or
    /// `None` for an id outside the vocabulary.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// True for control, unknown and unused tokens (those `decode(_, true)` drops).
    pub fn is_special(&self, id: u32) -> bool {
        self.classes
            .get(id as usize)
            .is_some_and(|c| c.is_special())
    }

    /// Whether `decode` drops one leading space (SentencePiece vocabularies that prefix one).
    pub(crate) fn strips_leading_space(&self) -> bool {
        self.strip_leading_space
    }

    /// Whether `encode(_, true)` prepends bos.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// A short description, e.g. `gpt2 BPE (pre: smollm)`.
    pub fn kind(&self) -> &str {
        &self.kind
    }
}

fn check_len(text: &str) -> Result<()> {
    if text.len() > MAX_ENCODE_BYTES {
        return Err(Error::TextTooLong {
            len: text.len(),
            cap: MAX_ENCODE_BYTES,
        });
    }
    Ok(())
}
