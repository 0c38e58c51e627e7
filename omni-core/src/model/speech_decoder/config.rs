//! Speech decoder configuration from the LLaMA-Omni `config.json`.

use std::path::Path;

use crate::model::llama::OmniConfig;
use crate::{Error, Result};

/// Shapes of `SpeechGeneratorCTC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtcDecoderConfig {
    pub n_layers: usize,
    pub dim: usize,
    pub n_heads: usize,
    pub ffn: usize,
    /// λ: frames per LLM hidden state (25).
    pub upsample_factor: usize,
    /// Units (1000); the blank is the last class, `unit_vocab_size`.
    pub unit_vocab_size: usize,
}

impl CtcDecoderConfig {
    /// Parses "(layers,dim,heads,ffn)".
    pub fn parse_layers(s: &str) -> Option<(usize, usize, usize, usize)> {
        let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
        let v: Vec<usize> = inner
            .split(',')
            .map(|x| x.trim().parse().ok())
            .collect::<Option<_>>()?;
        match v.as_slice() {
            [a, b, c, d] => Some((*a, *b, *c, *d)),
            _ => None,
        }
    }

    /// Reads the `ctc_*` and `unit_vocab_size` fields.
    pub fn from_omni(cfg: &OmniConfig, path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(t) = &cfg.speech_generator_type {
            if t != "ctc" {
                return Err(bad(format!(
                    "speech_generator_type `{t}` is not supported (ctc is)"
                )));
            }
        }
        let s = cfg
            .ctc_decoder_config
            .as_deref()
            .ok_or_else(|| bad("no `ctc_decoder_config`".into()))?;
        let (n_layers, dim, n_heads, ffn) = Self::parse_layers(s).ok_or_else(|| {
            bad(format!(
                "ctc_decoder_config `{s}` is not \"(layers,dim,heads,ffn)\""
            ))
        })?;
        if dim == 0 || ffn == 0 {
            return Err(bad(format!(
                "ctc_decoder_config `{s}`: dim and ffn must be at least 1"
            )));
        }
        if n_heads == 0 || dim % n_heads != 0 || (dim / n_heads) % 2 != 0 {
            return Err(bad(format!(
                "ctc_decoder_config `{s}`: dim must split into an even head width"
            )));
        }
        let upsample_factor = cfg
            .ctc_upsample_factor
            .ok_or_else(|| bad("no `ctc_upsample_factor`".into()))?;
        let unit_vocab_size = cfg
            .unit_vocab_size
            .ok_or_else(|| bad("no `unit_vocab_size`".into()))?;
        if upsample_factor == 0 || unit_vocab_size == 0 {
            return Err(bad(
                "ctc_upsample_factor and unit_vocab_size must be positive".into(),
            ));
        }
        Ok(CtcDecoderConfig {
            n_layers,
            dim,
            n_heads,
            ffn,
            upsample_factor,
            unit_vocab_size,
        })
    }

    /// The blank class id.
    pub fn blank(&self) -> u32 {
        self.unit_vocab_size as u32
    }
}
