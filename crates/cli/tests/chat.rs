//! `skiff chat` end to end on the real SmolLM2-135M, driven through a pipe
//! (`SKIFF_TEST_MODEL_DIR`; skipped with a message when unset).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

mod real_model;

use real_model::model;

fn chat(model: &PathBuf, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .arg("chat")
        .arg(model)
        .args(args)
        .args(["--threads", "2", "--temperature", "0", "-n", "16"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("skiff starts");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("stdin accepts the text");
    child.wait_with_output().expect("skiff finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

#[test]
fn two_turns_keep_the_conversation_and_bye_exits() {
    let Some(model) = model() else { return };
    let input =
        "Name the capital city of France.\nAnd of Germany?\n/bye\nThis line is never read.\n";
    let out = chat(&model, &["--verbose"], input);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let answers: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(answers.len(), 2, "{stdout:?}");
    assert!(answers[0].contains("Paris"), "{stdout:?}");
    // "And of Germany?" only makes sense with the first turn in the context.
    assert!(answers[1].contains("Berlin"), "{stdout:?}");
    // The second turn runs only the new tokens: the first turn's prefix is reused.
    let counts: Vec<usize> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("prompt eval count:"))
        .map(|v| {
            v.trim()
                .trim_end_matches(" token(s)")
                .parse()
                .expect("a count")
        })
        .collect();
    assert_eq!(counts.len(), 2, "{stderr}");
    assert!(
        counts[1] < counts[0],
        "second turn re-ran the whole conversation: {counts:?}"
    );
}

#[test]
fn clear_forgets_and_end_of_input_exits() {
    let Some(model) = model() else { return };
    let out = chat(&model, &[], "/clear\n\n/unknown\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{:?}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cleared the conversation"), "{stderr}");
    assert!(stderr.contains("unknown command /unknown"), "{stderr}");
}
