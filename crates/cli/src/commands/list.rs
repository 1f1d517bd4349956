//! `skiff list [--verify] [--json]`: the models in the local store.
//!
//! One row per model: name, size, sha256 prefix, source, and for GGUF models the
//! architecture and quantization (`general.file_type`, else the tensor type holding the
//! most bytes; read from the file header, which is cheap: the file
//! is memory-mapped and only its metadata parsed). `--verify` re-hashes every blob; any
//! corrupt model makes the command fail after printing the table.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;
use skiff_formats::ModelFile;
use skiff_store::{Check, Content, Entry, Health, Store};

use super::pull::StoreArgs;

/// Arguments of `skiff list`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Re-hash every blob and compare with its manifest (reads every byte).
    #[arg(long)]
    pub verify: bool,
    /// Print one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// One row, ready to print.
struct Row {
    name: String,
    size: Option<u64>,
    sha256: Option<String>,
    source: String,
    arch: Option<String>,
    quant: Option<String>,
    status: String,
}

/// Runs `skiff list`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let store = args.store.open()?;
    let check = if args.verify {
        Check::Sha256
    } else {
        Check::Size
    };
    let rows: Vec<Row> = store
        .list(check)?
        .into_iter()
        .map(|e| row(&store, e))
        .collect();
    if args.json {
        let items: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": r.name, "size": r.size, "sha256": r.sha256, "source": r.source,
                    "arch": r.arch, "quant": r.quant, "status": r.status,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(items));
    } else if rows.is_empty() {
        println!(
            "no models in {} (add one with `skiff pull`)",
            store.root().display()
        );
    } else {
        print_table(&rows);
    }
    let n_corrupt = rows.iter().filter(|r| r.status != "ok").count();
    if args.verify && n_corrupt > 0 {
        anyhow::bail!("{n_corrupt} model(s) are corrupt; `skiff rm` them and pull again");
    }
    Ok(())
}

fn row(store: &Store, entry: Entry) -> Row {
    let status = match &entry.health {
        Health::Ok => "ok".to_string(),
        Health::Corrupt(problem) => format!("corrupt: {problem}"),
    };
    let Ok(manifest) = entry.manifest else {
        return Row {
            name: entry.name,
            size: None,
            sha256: None,
            source: String::new(),
            arch: None,
            quant: None,
            status,
        };
    };
    let (size, sha256) = match &manifest.content {
        Content::Blob { sha256, size } => (Some(*size), Some(sha256.clone())),
        Content::Folder { .. } => (None, None),
    };
    let (arch, quant) = match entry.health {
        Health::Ok => arch_and_quant(&store.content_path(&manifest)),
        Health::Corrupt(_) => (None, None),
    };
    Row {
        name: entry.name,
        size,
        sha256,
        source: manifest.source,
        arch,
        quant,
        status,
    }
}

/// The architecture and the tensor type holding the most bytes, when the model opens.
fn arch_and_quant(path: &Path) -> (Option<String>, Option<String>) {
    let Ok(model) = ModelFile::open(path) else {
        return (None, None);
    };
    let spec = model.spec();
    let mut bytes_by_dtype = BTreeMap::new();
    for t in &spec.tensors {
        *bytes_by_dtype.entry(t.dtype).or_insert(0u64) += t.n_bytes;
    }
    let quant = file_type_name(spec).map(str::to_string).or_else(|| {
        bytes_by_dtype
            .into_iter()
            .max_by_key(|&(_, n)| n)
            .map(|(d, _)| d.to_string())
    });
    (Some(spec.arch.clone()), quant)
}

/// The name of `general.file_type` (llama.cpp's `llama_ftype`), e.g. `Q4_K_M` for 15.
pub fn file_type_name(spec: &skiff_formats::ModelSpec) -> Option<&'static str> {
    let id = spec.metadata.get("general.file_type")?.as_u32()?;
    Some(match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        _ => return None,
    })
}

fn print_table(rows: &[Row]) {
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.size.map_or_else(|| "-".into(), format_bytes),
                r.sha256
                    .as_deref()
                    .map_or_else(|| "-".into(), |s| short_sha(s).to_string()),
                r.arch.clone().unwrap_or_else(|| "-".into()),
                r.quant.clone().unwrap_or_else(|| "-".into()),
                r.status.clone(),
                r.source.clone(),
            ]
        })
        .collect();
    let header = [
        "NAME", "SIZE", "SHA256", "ARCH", "QUANT", "STATUS", "SOURCE",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for c in &cells {
        for (w, cell) in widths.iter_mut().zip(c) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for line in std::iter::once(&header).chain(&cells) {
        let text: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    }
}

/// The first 12 hex digits of a digest.
pub fn short_sha(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// Bytes in binary units: `512 B`, `93.8 MiB`, `1.10 GiB`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ if value >= 100.0 => format!("{value:.0} {}", UNITS[unit]),
        _ if value >= 10.0 => format!("{value:.1} {}", UNITS[unit]),
        _ => format!("{value:.2} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_digests_are_formatted_for_people() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536), "1.50 KiB");
        assert_eq!(format_bytes(98_362_432), "93.8 MiB");
        assert_eq!(format_bytes(253_113_024), "241 MiB");
        assert_eq!(format_bytes(1_181_116_006), "1.10 GiB");
        assert_eq!(short_sha(&"ab".repeat(32)), "abababababab");
        assert_eq!(short_sha("abc"), "abc");
    }
}
