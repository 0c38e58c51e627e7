//! Llama configuration read from the checkpoint's own `config.json` (HF field
//! names). `model_type` `llama` and LLaMA-Omni's `omni_speech2s_llama` are both
//! accepted; the speech fields of the latter are in [`OmniConfig`].

use std::path::Path;

use serde::Deserialize;

use crate::{Error, Result};

/// `rope_scaling` of type `llama3`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RopeScaling {
    #[serde(alias = "type")]
    pub rope_type: String,
    #[serde(default = "one")]
    pub factor: f64,
    #[serde(default = "one")]
    pub low_freq_factor: f64,
    #[serde(default = "four")]
    pub high_freq_factor: f64,
    #[serde(default = "n8192")]
    pub original_max_position_embeddings: usize,
}

fn one() -> f64 {
    1.0
}
fn four() -> f64 {
    4.0
}
fn n8192() -> usize {
    8192
}
fn theta() -> f64 {
    10000.0
}
fn eps() -> f64 {
    1e-6
}
fn max_pos() -> usize {
    2048
}

/// An int or a list of ints (`eos_token_id` is either).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            OneOrMany::One(x) => vec![*x],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// The Llama fields of `config.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LlamaConfig {
    #[serde(default)]
    pub model_type: String,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    pub vocab_size: usize,
    #[serde(default = "eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "theta")]
    pub rope_theta: f64,
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    #[serde(default = "max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<OneOrMany>,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default)]
    pub hidden_act: Option<String>,
}

impl LlamaConfig {
    /// KV heads (GQA); equal to the query heads when absent.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Token ids that end generation.
    pub fn eos_ids(&self) -> Vec<u32> {
        self.eos_token_id
            .as_ref()
            .map(|e| e.to_vec())
            .unwrap_or_default()
    }

    /// Checks the fields omni supports.
    pub fn validate(self, path: &Path) -> Result<Self> {
        let bad = |reason: String| {
            Err(Error::Config {
                path: path.to_path_buf(),
                reason,
            })
        };
        if !matches!(
            self.model_type.as_str(),
            "" | "llama" | "omni_speech2s_llama" | "omni_speech_llama"
        ) {
            return bad(format!(
                "model_type `{}` is not a Llama model",
                self.model_type
            ));
        }
        // Sizes that cannot build a network (a zero dimension, a context of no
        // position): refused at load, naming the field, instead of failing later.
        for (field, v) in [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("vocab_size", self.vocab_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                return bad(format!("{field} is 0; it must be at least 1"));
            }
        }
        if self.num_key_value_heads == Some(0) {
            return bad("num_key_value_heads is 0; it must be at least 1".into());
        }
        if self.head_dim == Some(0) {
            return bad("head_dim is 0; it must be at least 1".into());
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {} (and no head_dim is given)",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return bad(format!(
                "rms_norm_eps {} must be a finite number > 0",
                self.rms_norm_eps
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad(format!(
                "rope_theta {} must be a finite number > 0",
                self.rope_theta
            ));
        }
        if let Some(bos) = self.bos_token_id {
            if bos as usize >= self.vocab_size {
                return bad(format!(
                    "bos_token_id {bos} is not below vocab_size {}",
                    self.vocab_size
                ));
            }
        }
        if self.num_attention_heads == 0
            || self.kv_heads() == 0
            || !self.num_attention_heads.is_multiple_of(self.kv_heads())
        {
            return bad(format!(
                "num_attention_heads {} must be a positive multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.kv_heads()
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(format!(
                "head_dim {} must be even for RoPE",
                self.head_dim()
            ));
        }
        if self.attention_bias || self.mlp_bias {
            return bad("attention_bias / mlp_bias are not supported (Llama 3.1 has none)".into());
        }
        if let Some(act) = &self.hidden_act {
            if act != "silu" {
                return bad(format!(
                    "hidden_act `{act}` is not supported (Llama uses silu)"
                ));
            }
        }
        if let Some(rs) = &self.rope_scaling {
            if rs.rope_type != "llama3" && rs.rope_type != "default" {
                return bad(format!(
                    "rope_scaling type `{}` is not supported (llama3 is)",
                    rs.rope_type
                ));
            }
            if rs.rope_type == "llama3" {
                for (field, v) in [
                    ("rope_scaling.factor", rs.factor),
                    ("rope_scaling.low_freq_factor", rs.low_freq_factor),
                    ("rope_scaling.high_freq_factor", rs.high_freq_factor),
                ] {
                    if !(v.is_finite() && v > 0.0) {
                        return bad(format!("{field} {v} must be a finite number > 0"));
                    }
                }
                // transformers' `_compute_llama3_parameters` divides by their difference.
                if rs.high_freq_factor <= rs.low_freq_factor {
                    return bad(format!(
                        "rope_scaling.high_freq_factor {} must be above low_freq_factor {}",
                        rs.high_freq_factor, rs.low_freq_factor
                    ));
                }
                if rs.original_max_position_embeddings == 0 {
                    return bad(
                        "rope_scaling.original_max_position_embeddings is 0; it must be at least 1"
                            .into(),
                    );
                }
            }
        }
        Ok(self)
    }
}

/// The LLaMA-Omni fields of `config.json` beyond Llama's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OmniConfig {
    #[serde(flatten)]
    pub llm: LlamaConfig,
    /// Path of the Whisper `.pt` (relative to the working directory in the reference).
    #[serde(default)]
    pub speech_encoder: Option<String>,
    #[serde(default)]
    pub speech_encoder_type: Option<String>,
    #[serde(default)]
    pub speech_encoder_ds_rate: Option<usize>,
    #[serde(default)]
    pub speech_encoder_hidden_size: Option<usize>,
    #[serde(default)]
    pub speech_projector_type: Option<String>,
    #[serde(default)]
    pub speech_generator_type: Option<String>,
    /// "(layers,dim,heads,ffn)".
    #[serde(default)]
    pub ctc_decoder_config: Option<String>,
    #[serde(default)]
    pub ctc_upsample_factor: Option<usize>,
    #[serde(default)]
    pub unit_vocab_size: Option<usize>,
}

impl OmniConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::MissingFile {
                    path: path.to_path_buf(),
                    what: "model config.json".into(),
                }
            } else {
                Error::io(path, e)
            }
        })?;
        let cfg: OmniConfig = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let llm = cfg.llm.clone().validate(path)?;
        OmniConfig { llm, ..cfg }.validate(path)
    }

    /// Checks the speech fields that cannot work (a zero rate, size or unit
    /// vocabulary, a CTC decoder that cannot be built), so a model that could
    /// never run is refused at load, naming the field. Mirrors the checks of
    /// [`crate::model::speech_decoder::CtcDecoderConfig::from_omni`] and the adaptor,
    /// done here before any weight is read.
    pub fn validate(self, path: &Path) -> Result<Self> {
        let bad = |reason: String| {
            Err(Error::Config {
                path: path.to_path_buf(),
                reason,
            })
        };
        for (field, v) in [
            ("speech_encoder_ds_rate", self.speech_encoder_ds_rate),
            (
                "speech_encoder_hidden_size",
                self.speech_encoder_hidden_size,
            ),
            ("ctc_upsample_factor", self.ctc_upsample_factor),
            ("unit_vocab_size", self.unit_vocab_size),
        ] {
            if v == Some(0) {
                return bad(format!("{field} is 0; it must be at least 1"));
            }
        }
        if self.ctc_decoder_config.is_some() {
            crate::model::speech_decoder::CtcDecoderConfig::from_omni(&self, path)?;
        }
        Ok(self)
    }
}
