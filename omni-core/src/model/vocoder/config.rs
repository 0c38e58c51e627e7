//! The vocoder's `config.json` (fairseq / speech-resynthesis unit HiFi-GAN format).
//!
//! The published file also carries training keys (`batch_size`, `segment_size`,
//! `num_mels`, `dist_config`, ...); they are ignored, as fairseq's `CodeGenerator` does.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result};

/// `dur_predictor_params`: fairseq's `VariancePredictor` arguments.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DurPredictorParams {
    /// Input width (the unit embedding width).
    pub encoder_embed_dim: usize,
    /// Width of the two convolutions.
    pub var_pred_hidden_dim: usize,
    /// Kernel size of the two convolutions (3: fairseq pads the second conv by 1).
    pub var_pred_kernel_size: usize,
    /// Training-only dropout (unused at inference).
    #[serde(default)]
    pub var_pred_dropout: f64,
}

/// The fields of the vocoder config that define the network.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VocoderConfig {
    /// `"1"` (ResBlock1, the only kind fairseq's `CodeGenerator` builds). Absent = `"1"`.
    #[serde(default)]
    pub resblock: Option<Value>,
    /// Transposed-conv strides, `[5, 4, 4, 2, 2]` for the LJ vocoder (×320).
    pub upsample_rates: Vec<usize>,
    /// Transposed-conv kernels, `[11, 8, 8, 4, 4]`.
    pub upsample_kernel_sizes: Vec<usize>,
    /// Channels after `conv_pre` (512), halved at each upsampling stage.
    pub upsample_initial_channel: usize,
    /// ResBlock kernels, `[3, 7, 11]`.
    pub resblock_kernel_sizes: Vec<usize>,
    /// ResBlock dilations, `[[1, 3, 5]; 3]`.
    pub resblock_dilation_sizes: Vec<Vec<usize>>,
    /// Unit vocabulary (1000).
    pub num_embeddings: usize,
    /// Unit embedding width (128).
    pub embedding_dim: usize,
    /// `conv_pre` input width; fairseq's default is 80 when absent.
    #[serde(default = "default_model_in_dim")]
    pub model_in_dim: usize,
    /// Duration predictor; absent = every unit lasts one frame (fairseq without `dur_predictor_params`).
    #[serde(default)]
    pub dur_predictor_params: Option<DurPredictorParams>,
    /// Output sample rate (16000).
    #[serde(default = "default_sampling_rate")]
    pub sampling_rate: u32,
    /// Samples per unit frame used in training (320); the network's own hop is the
    /// product of `upsample_rates`.
    #[serde(default)]
    pub code_hop_size: Option<usize>,
    /// F0 conditioning (unsupported: must be absent or false).
    #[serde(default)]
    pub f0: Option<Value>,
    /// Multi-speaker embedding (unsupported: must be absent or false).
    #[serde(default)]
    pub multispkr: Option<Value>,
    /// Speaker embedder (unsupported: must be absent or null).
    #[serde(default)]
    pub embedder_params: Option<Value>,
}

fn default_model_in_dim() -> usize {
    80
}

fn default_sampling_rate() -> u32 {
    16000
}

