//! Chat templates are untrusted code from model files: hostile ones must fail fast with a
//! typed error, never hang, exhaust memory, reach the file system or leak internals.

use std::time::{Duration, Instant};

use skiff_tokenizer::{ChatTemplate, Error, Message, RenderLimits};

/// How fast a hostile template must fail. Unloaded, the range cap trips in microseconds and
/// the fuel budget in about 70 ms; the margin is for a loaded 2-core CI machine. A hang or a
/// runaway allocation takes far longer.
const FAST: Duration = Duration::from_secs(1);

fn conversation() -> Vec<Message> {
    vec![
        Message::new("system", "Be brief."),
        Message::new("user", "Hi"),
    ]
}

/// Compiles `source` and renders the standard conversation, timing the render.
fn render(source: &str) -> (Result<String, Error>, Duration) {
    let template = ChatTemplate::new(source, "<s>", "</s>").expect("compiles");
    let start = Instant::now();
    let result = template.render(&conversation(), true, None);
    (result, start.elapsed())
}

/// Asserts the render failed on a budget quickly, and returns the error's text.
fn assert_budget(source: &str) -> String {
    let (result, elapsed) = render(source);
    let err = match result {
        Err(e @ Error::TemplateBudget { .. }) => e.to_string(),
        other => panic!("{source:?}: expected a budget error, got {other:?}"),
    };
    assert!(err.starts_with("template exceeded its budget"), "{err}");
    assert!(elapsed < FAST, "{source:?} took {elapsed:?} to fail");
    err
}

/// A billion-step loop fails on the capped `range`, before allocating anything.
#[test]
fn huge_range_fails_fast() {
    let err = assert_budget("{% for i in range(10**9) %}{{ i }}{% endfor %}");
    assert!(err.contains("range()"), "{err}");
}

/// Loops that each stay under the range cap but multiply out run out of fuel.
#[test]
fn nested_loops_run_out_of_fuel() {
    let err = assert_budget(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    );
    assert!(err.contains("fuel"), "{err}");
    assert_budget(
        "{% set ns = namespace(s='') %}{% for i in range(100000) %}{% set ns.s = ns.s + 'xxxxxxxxxxxxxxxx' %}{% endfor %}{{ ns.s | length }}",
    );
}

/// Huge values are refused before they are built, whether by fuel or by minijinja's caps.
#[test]
fn huge_values_are_refused() {
    for source in [
        "{{ 'x' * 10**8 }}",
        "{{ ('x' * 10**6) * 1000 }}",
        "{{ [0] * 10**9 }}",
    ] {
        let (result, elapsed) = render(source);
        assert!(
            matches!(
                result,
                Err(Error::TemplateBudget { .. } | Error::TemplateRender { .. })
            ),
            "{source:?}: {result:?}"
        );
        assert!(elapsed < FAST, "{source:?} took {elapsed:?} to fail");
    }
}

/// Output beyond the cap is refused even when fuel would allow it.
#[test]
fn output_is_capped() {
    let limits = RenderLimits {
        fuel: u64::MAX / 2,
        max_output_bytes: 4096,
        ..RenderLimits::default()
    };
    let template = ChatTemplate::with_limits(
        "{% for i in range(1000) %}{{ 'abcdefgh' }}{% endfor %}",
        "",
        "",
        limits,
    )
    .expect("compiles");
    match template.render(&conversation(), false, None) {
        Err(Error::TemplateBudget { reason }) => assert!(reason.contains("4096"), "{reason}"),
        other => panic!("expected the output cap to trip, got {other:?}"),
    }
    let small = ChatTemplate::with_limits("{{ 'a' * 4096 }}", "", "", limits).expect("compiles");
    assert_eq!(
        small
            .render(&[], false, None)
            .expect("exactly at the cap")
            .len(),
        4096
    );
}

