//! Weight-name tables and the one shared loader every architecture uses.
//!
//! Each architecture declares `TENSORS: &[(Role, &str)]`, the GGUF name of every tensor it
//! may use, with `{i}` standing for the layer index (llama.cpp's `LLM_TENSOR_*` names).
//! The Hugging Face loader in `formats` maps safetensors names onto the same GGUF names, so
//! one table serves both sources. The [`Loader`] resolves a role to its tensor, checks its
//! dimensions against what the hyperparameters imply (the error names the tensor and both
//! shapes) and its dtype against what the role can use, and builds the layer object.

use skiff_backend_cpu::Cpu;
use skiff_formats::{HParams, ModelFile, ModelSpec, TensorInfo};
use skiff_tensor::quant::to_f32_vec;

use crate::error::{Error, Result};
use crate::layers::embedding::Embedding;
use crate::layers::linear::Linear;
use crate::layers::norm::RmsNorm;

/// What a tensor is for. The expected shape of each role follows from [`HParams`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `[d_model, n_vocab]` token embeddings.
    TokenEmbd,
    /// `[d_model, n_vocab]` LM head (absent when tied to `TokenEmbd`).
    Output,
    /// `[d_model]` final norm.
    OutputNorm,
    /// `[rot_dim / 2]` per-pair RoPE frequency divisors (Llama 3.1 in GGUF).
    RopeFreqs,
    /// `[d_model]` pre-attention norm.
    AttnNorm,
    /// `[d_model, n_heads * head_dim]`.
    AttnQ,
    /// `[d_model, n_kv_heads * head_dim]`.
    AttnK,
    /// `[d_model, n_kv_heads * head_dim_v]`.
    AttnV,
    /// `[n_heads * head_dim_v, d_model]`.
    AttnOut,
    /// `[n_heads * head_dim]` query bias.
    AttnQBias,
    /// `[n_kv_heads * head_dim]` key bias.
    AttnKBias,
    /// `[n_kv_heads * head_dim_v]` value bias.
    AttnVBias,
    /// `[head_dim]` per-head query norm.
    AttnQNorm,
    /// `[head_dim]` per-head key norm.
    AttnKNorm,
    /// `[d_model]` norm on the attention output, before the residual add (Gemma).
    AttnPostNorm,
    /// `[d_model]` pre-FFN norm.
    FfnNorm,
    /// `[d_model, ffn_dim]`.
    FfnGate,
    /// `[d_model, ffn_dim]`.
    FfnUp,
    /// `[ffn_dim, d_model]`.
    FfnDown,
    /// `[d_model]` norm on the FFN output, before the residual add (Gemma).
    FfnPostNorm,
}

impl Role {
    /// Dimensions in ggml order (`[n_in, n_out]` for matrices) implied by `hp`.
    pub fn expected_dims(self, hp: &HParams) -> Vec<u64> {
        let q_dim = hp.n_heads * hp.head_dim;
        let k_dim = hp.n_kv_heads * hp.head_dim;
        let v_dim = hp.n_kv_heads * hp.head_dim_v;
        let dims: &[usize] = match self {
            Role::TokenEmbd | Role::Output => &[hp.d_model, hp.n_vocab],
            Role::OutputNorm
            | Role::AttnNorm
            | Role::AttnPostNorm
            | Role::FfnNorm
            | Role::FfnPostNorm => &[hp.d_model],
            Role::RopeFreqs => &[hp.rope.rot_dim / 2],
            Role::AttnQ => &[hp.d_model, q_dim],
            Role::AttnK => &[hp.d_model, k_dim],
            Role::AttnV => &[hp.d_model, v_dim],
            Role::AttnOut => &[hp.n_heads * hp.head_dim_v, hp.d_model],
            Role::AttnQBias => &[q_dim],
            Role::AttnKBias => &[k_dim],
            Role::AttnVBias => &[v_dim],
            Role::AttnQNorm | Role::AttnKNorm => &[hp.head_dim],
            Role::FfnGate | Role::FfnUp => &[hp.d_model, hp.ffn_dim],
            Role::FfnDown => &[hp.ffn_dim, hp.d_model],
        };
        dims.iter().map(|&d| d as u64).collect()
    }
}

/// A weight-name table: every tensor an architecture may use.
pub type TensorTable = &'static [(Role, &'static str)];

/// Resolves an architecture's table against an open model file.
pub struct Loader<'a> {
    file: &'a ModelFile,
    table: TensorTable,
}

impl<'a> Loader<'a> {
    /// A loader for `file` using the names in `table`.
    pub fn new(file: &'a ModelFile, table: TensorTable) -> Loader<'a> {
        Loader { file, table }
    }

    /// The model's spec.
    pub fn spec(&self) -> &'a ModelSpec {
        self.file.spec()
    }

