//! `skiff chat [MODEL]`: an interactive conversation on stdin/stdout.
//!
//! Each line is a user turn. The whole conversation is re-rendered through the chat
//! template every turn; the session keeps its KV cache, so only the tokens after the
//! unchanged prefix run again. `/clear` forgets the conversation, `/bye` or end of input
//! exits. Works the same with stdin a pipe (answers are then the only stdout output) or a
//! terminal (a `>>> ` prompt is shown).

use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use skiff_engine::{EngineError, FinishReason, Session};
use skiff_tokenizer::Message;

use super::run::{
    GenArgs, chat_template, describe, encode_chat, load, print_events, timing_report,
};

/// Arguments of `skiff chat`.
#[derive(clap::Args)]
pub struct Args {
    /// The model: a path, a store name or a source (default smollm2-135m, pulled when
    /// missing).
    model: Option<String>,
    /// A system message that starts the conversation.
    #[arg(long)]
    system: Option<String>,
    #[command(flatten)]
    gen_args: GenArgs,
}

/// What one input line asks for.
#[derive(Debug, PartialEq)]
enum Input {
    Say(String),
    Clear,
    Bye,
    Unknown(String),
    Nothing,
}

fn parse_line(line: &str) -> Input {
    let line = line.trim();
    match line {
        "" => Input::Nothing,
        "/bye" => Input::Bye,
        "/clear" => Input::Clear,
        cmd if cmd.starts_with('/') && !cmd.contains(char::is_whitespace) => {
            Input::Unknown(cmd.to_string())
        }
        text => Input::Say(text.to_string()),
    }
}

/// The conversation's opening: the system message, if any.
fn opening(system: Option<&str>) -> Vec<Message> {
    system
        .map(|s| Message::new("system", s))
        .into_iter()
        .collect()
}

/// Runs `skiff chat`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let loaded = load(args.model.as_deref(), args.gen_args.threads)?;
    let gen_args = &args.gen_args;
    let mut session = Session::new(
        &loaded.model,
        &loaded.cpu,
        &gen_args.session_config(&loaded.model),
    )?;
    let request = gen_args.request(&loaded.tokenizer);
    let template = chat_template(&loaded)?;
    let interactive = std::io::stdin().is_terminal();
    let mut messages = opening(args.system.as_deref());
    let mut stdin = std::io::stdin().lock();
    loop {
        if interactive {
            print!(">>> ");
            std::io::stdout().flush()?;
        }
        let mut bytes = Vec::new();
        if stdin.read_until(b'\n', &mut bytes)? == 0 {
            break;
        }
        let Ok(line) = String::from_utf8(bytes) else {
            eprintln!("error: that line is not valid UTF-8; it was skipped");
            continue;
        };
        match parse_line(&line) {
            Input::Nothing => continue,
            Input::Bye => break,
            Input::Unknown(cmd) => eprintln!("unknown command {cmd}; commands are /clear and /bye"),
            Input::Clear => {
                messages = opening(args.system.as_deref());
                session.clear();
                eprintln!("cleared the conversation");
            }
            Input::Say(text) => {
                messages.push(Message::new("user", &text));
                let started = Instant::now();
                let tokens = match encode_chat(&loaded.tokenizer, &template, &messages) {
                    Ok(tokens) => tokens,
                    Err(err) => {
                        messages.pop();
                        eprintln!("error: {err:#}");
                        continue;
                    }
                };
                let done =
                    match session.generate(&loaded.tokenizer, &tokens, &request, print_events) {
                        Ok(done) => done,
                        Err(err @ EngineError::PromptTooLong { .. }) => {
                            messages.pop();
                            eprintln!("error: {err}. Use /clear to start a new conversation.");
                            continue;
                        }
                        Err(err) => return Err(err.into()),
                    };
                let closed = {
                    let mut out = std::io::stdout().lock();
                    writeln!(out).and_then(|()| out.flush()).is_err()
                };
                if closed || done.finish_reason == FinishReason::Cancelled {
                    break;
                }
                if gen_args.verbose {
                    eprint!("{}", describe(&loaded, &session, &done));
                    eprint!(
                        "{}",
                        timing_report(loaded.load_time, started.elapsed(), &done)
                    );
                }
                messages.push(Message::new("assistant", &done.text));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_into_commands_and_turns() {
        assert_eq!(parse_line("/bye\n"), Input::Bye);
        assert_eq!(parse_line("  /clear "), Input::Clear);
        assert_eq!(parse_line("\n"), Input::Nothing);
        assert_eq!(parse_line("/help"), Input::Unknown("/help".into()));
        assert_eq!(
            parse_line("/usr/bin holds what?\n"),
            Input::Say("/usr/bin holds what?".into())
        );
        assert_eq!(
            parse_line("Hello there\n"),
            Input::Say("Hello there".into())
        );
    }
}