/// Unbounded macro recursion hits the recursion limit instead of the stack.
#[test]
fn recursion_is_limited() {
    let err = assert_budget("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
    assert!(err.contains("recursion"), "{err}");
}

/// There is no loader: include, import and extends fail as render errors.
#[test]
fn no_file_access() {
    for (source, name) in [
        ("{% include '/etc/passwd' %}", "/etc/passwd"),
        (
            "{% import 'macros.jinja' as m %}{{ m.x() }}",
            "macros.jinja",
        ),
        (
            "{% from 'macros.jinja' import x %}{{ x() }}",
            "macros.jinja",
        ),
        ("{% extends 'base.jinja' %}", "base.jinja"),
    ] {
        match render(source).0 {
            Err(Error::TemplateRender { message }) => {
                assert!(
                    message.contains(name) && !message.contains("root:"),
                    "{source:?}: {message}"
                )
            }
            other => panic!("{source:?}: expected a render error, got {other:?}"),
        }
    }
}

/// Classic Python SSTI payloads reach nothing: they render empty or fail, never showing
/// class hierarchies, globals or functions.
#[test]
fn ssti_payloads_are_inert() {
    let payloads = [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ self.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ config.items() }}",
        "{{ request.application.__globals__ }}",
        "{{ messages.__class__ }}",
        "{{ raise_exception.__globals__ }}",
        "{{ namespace.__init__ }}",
        "{{ debug() }}",
        "{{ messages[0].__dict__ }}",
    ];
    for source in payloads {
        match render(source).0 {
            Ok(text) => assert_eq!(text, "", "{source:?} rendered something"),
            Err(Error::TemplateRender { message }) => {
                for leak in ["<class", "object at 0x", "function", "module", "uid="] {
                    assert!(
                        !message.contains(leak),
                        "{source:?}: error leaks {leak:?}: {message}"
                    );
                }
            }
            Err(other) => panic!("{source:?}: unexpected error kind {other:?}"),
        }
    }
}

/// `raise_exception(msg)` surfaces exactly `msg`, as the error's text too.
#[test]
fn raise_exception_carries_the_message() {
    let msg = "Conversation roles must alternate user/assistant/user/assistant/... (got \"system\" twice) — é";
    let source = format!(
        "{{% if messages | length > 1 %}}{{{{ raise_exception({msg:?}) }}}}{{% endif %}}ok"
    );
    match render(&source).0 {
        Err(e @ Error::TemplateRaised { .. }) => {
            assert_eq!(e.to_string(), msg);
            assert!(matches!(e, Error::TemplateRaised { ref message } if message == msg));
        }
        other => panic!("expected TemplateRaised, got {other:?}"),
    }
    let template = ChatTemplate::new(&source, "", "").expect("compiles");
    assert_eq!(
        template
            .render(&[Message::new("user", "one")], false, None)
            .expect("renders"),
        "ok"
    );
}

/// Broken templates are compile errors with a line number; runtime mistakes are render errors.
#[test]
fn broken_templates_are_typed_errors() {
    for source in [
        "{% for m in messages %}",
        "{{ 'unterminated }}",
        "{% if %}{% endif %}",
        "line one\n{% endfor %}",
        "{{ a b }}",
    ] {
        match ChatTemplate::new(source, "", "") {
            Err(Error::TemplateSyntax { message }) => {
                assert!(message.contains("line"), "{source:?}: {message}")
            }
            other => panic!("{source:?}: expected a syntax error, got {other:?}"),
        }
    }
    for source in [
        "{{ messages | no_such_filter }}",
        "{{ no_such_function() }}",
        "{{ messages[0].content.no_such_method() }}",
        "{{ 1 + 'a' }}",
        "{{ strftime_now('%Q') }}",
        "{{ messages | tojson(bogus=1) }}",
        "{{ messages[0]['role'] | tojson(separators=1) }}",
    ] {
        match render(source).0 {
            Err(Error::TemplateRender { message }) => assert!(!message.is_empty(), "{source:?}"),
            other => panic!("{source:?}: expected a render error, got {other:?}"),
        }
    }
}

