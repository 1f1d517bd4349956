//! Run with: `cargo run -p skiff-engine --example generate -- MODEL.gguf "Once upon a time"`
//!
//! The smallest use of the engine: load a GGUF model, encode a raw prompt, and stream a
//! greedy completion of up to 32 tokens to stdout.

use std::io::Write;
use std::ops::ControlFlow;
use std::sync::Arc;

use skiff_backend_cpu::Cpu;
use skiff_engine::{Event, GenerateRequest, Session, SessionConfig, StopCriteria};
use skiff_formats::ModelFile;
use skiff_models::Model;
use skiff_sample::SamplingParams;
use skiff_tokenizer::Tokenizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(prompt)) = (args.next(), args.next()) else {
        return Err("usage: generate MODEL.gguf PROMPT".into());
    };
    let file = Arc::new(ModelFile::open(path.as_ref())?);
    let tokenizer = Tokenizer::from_spec(&file.spec().tokenizer)?;
    let model = Model::load(file)?;
    let cpu = Cpu::new(2);
    let mut session = Session::new(&model, &cpu, &SessionConfig::default())?;
    let request = GenerateRequest {
        sampling: SamplingParams::greedy(),
        stop: StopCriteria::new(32, tokenizer.eog_ids().to_vec()),
    };
    let prompt_tokens = tokenizer.encode(&prompt, true)?;
    let done = session.generate(&tokenizer, &prompt_tokens, &request, |event| {
        let text = match event {
            Event::Token(t) => t.text,
            Event::Text(text) => text,
        };
        print!("{text}");
        let _ = std::io::stdout().flush();
        ControlFlow::Continue(())
    })?;
    println!();
    eprintln!(
        "{} prompt tokens, {} generated in {:.2?} ({})",
        done.usage.prompt_tokens,
        done.usage.completion_tokens,
        done.usage.generation_time,
        done.finish_reason.as_str()
    );
    Ok(())
}
