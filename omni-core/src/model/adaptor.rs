//! The speech adaptor (`EncoderProjectorConcat` in the reference): concatenate
//! every k consecutive encoder frames, then Linear → ReLU → Linear into the
//! LLM's embedding space.

use std::path::Path;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::Deserialize;

use crate::model::llama::OmniConfig;
use crate::weights::{RunDType, WeightStore};
use crate::{Error, Result};

/// Adaptor dimensions, as in the LLaMA-Omni `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AdaptorConfig {
    /// k: frames concatenated per output (5).
    pub speech_encoder_ds_rate: usize,
    /// Encoder width (1280).
    pub speech_encoder_hidden_size: usize,
    /// LLM width (4096).
    pub hidden_size: usize,
}

impl AdaptorConfig {
    /// The adaptor fields of an already parsed LLaMA-Omni config (`path` names the file
    /// in errors).
    pub fn from_omni(cfg: &OmniConfig, path: &Path) -> Result<Self> {
        let field = |v: Option<usize>, name: &str| match v {
            Some(n) if n > 0 => Ok(n),
            _ => Err(Error::Config {
                path: path.to_path_buf(),
                reason: format!("{name} is missing or 0 (the speech adaptor needs it)"),
            }),
        };
        Ok(AdaptorConfig {
            speech_encoder_ds_rate: field(cfg.speech_encoder_ds_rate, "speech_encoder_ds_rate")?,
            speech_encoder_hidden_size: field(
                cfg.speech_encoder_hidden_size,
                "speech_encoder_hidden_size",
            )?,
            hidden_size: cfg.llm.hidden_size,
        })
    }

    /// Reads the adaptor fields of a LLaMA-Omni `config.json`.
    pub fn from_config_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cfg: AdaptorConfig = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if cfg.speech_encoder_ds_rate == 0 {
            return Err(Error::Config {
                path: path.to_path_buf(),
                reason: "speech_encoder_ds_rate is 0".into(),
            });
        }
        Ok(cfg)
    }
}

/// `EncoderProjectorConcat`: `linear2(relu(linear1(concat_k(x))))`.
#[derive(Module, Debug)]
pub struct SpeechAdaptor {
    pub linear1: Linear,
    pub linear2: Linear,
    pub k: usize,
}

impl SpeechAdaptor {
    /// Loads `{prefix}linear1` / `{prefix}linear2` (the reference's prefix is
    /// `model.speech_projector.`). The hidden width (2048 in the reference) is
    /// read from the checkpoint.
    pub fn load(
        store: &WeightStore,
        prefix: &str,
        cfg: &AdaptorConfig,
        dtype: RunDType,
        device: &Device,
    ) -> Result<Self> {
        let key1 = format!("{prefix}linear1.weight");
        let d_in = cfg.speech_encoder_hidden_size * cfg.speech_encoder_ds_rate;
        let hidden = match store.info(&key1).map(|i| i.shape.clone()) {
            Some(s) if s.len() == 2 => s[0],
            Some(s) => {
                return Err(Error::ShapeMismatch {
                    path: store.origin().to_path_buf(),
                    key: key1,
                    expected: vec![2048, d_in],
                    found: s,
                })
            }
            None => {
                return Err(Error::MissingKey {
                    path: store.origin().to_path_buf(),
                    key: key1,
                })
            }
        };
        Ok(SpeechAdaptor {
            linear1: store.linear(
                &format!("{prefix}linear1"),
                d_in,
                hidden,
                true,
                dtype,
                device,
            )?,
            linear2: store.linear(
                &format!("{prefix}linear2"),
                hidden,
                cfg.hidden_size,
                true,
                dtype,
                device,
            )?,
            k: cfg.speech_encoder_ds_rate,
        })
    }

    /// `[batch, frames, enc_dim]` → `[batch, frames / k, llm_dim]`; the last
    /// `frames % k` frames are dropped, as in the reference.
    pub fn forward(&self, x: Tensor<3>) -> Result<Tensor<3>> {
        let [b, t, c] = x.dims();
        let n = t / self.k;
        if n == 0 {
            return Err(Error::InvalidInput(format!(
                "{t} encoder frames: fewer than k = {}",
                self.k
            )));
        }
        let x = if t % self.k != 0 {
            x.slice([0..b, 0..n * self.k, 0..c])
        } else {
            x
        };
        // Encoder outputs come in f32 from training batches and host buffers: compute
        // in the adaptor's own dtype (a no-op when they already match).
        let x = x
            .reshape([b, n, c * self.k])
            .cast(self.linear1.weight.dtype());
        Ok(self.linear2.forward(relu(self.linear1.forward(x))))
    }
}
