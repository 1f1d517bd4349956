//! Pre-tokenizer profiles of GGUF byte-level BPE vocabularies (`tokenizer.ggml.pre`).
//!
//! Each profile is the ordered regex list llama.cpp applies for that name
//! (`llm_tokenizer_bpe` in `src/llama-vocab.cpp`): the first regex splits the text, each
//! further regex splits every piece again, and text between matches stays a piece of its
//! own. That is exactly a `Sequence` of `Split(regex, Isolated)` pre-tokenizers. Where
//! llama.cpp rewrote a regex for `std::regex` (case-insensitive contractions spelled out),
//! the rewrite is kept: it matches the same strings. Unknown names are refused, never guessed.

/// GPT-2's split regex as llama.cpp writes it (without the trailing `|\s+`, whose matches
/// end up as separate pieces either way).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

/// Llama 3's split regex (also dbrx, smaug, chatglm4).
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen 2's split regex: Llama 3's with single digits.
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen 3.5's split regex: Qwen 2's with combining marks kept on letters.
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GPT-4o / Llama 4 split regex, as written in their tokenizer.json.
const GPT4O: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Mistral Tekken split regex, as written in its tokenizer.json.
const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// DeepSeek-V3's lead regex after digits and CJK runs.
const DEEPSEEK_V3_MAIN: &str = r"[!\x22#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The Latin/Greek/Cyrillic/… letter runs of DeepSeek-LLM's tokenizer, as code-point ranges.
const DEEPSEEK_LLM_LETTERS: &str = r"\s?[A-Za-z\x{b5}\x{c0}-\x{d6}\x{d8}-\x{f6}\x{f8}-\x{1ba}\x{1bc}-\x{1bf}\x{1c4}-\x{293}\x{295}-\x{2af}\x{370}-\x{373}\x{376}\x{377}\x{37b}-\x{37d}\x{37f}\x{386}\x{388}-\x{38a}\x{38c}\x{38e}-\x{3a1}\x{3a3}-\x{3f5}\x{3f7}-\x{481}\x{48a}-\x{52f}\x{531}-\x{556}\x{10a0}-\x{10c5}\x{13a0}-\x{13f5}\x{13f8}-\x{13fd}\x{1c90}-\x{1cba}\x{1cbd}-\x{1cbf}\x{1d00}-\x{1d2b}\x{1d6b}-\x{1d77}\x{1d79}-\x{1d9a}\x{1e00}-\x{1f15}\x{1f18}-\x{1f1d}\x{1f20}-\x{1f45}\x{1f48}-\x{1f4d}\x{1f50}-\x{1f57}\x{1f59}\x{1f5b}\x{1f5d}\x{1f5f}-\x{1f7d}\x{1f80}-\x{1fb4}\x{1fb6}-\x{1fbc}\x{1fbe}\x{1fc2}-\x{1fc4}\x{1fc6}-\x{1fcc}\x{1fd0}-\x{1fd3}\x{1fd6}-\x{1fdb}\x{1fe0}-\x{1fec}\x{1ff2}-\x{1ff4}\x{1ff6}-\x{1ffc}\x{2102}\x{2107}\x{210a}-\x{2113}\x{2115}\x{2119}-\x{211d}\x{2124}\x{2126}\x{2128}\x{212a}-\x{212d}\x{212f}-\x{2134}\x{2139}\x{213c}-\x{213f}\x{2145}-\x{2149}\x{214e}\x{2183}\x{2184}\x{2c00}-\x{2c7b}\x{2c7e}-\x{2ce4}\x{2ceb}-\x{2cee}\x{2cf2}\x{2cf3}\x{a640}-\x{a66d}\x{a680}-\x{a69b}\x{a722}-\x{a76f}\x{a771}-\x{a787}\x{a78b}-\x{a78e}\x{ab70}-\x{abbf}\x{fb00}-\x{fb06}\x{fb13}-\x{fb17}\x{ff21}-\x{ff3a}\x{ff41}-\x{ff5a}\x{10400}-\x{1044f}\x{104b0}-\x{104d3}\x{104d8}-\x{104fb}\x{10c80}-\x{10cb2}\x{10cc0}-\x{10cf2}\x{118a0}-\x{118df}\x{1e900}-\x{1e943}]+";

/// A pre-tokenizer profile: the names that select it and what it does.
#[derive(Debug)]
pub(crate) struct PreProfile {
    /// `tokenizer.ggml.pre` values selecting this profile.
    pub names: &'static [&'static str],
    /// Regexes applied in order, each splitting the pieces of the previous one.
    pub regexes: &'static [&'static str],
    /// A word that is itself a vocabulary entry is emitted whole, skipping merges.
    pub ignore_merges: bool,
    /// llama.cpp's default for `add_bos` when the file does not say.
    pub add_bos: bool,
}

const fn profile(names: &'static [&'static str], regexes: &'static [&'static str]) -> PreProfile {
    PreProfile {
        names,
        regexes,
        ignore_merges: false,
        add_bos: false,
    }
}

