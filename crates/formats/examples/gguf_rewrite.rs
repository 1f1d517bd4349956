//! Run with `cargo run -p skiff-formats --example gguf_rewrite -- IN.gguf OUT.gguf`.
//!
//! Parses a GGUF file and writes it back through the streaming `GgufWriter`, one tensor at a
//! time. `tools/reference/formats_check_writer.py` then compares both with `gguf.GGUFReader`.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use skiff_formats::{GgufWriter, parse_gguf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: gguf_rewrite IN.gguf OUT.gguf".into());
    };
    let bytes = std::fs::read(input)?;
    let file = parse_gguf(&bytes)?;
    let mut w = GgufWriter::new();
    for (key, value) in &file.metadata {
        w.add_meta(key, value.clone())?;
    }
    for t in &file.tensors {
        w.add_tensor_info(&t.name, &t.dims, t.dtype)?;
    }
    let mut out = w.begin(BufWriter::new(File::create(output)?))?;
    for t in &file.tensors {
        let start = usize::try_from(t.offset)?;
        let end = start + usize::try_from(t.n_bytes)?;
        out.write_tensor_data(&t.name, &bytes[start..end])?;
    }
    out.finish()?;
    println!(
        "wrote {} ({} tensors)",
        output.display(),
        file.tensors.len()
    );
    Ok(())
}
