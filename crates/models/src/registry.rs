//! Architecture name -> builder. GGUF's `general.architecture` and the names the Hugging
//! Face loader maps `config.json`'s `model_type` to both land here (vLLM's alias registry,
//! llama.cpp's `LLM_ARCH_*` table).

use crate::arch::{self, Architecture};
use crate::error::{Error, Result};
use crate::weights::{Loader, TensorTable};

/// Builds an architecture from a loader over its own weight-name table.
type Builder = fn(&Loader<'_>) -> Result<Box<dyn Architecture>>;

/// Every supported architecture name, with its weight table and builder.
const REGISTRY: &[(&str, TensorTable, Builder)] = &[
    ("llama", arch::llama::TENSORS, arch::llama::build),
    ("mistral", arch::llama::TENSORS, arch::llama::build),
    ("qwen2", arch::qwen2::TENSORS, arch::qwen2::build),
    ("qwen3", arch::qwen3::TENSORS, arch::qwen3::build),
    ("gemma3", arch::gemma3::TENSORS, arch::gemma3::build),
];

/// The architecture names skiff can run.
pub fn supported_architectures() -> Vec<&'static str> {
    REGISTRY.iter().map(|(name, _, _)| *name).collect()
}

/// The weight table and builder for `arch`, or `UnknownArchitecture` listing the
/// supported names.
pub(crate) fn lookup(arch: &str) -> Result<(TensorTable, Builder)> {
    REGISTRY
        .iter()
        .find(|(name, _, _)| *name == arch)
        .map(|(_, table, build)| (*table, *build))
        .ok_or_else(|| Error::UnknownArchitecture {
            arch: arch.to_string(),
            supported: supported_architectures(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known names resolve; an unknown one lists every supported name.
    #[test]
    fn unknown_arch_lists_supported() {
        assert!(lookup("qwen3").is_ok());
        match lookup("mamba") {
            Err(err @ Error::UnknownArchitecture { .. }) => {
                let msg = err.to_string();
                for name in ["llama", "mistral", "qwen2", "qwen3", "gemma3"] {
                    assert!(msg.contains(name), "{msg}");
                }
                assert!(msg.contains("\"mamba\""), "{msg}");
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("mamba resolved"),
        }
    }
}
