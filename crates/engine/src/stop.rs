//! When a generation ends: [`StopCriteria`] (token budget, stop tokens, stop strings) and
//! [`StopStrings`], the matcher that finds stop strings across token boundaries.
//!
//! Stop strings are matched on the detokenized text, because one string may span several
//! tokens and one token may hold several strings' worth of text. The matcher holds back
//! any tail of the text that could still turn into a stop string, so that the text before
//! a stop string is emitted and the stop string itself never is.

use crate::error::EngineError;

/// The most stop strings one generation may carry.
pub const MAX_STOP_STRINGS: usize = 16;
/// The longest stop string, in bytes.
pub const MAX_STOP_STRING_BYTES: usize = 256;

/// When to stop generating. A generation also stops at the end of the context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopCriteria {
    /// The most tokens to generate (a stop token counts), at least 1.
    pub max_tokens: usize,
    /// Tokens that end the generation (usually the tokenizer's end-of-generation ids); the
    /// token is counted but contributes no text.
    pub stop_tokens: Vec<u32>,
    /// Strings that end the generation when they appear in the output text; the text up to
    /// the first one is emitted, the string itself is not. At most [`MAX_STOP_STRINGS`],
    /// each 1 to [`MAX_STOP_STRING_BYTES`] bytes.
    pub stop_strings: Vec<String>,
}

impl StopCriteria {
    /// Stop after `max_tokens` tokens or at any of `stop_tokens`; no stop strings.
    pub fn new(max_tokens: usize, stop_tokens: Vec<u32>) -> Self {
        Self {
            max_tokens,
            stop_tokens,
            stop_strings: Vec::new(),
        }
    }

    /// Checks the limits listed on the fields.
    pub fn validate(&self) -> Result<(), EngineError> {
        if self.max_tokens == 0 {
            return Err(EngineError::InvalidParam {
                param: "max_tokens",
                value: "0".into(),
                allowed: "at least 1",
            });
        }
        if self.stop_strings.len() > MAX_STOP_STRINGS {
            return Err(EngineError::InvalidParam {
                param: "stop",
                value: format!("{} strings", self.stop_strings.len()),
                allowed: "at most 16 strings",
            });
        }
        for s in &self.stop_strings {
            if s.is_empty() || s.len() > MAX_STOP_STRING_BYTES {
                return Err(EngineError::InvalidParam {
                    param: "stop",
                    value: format!("a string of {} bytes", s.len()),
                    allowed: "strings of 1 to 256 bytes",
                });
            }
        }
        Ok(())
    }
}

/// What [`StopStrings::push`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopScan {
    /// No stop string yet; this text is safe to emit (possibly empty while a possible
    /// stop-string prefix is held back).
    Continue(String),
    /// A stop string was found; this is the text before it, the last to emit.
    Stopped(String),
}

/// Incremental stop-string matcher over a stream of text pieces.
#[derive(Clone, Debug, Default)]
pub struct StopStrings {
    stops: Vec<String>,
    /// Text received but not yet emitted: always shorter than the longest stop string.
    held: String,
}

impl StopStrings {
    /// A matcher for `stops` (empty strings are ignored: they would match everywhere).
    pub fn new(stops: &[String]) -> Self {
        let stops = stops.iter().filter(|s| !s.is_empty()).cloned().collect();
        Self {
            stops,
            held: String::new(),
        }
    }

    /// Feeds the next piece of text and returns what may be emitted now.
    pub fn push(&mut self, piece: &str) -> StopScan {
        self.held.push_str(piece);
        let first = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first {
            let before = self.held[..at].to_string();
            self.held.clear();
            return StopScan::Stopped(before);
        }
        let keep = self.longest_partial_suffix();
        let emit_len = self.held.len() - keep;
        let emit = self.held[..emit_len].to_string();
        self.held.drain(..emit_len);
        StopScan::Continue(emit)
    }

    /// Ends the stream: returns the held-back text, which turned out not to be a stop
    /// string.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length in bytes of the longest suffix of `held` that is a proper prefix of some
    /// stop string (and starts on a character boundary).
    fn longest_partial_suffix(&self) -> usize {
        let held = self.held.as_str();
        let mut best = 0;
        for stop in &self.stops {
            let max = (stop.len() - 1).min(held.len());
            for len in (best + 1..=max).rev() {
                let start = held.len() - len;
                if held.is_char_boundary(start)
                    && stop.as_bytes().starts_with(&held.as_bytes()[start..])
                {
                    best = len;
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` and returns (emitted text, whether a stop string was hit).
    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopStrings::new(&stops);
        let mut out = String::new();
        for piece in pieces {
            match m.push(piece) {
                StopScan::Continue(text) => out.push_str(&text),
                StopScan::Stopped(text) => {
                    out.push_str(&text);
                    return (out, true);
                }
            }
        }
        out.push_str(&m.finish());
        (out, false)
    }

    #[test]
    fn stop_string_inside_one_piece() {
        assert_eq!(
            run(&["END"], &["abc", "xyENDzz", "more"]),
            ("abcxy".into(), true)
        );
    }

    #[test]
    fn stop_string_split_across_pieces_is_never_emitted() {
        assert_eq!(
            run(&["<|end|>"], &["Hi <", "|e", "nd", "|> tail"]),
            ("Hi ".into(), true)
        );
    }

    #[test]
    fn held_prefix_is_released_when_it_does_not_complete() {
        let stops = vec!["STOP".to_string()];
        let mut m = StopStrings::new(&stops);
        assert_eq!(m.push("ab ST"), StopScan::Continue("ab ".into()));
        assert_eq!(m.push("ART"), StopScan::Continue("START".into()));
        assert_eq!(m.push("S"), StopScan::Continue(String::new()));
        assert_eq!(m.finish(), "S");
    }

    #[test]
    fn earliest_of_several_stop_strings_wins() {
        assert_eq!(
            run(&["world", "lo w"], &["hello world"]),
            ("hel".into(), true)
        );
        // "abc" starts before "b" does, even though "b" completes inside the same piece.
        assert_eq!(run(&["b", "abc"], &["xa", "bc"]), ("x".into(), true));
    }

    #[test]
    fn no_stop_strings_passes_text_through() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
        assert_eq!(run(&[""], &["a", "b"]), ("ab".into(), false));
    }

    #[test]
    fn multibyte_text_is_split_only_on_char_boundaries() {
        assert_eq!(run(&["é!"], &["café", "!"]), ("caf".into(), true));
        assert_eq!(run(&["éx"], &["caf", "é", "s"]), ("cafés".into(), false));
        assert_eq!(
            run(&["日本"], &["今日", "は日", "本"]),
            ("今日は".into(), true)
        );
    }

    #[test]
    fn criteria_validation_names_the_parameter() {
        let ok = StopCriteria {
            stop_strings: vec!["x".into()],
            ..StopCriteria::new(8, vec![2])
        };
        assert!(ok.validate().is_ok(), "{:?}", ok.validate());
        for bad in [
            StopCriteria::new(0, vec![]),
            StopCriteria {
                stop_strings: vec![String::new()],
                ..StopCriteria::new(8, vec![])
            },
            StopCriteria {
                stop_strings: vec!["x".repeat(257)],
                ..StopCriteria::new(8, vec![])
            },
            StopCriteria {
                stop_strings: vec!["x".into(); 17],
                ..StopCriteria::new(8, vec![])
            },
        ] {
            let err = bad.validate().expect_err("invalid criteria");
            assert!(matches!(err, EngineError::InvalidParam { .. }), "{err:?}");
        }
    }
}