/// Every supported profile. Order matters only for the error message.
pub(crate) const PROFILES: &[PreProfile] = &[
    profile(
        &["default"],
        &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    ),
    profile(
        &[
            "gpt-2",
            "gpt2",
            "phi-2",
            "mpt",
            "olmo",
            "jais",
            "trillion",
            "granite-docling",
            "exaone4",
            "jina-es",
            "jina-de",
            "jina-v2-es",
            "jina-v2-de",
            "gigachat",
            "mellum",
            "modern-bert",
            "a.x-4.0",
        ],
        &[GPT2],
    ),
    PreProfile {
        names: &[
            "llama3",
            "llama-v3",
            "llama-bpe",
            "falcon3",
            "falcon-h1",
            "pixtral",
            "midm-2.0",
            "lfm2",
        ],
        regexes: &[LLAMA3],
        ignore_merges: true,
        add_bos: true,
    },
    profile(&["dbrx", "smaug-bpe"], &[LLAMA3]),
    profile(
        &[
            "qwen2",
            "deepseek-r1-qwen",
            "kormo",
            "f2llmv2",
            "megrez",
            "stablelm2",
            "hunyuan",
            "solar-open",
        ],
        &[QWEN2],
    ),
    profile(&["qwen35"], &[QWEN35]),
    profile(
        &[
            "smollm",
            "starcoder",
            "refact",
            "command-r",
            "codeshell",
            "exaone",
            "minerva-7b",
            "mellum2",
        ],
        &[r"\p{N}", GPT2],
    ),
    profile(
        &["deepseek-llm"],
        &[
            r"[\r\n]",
            DEEPSEEK_LLM_LETTERS,
            r"\s?[!-/:-~\x{ff01}-\x{ff0f}\x{ff1a}-\x{ff5e}\x{2018}-\x{201f}\x{3000}-\x{3002}]+",
            r"\s+$",
            r"[\x{4e00}-\x{9fa5}\x{800}-\x{4e00}\x{ac00}-\x{d7ff}]+",
            r"\p{N}+",
        ],
    ),
    profile(
        &["deepseek-coder"],
        &[
            r"[\r\n]",
            r"\s?\p{L}+",
            r"\s?\p{P}+",
            r"[\x{4e00}-\x{9fa5}\x{800}-\x{4e00}\x{ac00}-\x{d7ff}]+",
            r"\p{N}",
        ],
    ),
    profile(
        &["deepseek-v3", "hunyuan-dense", "joyai-llm"],
        &[
            r"\p{N}{1,3}",
            r"[\x{4e00}-\x{9fa5}\x{3040}-\x{309f}\x{30a0}-\x{30ff}]+",
            DEEPSEEK_V3_MAIN,
        ],
    ),
    profile(
        &["falcon"],
        &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"],
    ),
    profile(
        &["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"],
        &[GPT4O],
    ),
    PreProfile {
        names: &["tekken"],
        regexes: &[TEKKEN],
        ignore_merges: true,
        add_bos: true,
    },
    profile(
        &["poro-chat", "bloom", "gpt3-finnish"],
        &[r" ?[^(\s|.,!?…。，、।۔،)]+"],
    ),
];

/// The profile for a `tokenizer.ggml.pre` value. A missing value means `default`, as in llama.cpp.
pub(crate) fn find(pre: Option<&str>) -> Option<&'static PreProfile> {
    let name = pre.unwrap_or("default");
    PROFILES.iter().find(|p| p.names.contains(&name))
}

/// All supported names, comma-separated, for error messages.
pub(crate) fn supported_names() -> String {
    PROFILES
        .iter()
        .flat_map(|p| p.names.iter().copied())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use tokenizers::SplitDelimiterBehavior;
    use tokenizers::pre_tokenizers::split::{Split, SplitPattern};

    use super::*;

    /// Every regex of every profile compiles in the engine `tokenizers` uses.
    #[test]
    fn all_regexes_compile() {
        for p in PROFILES {
            for re in p.regexes {
                let split = Split::new(
                    SplitPattern::Regex((*re).to_string()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                );
                assert!(
                    split.is_ok(),
                    "profile {:?}: regex {re:?} does not compile",
                    p.names
                );
            }
        }
    }

    /// Names are unique across profiles, and lookups resolve the documented aliases.
    #[test]
    fn names_unique_and_resolved() {
        let mut all: Vec<_> = PROFILES.iter().flat_map(|p| p.names.iter()).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "duplicate pre name");
        assert_eq!(find(Some("smollm")).map(|p| p.regexes.len()), Some(2));
        assert!(find(Some("llama-bpe")).is_some_and(|p| p.ignore_merges && p.add_bos));
        assert!(find(None).is_some_and(|p| p.names.contains(&"default")));
        assert!(find(Some("no-such-pre")).is_none());
    }
}
