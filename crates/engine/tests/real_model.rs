//! The engine on the real SmolLM2-135M: generation, stop conditions, prefix reuse and
//! perplexity. Needs `SKIFF_TEST_MODEL_DIR` (see `tools/fetch-test-models.sh`); skipped
//! with a message when it is unset, failing when it is set but the file is missing.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use skiff_backend_cpu::Cpu;
use skiff_engine::{
    EngineError, Event, FinishReason, GenerateRequest, PerplexityConfig, Session, SessionConfig,
    StopCriteria, perplexity,
};
use skiff_formats::ModelFile;
use skiff_models::Model;
use skiff_sample::SamplingParams;
use skiff_tokenizer::{ChatTemplate, Message, Tokenizer};

const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

struct Fixture {
    model: Model,
    tokenizer: Tokenizer,
    cpu: Cpu,
}

/// The loaded model, shared by every test; `None` when the test model dir is unset.
fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let Some(dir) = std::env::var_os("SKIFF_TEST_MODEL_DIR") else {
                eprintln!(
                    "skipped: SKIFF_TEST_MODEL_DIR is not set (see tools/fetch-test-models.sh)"
                );
                return None;
            };
            let path = PathBuf::from(dir).join(MODEL_FILE);
            assert!(
                path.is_file(),
                "SKIFF_TEST_MODEL_DIR is set but {} is missing",
                path.display()
            );
            let file = Arc::new(ModelFile::open(&path).expect("the test model opens"));
            let tokenizer =
                Tokenizer::from_spec(&file.spec().tokenizer).expect("the tokenizer builds");
            let model = Model::load(file).expect("the test model loads");
            Some(Fixture {
                model,
                tokenizer,
                cpu: Cpu::new(2),
            })
        })
        .as_ref()
}

fn greedy(max_tokens: usize, fx: &Fixture) -> GenerateRequest {
    GenerateRequest {
        sampling: SamplingParams::greedy(),
        stop: StopCriteria::new(max_tokens, fx.tokenizer.eog_ids().to_vec()),
    }
}

fn session(fx: &Fixture, max_seq_len: usize) -> Session<'_> {
    let config = SessionConfig {
        max_seq_len,
        prefill_chunk: 16,
    };
    Session::new(&fx.model, &fx.cpu, &config).expect("valid config")
}

fn encode(fx: &Fixture, text: &str) -> Vec<u32> {
    fx.tokenizer.encode(text, true).expect("encodes")
}

#[test]
fn streamed_text_equals_the_completion_and_the_decoded_tokens() {
    let Some(fx) = fixture() else { return };
    let prompt = encode(fx, "The capital of France is");
    let mut streamed = String::new();
    let mut n_token_events = 0;
    let done = session(fx, 256)
        .generate(&fx.tokenizer, &prompt, &greedy(12, fx), |event| {
            match event {
                Event::Token(t) => {
                    n_token_events += 1;
                    assert!(t.logprob <= 0.0 && t.logprob.is_finite());
                    streamed.push_str(&t.text);
                }
                Event::Text(text) => streamed.push_str(&text),
            }
            std::ops::ControlFlow::Continue(())
        })
        .expect("generates");
    assert_eq!(done.finish_reason, FinishReason::Length);
    assert_eq!(done.tokens.len(), 12);
    assert_eq!(n_token_events, 12);
    assert_eq!(streamed, done.text);
    assert_eq!(
        done.text,
        fx.tokenizer.decode(&done.tokens, true).expect("decodes")
    );
    assert!(done.text.contains("Paris"), "{:?}", done.text);
    assert_eq!(done.usage.prompt_tokens, prompt.len());
    assert_eq!(done.usage.completion_tokens, 12);
}

#[test]
fn chunked_and_reused_prefills_match_a_fresh_one() {
    let Some(fx) = fixture() else { return };
    let text = "One, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve";
    let prompt = encode(fx, text);
    assert!(prompt.len() > 16, "the prompt spans several chunks");
    let fresh = {
        let config = SessionConfig {
            max_seq_len: 256,
            prefill_chunk: 256,
        };
        let mut s = Session::new(&fx.model, &fx.cpu, &config).expect("valid config");
        s.prefill(&prompt).expect("runs").logits
    };
    let mut s = session(fx, 256);
    let chunked = s.prefill(&prompt).expect("runs");
    assert_eq!(chunked.n_reused, 0);
    assert_close(&chunked.logits, &fresh);
    // Same prompt again: everything but the last token is reused.
    let again = s.prefill(&prompt).expect("runs");
    assert_eq!(again.n_reused, prompt.len() - 1);
    assert_close(&again.logits, &fresh);
    // A prompt that diverges after a shared prefix: only the new part runs.
    let mut other = prompt[..10].to_vec();
    other.extend(encode(fx, " and more"));
    let reused = s.prefill(&other).expect("runs");
    assert_eq!(reused.n_reused, 10);
    let mut fresh_other = session(fx, 256);
    assert_close(
        &reused.logits,
        &fresh_other.prefill(&other).expect("runs").logits,
    );
    assert_eq!(s.tokens(), other.as_slice());
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    let max = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(max < 1e-3, "logits differ by up to {max}");
}

#[test]
fn generation_stops_at_the_end_of_the_context() {
    let Some(fx) = fixture() else { return };
    let prompt = encode(fx, "Count with me: one, two, three,");
    let max_seq_len = prompt.len() + 5;
    let done = session(fx, max_seq_len)
        .generate(&fx.tokenizer, &prompt, &greedy(100, fx), |_| {
            std::ops::ControlFlow::Continue(())
        })
        .expect("generates");
    assert_eq!(done.finish_reason, FinishReason::Length);
    assert_eq!(
        done.tokens.len(),
        6,
        "5 fed tokens fill the context, the 6th is sampled from the last logits"
    );
}