    /// The model's hyperparameters.
    pub fn hparams(&self) -> &'a HParams {
        &self.file.spec().hparams
    }

    /// The tensor name of `role` (in layer `layer_idx` for per-layer roles).
    pub fn name(&self, role: Role, layer_idx: Option<usize>) -> String {
        let pattern = self
            .table
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, name)| *name)
            .expect("architectures only ask for roles listed in their own table");
        match layer_idx {
            Some(i) => pattern.replace("{i}", &i.to_string()),
            None => pattern.to_string(),
        }
    }

    /// The tensor of `role` with its shape checked, or `None` when the file lacks it.
    fn find(&self, role: Role, layer_idx: Option<usize>) -> Result<Option<&'a TensorInfo>> {
        let name = self.name(role, layer_idx);
        let Some(info) = self.spec().tensor(&name) else {
            return Ok(None);
        };
        let expected = role.expected_dims(self.hparams());
        if info.dims != expected {
            return Err(Error::ShapeMismatch {
                name,
                expected,
                got: info.dims.clone(),
            });
        }
        Ok(Some(info))
    }

    /// Like `find`, but a missing tensor is an error.
    fn require(&self, role: Role, layer_idx: Option<usize>) -> Result<&'a TensorInfo> {
        self.find(role, layer_idx)?
            .ok_or_else(|| Error::MissingTensor {
                name: self.name(role, layer_idx),
            })
    }

    /// The values of a 1-D tensor (norm weight, bias, frequency factors) as f32, or `None`
    /// when the file lacks it.
    pub fn vector(&self, role: Role, layer_idx: Option<usize>) -> Result<Option<Vec<f32>>> {
        let Some(info) = self.find(role, layer_idx)? else {
            return Ok(None);
        };
        if info.dtype.is_quantized() {
            return Err(Error::UnsupportedDType {
                name: info.name.clone(),
                dtype: info.dtype,
                reason: "vectors (norms, biases) must be f32, f16 or bf16",
            });
        }
        // Read, not mapped: a fault on the mapping would also map the pages around it, which
        // belong to the (repacked, never mapped) weights beside the vector.
        let mut bytes = vec![0u8; usize::try_from(info.n_bytes).unwrap_or(usize::MAX)];
        self.file.read_tensor_range(info, 0, &mut bytes)?;
        let values = to_f32_vec(info.dtype, &bytes).map_err(|source| Error::Dequantize {
            name: info.name.clone(),
            source,
        })?;
        Ok(Some(values))
    }

    /// The RMSNorm of `role`, required, with the spec's `norm_weight_offset` folded into
    /// its weight (Gemma's `1 + w` for Hugging Face sources, 0 otherwise).
    pub fn norm(&self, role: Role, layer_idx: Option<usize>) -> Result<RmsNorm> {
        let weight = self
            .vector(role, layer_idx)?
            .ok_or_else(|| Error::MissingTensor {
                name: self.name(role, layer_idx),
            })?;
        Ok(RmsNorm::new(
            weight,
            self.spec().norm_weight_offset,
            self.hparams().norm_eps,
        ))
    }

    /// The projection of `role` (required), with the bias of `bias` when that is given
    /// (required too: an architecture with biases has them in every layer).
    pub fn linear(
        &self,
        role: Role,
        layer_idx: Option<usize>,
        bias: Option<Role>,
    ) -> Result<Linear> {
        let info = self.require(role, layer_idx)?;
        let bias = match bias {
            Some(b) => Some(
                self.vector(b, layer_idx)?
                    .ok_or_else(|| Error::MissingTensor {
                        name: self.name(b, layer_idx),
                    })?,
            ),
            None => None,
        };
        matrix(info, bias)
    }

    /// The projection of `role`, or `None` when the file lacks it (a tied LM head).
    pub fn linear_opt(&self, role: Role) -> Result<Option<Linear>> {
        self.find(role, None)?
            .map(|info| matrix(info, None))
            .transpose()
    }

    /// The token embedding table, output scaled by `scale`.
    pub fn embedding(&self, scale: f32) -> Result<Embedding> {
        let info = self.require(Role::TokenEmbd, None)?;
        let d_model = self.hparams().d_model;
        if !d_model.is_multiple_of(info.dtype.block_len()) || !Cpu::supports(info.dtype) {
            return Err(Error::UnsupportedDType {
                name: info.name.clone(),
                dtype: info.dtype,
                reason: "embedding rows must be whole blocks of a weight format",
            });
        }
        Ok(Embedding {
            info: info.clone(),
            d_model,
            scale,
        })
    }

    /// The embedding matrix used as the LM head (tied embeddings).
    pub fn tied_output(&self) -> Result<Linear> {
        matrix(self.require(Role::TokenEmbd, None)?, None)
    }
}

/// A [`Linear`] over a 2-D tensor whose shape was checked.
fn matrix(info: &TensorInfo, bias: Option<Vec<f32>>) -> Result<Linear> {
    let (n_in, n_out) = (info.dims[0] as usize, info.dims[1] as usize);
    if !Cpu::supports(info.dtype) {
        return Err(Error::UnsupportedDType {
            name: info.name.clone(),
            dtype: info.dtype,
            reason: "the CPU backend has no matmul kernel for it",
        });
    }
    if !n_in.is_multiple_of(info.dtype.block_len()) {
        return Err(Error::UnsupportedDType {
            name: info.name.clone(),
            dtype: info.dtype,
            reason: "rows must be a whole number of blocks",
        });
    }
    Ok(Linear {
        info: info.clone(),
        n_in,
        n_out,
        bias,
        packed: std::sync::OnceLock::new(),
    })
}
