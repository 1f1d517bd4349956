//! Chat templates render byte-identically to `transformers`' `apply_chat_template`.
//!
//! Goldens come from `tools/reference/dump_template_goldens.py`: SmolLM2's template (from its
//! GGUF), Gemma 3's, Qwen 2.5's, Llama 3's and Llama 3.2's, each over system/user/assistant/
//! tool conversations with and without the generation prompt. Where transformers raised
//! (`raise_exception`), we must fail with exactly the same message.

mod common;

use common::{json_fixture, load_spec, model_path};
use serde_json::Value;
use skiff_tokenizer::{ChatTemplate, Error, Message, Tokenizer};

/// A golden conversation as `Message`s.
fn messages(conv: &Value) -> Vec<Message> {
    conv["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
            Message {
                role: text("role").expect("role"),
                content: text("content").expect("content"),
                tool_calls: m.get("tool_calls").cloned(),
                name: text("name"),
                tool_call_id: text("tool_call_id"),
            }
        })
        .collect()
}

/// Where two renders first differ, for a readable failure.
fn first_difference(got: &str, want: &str) -> String {
    let at = got
        .bytes()
        .zip(want.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let from = (0..=at.saturating_sub(40))
        .rev()
        .find(|&i| want.is_char_boundary(i) && got.is_char_boundary(i))
        .unwrap_or(0);
    let tail = |s: &str| {
        s.get(from..)
            .unwrap_or("")
            .chars()
            .take(100)
            .collect::<String>()
    };
    format!(
        "first difference at byte {at}:\n  got:  {:?}\n  want: {:?}",
        tail(got),
        tail(want)
    )
}

/// Compiles every golden template, keyed by name.
fn templates(golden: &Value) -> Vec<(String, ChatTemplate)> {
    let fixed_time = golden["fixed_time"].as_i64().expect("fixed_time");
    golden["templates"]
        .as_object()
        .expect("templates")
        .iter()
        .map(|(name, t)| {
            let path = common::fixture(t["file"].as_str().expect("file"));
            let source = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let (bos, eos) = (
                t["bos"].as_str().expect("bos"),
                t["eos"].as_str().expect("eos"),
            );
            let template = ChatTemplate::new(&source, bos, eos)
                .unwrap_or_else(|e| panic!("compiling {name}: {e}"));
            template.set_fixed_time(fixed_time);
            (name.clone(), template)
        })
        .collect()
}

/// Every template x conversation x generation-prompt case matches transformers exactly.
#[test]
fn renders_match_transformers() {
    let golden = json_fixture("templates.golden.json");
    let templates = templates(&golden);
    let conversations = golden["conversations"].as_array().expect("conversations");
    let cases = golden["cases"].as_array().expect("cases");
    assert!(cases.len() >= 70, "golden file has too few cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["template"].as_str().expect("template");
        let conv_name = case["conversation"].as_str().expect("conversation");
        let agp = case["add_generation_prompt"]
            .as_bool()
            .expect("add_generation_prompt");
        let template = &templates
            .iter()
            .find(|(n, _)| n == name)
            .expect("case names a known template")
            .1;
        let conv = conversations
            .iter()
            .find(|c| c["name"] == conv_name)
            .expect("case names a known conversation");
        let tools = conv.get("tools").filter(|t| !t.is_null());
        let got = template.render(&messages(conv), agp, tools);
        let label = format!("{name} / {conv_name} / add_generation_prompt={agp}");
        match (case.get("text").and_then(Value::as_str), got) {
            (Some(want), Ok(got)) if got == want => {}
            (Some(want), Ok(got)) => {
                failures.push(format!("{label}: {}", first_difference(&got, want)))
            }
            (Some(_), Err(e)) => {
                failures.push(format!("{label}: expected a render, got error {e}"))
            }
            (None, result) => {
                let want = case["error"]
                    .as_str()
                    .expect("a case without text carries an error");
                assert_eq!(
                    case["error_type"], "TemplateError",
                    "{label}: only raise_exception errors are expected"
                );
                match result {
                    Err(Error::TemplateRaised { message }) if message == want => {}
                    other => failures.push(format!(
                        "{label}: expected raise_exception({want:?}), got {other:?}"
                    )),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The template and special-token texts read from SmolLM2's GGUF give the golden render, and
/// the render tokenizes with its control tokens recognised.
#[test]
fn smollm2_gguf_template_end_to_end() {
    let Some(path) = model_path("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let spec = load_spec(&path);
    let source = spec
        .chat_template
        .as_deref()
        .expect("SmolLM2's GGUF carries tokenizer.chat_template");
    let committed = std::fs::read_to_string(common::fixture("templates/smollm2.jinja"))
        .expect("committed template");
    assert_eq!(
        source, committed,
        "the GGUF's template differs from testdata/tokenizer/templates/smollm2.jinja"
    );

    let tok = Tokenizer::from_spec(&spec.tokenizer).expect("tokenizer");
    let text_of = |id: Option<u32>| {
        id.and_then(|id| tok.token_text(id))
            .expect("special token text")
            .to_string()
    };
    let template =
        ChatTemplate::new(source, &text_of(tok.bos()), &text_of(tok.eos())).expect("compiles");
    let golden = json_fixture("templates.golden.json");
    let conv = golden["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .find(|c| c["name"] == "single_user")
        .expect("single_user");
    let want = golden["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| {
            c["template"] == "smollm2"
                && c["conversation"] == "single_user"
                && c["add_generation_prompt"] == true
        })
        .and_then(|c| c["text"].as_str())
        .expect("golden case");
    let rendered = template
        .render(&messages(conv), true, None)
        .expect("renders");
    assert_eq!(rendered, want);

    let ids = tok.encode_with_special_tokens(&rendered).expect("encodes");
    let im_start = ids
        .iter()
        .filter(|&&id| tok.token_text(id) == Some("<|im_start|>"))
        .count();
    let im_end = ids
        .iter()
        .filter(|&&id| tok.token_text(id) == Some("<|im_end|>"))
        .count();
    assert_eq!(
        (im_start, im_end),
        (3, 2),
        "system, user and assistant openers; two closers: {ids:?}"
    );
    assert_eq!(tok.decode(&ids, false).expect("decodes"), rendered);
}