#[test]
fn stop_strings_cut_the_text_before_them() {
    let Some(fx) = fixture() else { return };
    let prompt = encode(fx, "The capital of France is");
    let free = session(fx, 256)
        .generate(&fx.tokenizer, &prompt, &greedy(12, fx), |_| {
            std::ops::ControlFlow::Continue(())
        })
        .expect("generates");
    let at = free
        .text
        .find("Paris")
        .expect("the greedy answer names Paris");
    let mut request = greedy(12, fx);
    request.stop.stop_strings = vec!["aris".into()];
    let stopped = session(fx, 256)
        .generate(&fx.tokenizer, &prompt, &request, |_| {
            std::ops::ControlFlow::Continue(())
        })
        .expect("generates");
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    assert_eq!(stopped.text, format!("{}P", &free.text[..at]));
}

#[test]
fn bad_prompts_fail_before_any_compute() {
    let Some(fx) = fixture() else { return };
    let mut s = session(fx, 8);
    let noop = |_| std::ops::ControlFlow::Continue(());
    let err = s
        .generate(&fx.tokenizer, &[], &greedy(4, fx), noop)
        .expect_err("empty prompt");
    assert!(matches!(err, EngineError::EmptyPrompt), "{err:?}");
    let long = vec![1u32; 9];
    let err = s
        .generate(&fx.tokenizer, &long, &greedy(4, fx), noop)
        .expect_err("too long");
    assert!(
        matches!(
            err,
            EngineError::PromptTooLong {
                prompt_tokens: 9,
                max_seq_len: 8
            }
        ),
        "{err:?}"
    );
    let mut bad = greedy(4, fx);
    bad.sampling.top_p = 0.0;
    let err = s
        .generate(&fx.tokenizer, &[1], &bad, noop)
        .expect_err("bad top_p");
    assert!(matches!(err, EngineError::Sample(_)), "{err:?}");
    assert!(s.tokens().is_empty(), "nothing ran");
}

#[test]
fn perplexity_is_finite_and_needs_two_windows() {
    let Some(fx) = fixture() else { return };
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/text/sample.txt"
    ))
    .expect("the sample text is committed");
    // Small windows keep the test fast; `n_batch` 12 splits each window into 3 forwards.
    // The CLI test runs the full file at n_ctx 128 against llama.cpp's figure.
    let tokens = &fx.tokenizer.encode(&text, true).expect("encodes")[..100];
    let config = PerplexityConfig {
        n_ctx: 32,
        bos: None,
        n_batch: 12,
    };
    let mut seen = Vec::new();
    let report = perplexity(&fx.model, &fx.cpu, tokens, &config, |p| seen.push(p)).expect("runs");
    assert_eq!(report.n_chunks, 3);
    assert_eq!(seen.iter().map(|p| p.chunk).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        seen[2].ppl, report.ppl,
        "the last running estimate is the result"
    );
    assert_eq!(report.n_scored, 3 * 15);
    assert!(
        report.ppl.is_finite() && report.ppl > 1.0 && report.ppl < 1000.0,
        "{report:?}"
    );
    assert!(report.ppl_error > 0.0 && report.ppl_error < report.ppl);
    // One forward per window gives the same figure.
    let whole = PerplexityConfig {
        n_batch: 32,
        ..config.clone()
    };
    let again = perplexity(&fx.model, &fx.cpu, tokens, &whole, |_| {}).expect("runs");
    assert!(
        (again.ppl - report.ppl).abs() / report.ppl < 1e-4,
        "{again:?} vs {report:?}"
    );
    let err =
        perplexity(&fx.model, &fx.cpu, &tokens[..63], &config, |_| {}).expect_err("too short");
    assert!(
        matches!(
            err,
            EngineError::NotEnoughTokens {
                n_tokens: 63,
                needed: 64,
                n_ctx: 32
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_break_from_the_callback_cancels_and_multibyte_text_streams_intact() {
    let Some(fx) = fixture() else { return };
    // Greedy SmolLM2 answers this (templated) with "L'Étoile, la Marseillaise, …": the
    // accented letters exercise UTF-8 across token boundaries.
    let source = fx
        .model
        .spec()
        .chat_template
        .as_deref()
        .expect("SmolLM2 has a template");
    let template = ChatTemplate::new(source, "<|im_start|>", "<|im_end|>").expect("compiles");
    let messages = [Message::new("user", "What is the capital of France?")];
    let text = template.render(&messages, true, None).expect("renders");
    let prompt = fx
        .tokenizer
        .encode_with_special_tokens(&text)
        .expect("encodes");
    let mut streamed = String::new();
    let done = session(fx, 256)
        .generate(&fx.tokenizer, &prompt, &greedy(10, fx), |event| {
            match event {
                Event::Token(t) => streamed.push_str(&t.text),
                Event::Text(text) => streamed.push_str(&text),
            }
            std::ops::ControlFlow::Continue(())
        })
        .expect("generates");
    assert_eq!(streamed, done.text);
    assert_eq!(
        done.text,
        fx.tokenizer.decode(&done.tokens, true).expect("decodes")
    );
    assert!(!done.text.contains('\u{fffd}'), "{:?}", done.text);
    assert!(done.text.starts_with("L'Étoile"), "{:?}", done.text);
    let mut n_events = 0;
    let cancelled = session(fx, 256)
        .generate(&fx.tokenizer, &prompt, &greedy(10, fx), |_| {
            n_events += 1;
            if n_events == 3 {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .expect("generates");
    assert_eq!(cancelled.finish_reason, FinishReason::Cancelled);
    assert_eq!(cancelled.tokens, done.tokens[..3]);
}