/// Python truthiness of a JSON value (what `if cfg.get(key)` tests in fairseq).
fn truthy(v: &Option<Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

impl VocoderConfig {
    /// Reads and checks a `config.json`.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::MissingFile {
                path: path.to_path_buf(),
                what: "vocoder config.json".into(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_str(&text, path)
    }

    /// Parses and checks config JSON text; `path` is only used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let cfg: VocoderConfig = serde_json::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        cfg.validate(path)
    }

    /// Number of upsampling stages.
    pub fn num_upsamples(&self) -> usize {
        self.upsample_rates.len()
    }

    /// Channels after upsampling stage `i` (`upsample_initial_channel / 2^(i+1)`).
    pub fn stage_channels(&self, i: usize) -> usize {
        self.upsample_initial_channel >> (i + 1)
    }

    /// Output samples per unit frame when every stage multiplies the length exactly by
    /// its rate (`(k - u)` even), as in every published config: 320. `None` otherwise.
    pub fn samples_per_frame(&self) -> Option<usize> {
        let exact = self
            .upsample_rates
            .iter()
            .zip(&self.upsample_kernel_sizes)
            .all(|(&u, &k)| k.checked_sub(u).is_some_and(|d| d % 2 == 0));
        exact.then(|| self.upsample_rates.iter().product())
    }

    /// Checks that the config describes a network omni can build (and fairseq can run).
    pub fn validate(self, path: &Path) -> Result<Self> {
        let bad = |reason: String| {
            Err(Error::Config {
                path: path.to_path_buf(),
                reason,
            })
        };
        match &self.resblock {
            None => {}
            Some(Value::String(s)) if s == "1" => {}
            Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
            Some(other) => {
                return bad(format!(
                    "resblock {other} is not supported: only ResBlock1 (\"1\", what fairseq's CodeGenerator builds) is"
                ))
            }
        }
        if truthy(&self.f0) {
            return bad(
                "f0 conditioning (`f0`: true) is not supported; LLaMA-Omni's vocoder has none"
                    .into(),
            );
        }
        if truthy(&self.multispkr) {
            return bad(
                "multi-speaker vocoders (`multispkr`) are not supported; LLaMA-Omni's vocoder has one voice".into()
            );
        }
        if truthy(&self.embedder_params) {
            return bad("speaker embedders (`embedder_params`) are not supported".into());
        }
        let n = self.upsample_rates.len();
        if n == 0 || n != self.upsample_kernel_sizes.len() {
            return bad(format!(
                "upsample_rates ({n}) and upsample_kernel_sizes ({}) must be non-empty and of the same length",
                self.upsample_kernel_sizes.len()
            ));
        }
        for (i, (&u, &k)) in self
            .upsample_rates
            .iter()
            .zip(&self.upsample_kernel_sizes)
            .enumerate()
        {
            if u == 0 || k < u {
                return bad(format!(
                    "upsampling stage {i}: rate {u} and kernel {k} need 1 <= rate <= kernel"
                ));
            }
        }
        if self
            .upsample_initial_channel
            .checked_shr(n as u32)
            .unwrap_or(0)
            == 0
        {
            return bad(format!(
                "upsample_initial_channel {} cannot be halved {n} times",
                self.upsample_initial_channel
            ));
        }
        let nk = self.resblock_kernel_sizes.len();
        if nk == 0 || nk != self.resblock_dilation_sizes.len() {
            return bad(format!(
                "resblock_kernel_sizes ({nk}) and resblock_dilation_sizes ({}) must be non-empty and of the same length",
                self.resblock_dilation_sizes.len()
            ));
        }
        for (&k, d) in self
            .resblock_kernel_sizes
            .iter()
            .zip(&self.resblock_dilation_sizes)
        {
            if k % 2 == 0 {
                return bad(format!(
                    "resblock kernel {k} must be odd (the residual needs a length-preserving conv)"
                ));
            }
            if d.len() != 3 || d.contains(&0) {
                return bad(format!(
                    "ResBlock1 takes three non-zero dilations, got {d:?}"
                ));
            }
        }
        if self.num_embeddings == 0 || self.embedding_dim == 0 {
            return bad("num_embeddings and embedding_dim must be non-zero".into());
        }
        if self.model_in_dim != self.embedding_dim {
            return bad(format!(
                "model_in_dim {} differs from embedding_dim {} (only unit input, without f0 or speaker features, is supported)",
                self.model_in_dim, self.embedding_dim
            ));
        }
        if let Some(d) = &self.dur_predictor_params {
            if d.encoder_embed_dim != self.embedding_dim {
                return bad(format!(
                    "dur_predictor_params.encoder_embed_dim {} differs from embedding_dim {}",
                    d.encoder_embed_dim, self.embedding_dim
                ));
            }
            if d.var_pred_hidden_dim == 0 {
                return bad("dur_predictor_params.var_pred_hidden_dim must be non-zero".into());
            }
            if d.var_pred_kernel_size != 3 {
                return bad(format!(
                    "dur_predictor_params.var_pred_kernel_size {} is not supported: fairseq pads the second conv by 1, \
                     which keeps the length only for kernel 3",
                    d.var_pred_kernel_size
                ));
            }
        }
        if self.sampling_rate == 0 {
            return bad("sampling_rate must be non-zero".into());
        }
        Ok(self)
    }
}
