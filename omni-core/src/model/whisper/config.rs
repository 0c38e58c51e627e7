//! Whisper encoder dimensions.

use std::path::Path;

use serde::Deserialize;

use crate::{Error, Result};

/// The encoder half of openai-whisper's `ModelDimensions`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WhisperConfig {
    /// Mel bins (128 for large-v3, 80 before).
    pub n_mels: usize,
    /// Encoder positions (1500 = 30 s).
    pub n_audio_ctx: usize,
    /// Width (1280 for large-v3).
    pub n_audio_state: usize,
    /// Attention heads (20 for large-v3).
    pub n_audio_head: usize,
    /// Blocks (32 for large-v3).
    pub n_audio_layer: usize,
}

/// HF `WhisperConfig` field names.
#[derive(Debug, Deserialize)]
struct HfWhisperConfig {
    num_mel_bins: usize,
    max_source_positions: usize,
    d_model: usize,
    encoder_attention_heads: usize,
    encoder_layers: usize,
}

impl WhisperConfig {
    /// Whisper large-v3.
    pub fn large_v3() -> Self {
        WhisperConfig {
            n_mels: 128,
            n_audio_ctx: 1500,
            n_audio_state: 1280,
            n_audio_head: 20,
            n_audio_layer: 32,
        }
    }

    /// Whisper base (for benchmarks).
    pub fn base() -> Self {
        WhisperConfig {
            n_mels: 80,
            n_audio_ctx: 1500,
            n_audio_state: 512,
            n_audio_head: 8,
            n_audio_layer: 6,
        }
    }

    /// Reads `dims` from an openai-whisper `.pt` checkpoint.
    /// A missing or unreadable file is an I/O error ([`crate::ErrorKind::Io`]).
    pub fn from_openai_pt(path: &Path) -> Result<Self> {
        crate::error::check_readable(path, "Whisper checkpoint (.pt)")?;
        let cfg: WhisperConfig = burn_store::pytorch_reader::PytorchReader::load_config(
            path,
            Some("dims"),
        )
        .map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            reason: format!("cannot read `dims` (is this an openai-whisper checkpoint?): {e}"),
        })?;
        cfg.validate(path)
    }

    /// Reads a HF Whisper `config.json`.
    pub fn from_hf_config(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let hf: HfWhisperConfig = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        WhisperConfig {
            n_mels: hf.num_mel_bins,
            n_audio_ctx: hf.max_source_positions,
            n_audio_state: hf.d_model,
            n_audio_head: hf.encoder_attention_heads,
            n_audio_layer: hf.encoder_layers,
        }
        .validate(path)
    }

    /// Checks that the dimensions are usable.
    pub fn validate(self, path: &Path) -> Result<Self> {
        let bad = |reason: String| {
            Err(Error::Config {
                path: path.to_path_buf(),
                reason,
            })
        };
        if self.n_mels == 0
            || self.n_audio_ctx == 0
            || self.n_audio_state == 0
            || self.n_audio_head == 0
        {
            return bad(format!("zero dimension in {self:?}"));
        }
        if !self.n_audio_state.is_multiple_of(self.n_audio_head) {
            return bad(format!(
                "n_audio_state {} is not a multiple of n_audio_head {}",
                self.n_audio_state, self.n_audio_head
            ));
        }
        Ok(self)
    }

    /// Mel frames the encoder takes for a full window (2 × `n_audio_ctx`).
    pub fn n_frames(&self) -> usize {
        2 * self.n_audio_ctx
    }
}