/// A template larger than the cap is refused before compiling.
#[test]
fn oversized_template_is_refused() {
    let source = "x".repeat(skiff_tokenizer::MAX_TEMPLATE_BYTES + 1);
    match ChatTemplate::new(&source, "", "") {
        Err(Error::TemplateTooLarge { len, cap }) => {
            assert_eq!(
                (len, cap),
                (source.len(), skiff_tokenizer::MAX_TEMPLATE_BYTES)
            )
        }
        other => panic!("expected the size cap, got {other:?}"),
    }
}

/// Undefined variables render empty and booleans print as Python does (jinja2's behaviour),
/// and templates see tools only when given.
#[test]
fn undefined_and_tools() {
    let source =
        "[{{ nothing }}][{{ tools is none }}][{% if tools %}{{ tools | length }}{% endif %}]";
    let template = ChatTemplate::new(source, "", "").expect("compiles");
    assert_eq!(
        template.render(&[], false, None).expect("renders"),
        "[][True][]"
    );
    let tools = serde_json::json!([{"type": "function"}, {"type": "function"}]);
    assert_eq!(
        template.render(&[], false, Some(&tools)).expect("renders"),
        "[][False][2]"
    );
    assert!(template.uses_tools());
    assert!(
        !ChatTemplate::new("{{ messages }}", "", "")
            .expect("compiles")
            .uses_tools()
    );
}

/// `strftime_now` uses the pinned time when set (UTC), else the clock.
#[test]
fn strftime_now_is_pinnable() {
    let template =
        ChatTemplate::new("{{ strftime_now('%Y-%m-%d %H:%M') }}", "", "").expect("compiles");
    let live = template.render(&[], false, None).expect("renders");
    assert_eq!(live.len(), "2025-01-01 00:00".len(), "{live}");
    template.set_fixed_time(1_722_002_709);
    assert_eq!(
        template.render(&[], false, None).expect("renders"),
        "2024-07-26 14:05"
    );
}

/// `self_test` accepts working templates (even ones that refuse some conversations) and
/// rejects ones that cannot render at all.
#[test]
fn self_test_catches_broken_templates() {
    let ok = |source: &str| {
        ChatTemplate::new(source, "<s>", "</s>")
            .expect("compiles")
            .self_test()
    };
    for name in [
        "smollm2", "gemma3", "qwen2_5", "llama3", "llama3_2", "features",
    ] {
        let path = format!(
            "{}/../../testdata/tokenizer/templates/{name}.jinja",
            env!("CARGO_MANIFEST_DIR")
        );
        let source = std::fs::read_to_string(&path).expect("template fixture");
        assert!(ok(&source).is_ok(), "{name}: {:?}", ok(&source));
    }
    assert!(ok("{{ raise_exception('System role not supported') }}").is_ok());
    assert!(matches!(
        ok("{{ messages | no_such_filter }}"),
        Err(Error::TemplateRender { .. })
    ));
    assert!(matches!(
        ok("{{ messages[0].content.frobnicate() }}"),
        Err(Error::TemplateRender { .. })
    ));
    assert!(matches!(
        ok("{% for i in range(10**9) %}{% endfor %}"),
        Err(Error::TemplateBudget { .. })
    ));
}

/// There is one template environment in the workspace: every other crate renders through
/// `ChatTemplate` (RELIABILITY §4: no sibling render site without the sandbox).
#[test]
fn only_one_template_environment() {
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Split so that this file does not match itself.
    let needles = [
        concat!("Environment", "::new("),
        concat!("Environment", "::empty("),
    ];
    let mut stack = vec![crates];
    let mut sites = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("readable source tree")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() && !path.ends_with("target") {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if text.contains("minijinja") && needles.iter().any(|n| text.contains(n)) {
                    sites.push(path);
                }
            }
        }
    }
    assert_eq!(
        sites.len(),
        1,
        "template environments are built in: {sites:?}"
    );
    assert!(
        sites[0].ends_with("tokenizer/src/template/env.rs"),
        "{sites:?}"
    );
}
