#![allow(dead_code)] // each example uses a part of it
//! Command-line options shared by the examples (`omni`, `latency`): one
//! definition of the model and generation flags, parsed by clap.

use std::path::PathBuf;

use omni_core::weights::RunDType;
use omni_core::{Omni, OmniOptions, SessionOptions};

/// Which model to load, and how.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// LLaMA-Omni model folder (config.json, safetensors shards, tokenizer).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Unit vocoder folder (g_00500000 + config.json).
    #[arg(long)]
    pub vocoder: Option<PathBuf>,
    /// Device: cpu, wgpu, wgpu:cpu, cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Run dtype of the encoder, adaptor, LLM and speech decoder.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: RunDType,
    /// Whisper encoder checkpoint, overriding the model config's `speech_encoder`.
    #[arg(long)]
    pub speech_encoder: Option<PathBuf>,
}

fn parse_dtype(s: &str) -> Result<RunDType, String> {
    RunDType::parse(s).ok_or_else(|| format!("unknown dtype {s:?} (f32, f16, bf16, q8_0, q4_0)"))
}

impl ModelArgs {
    pub fn options(&self) -> OmniOptions {
        OmniOptions {
            device: self.device.clone(),
            dtype: self.dtype,
            speech_encoder: self.speech_encoder.clone(),
        }
    }

    /// The model and vocoder folders; the demo model when none is given.
    pub fn dirs(&self) -> (PathBuf, PathBuf) {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        (
            self.model
                .clone()
                .unwrap_or_else(|| root.join("tests/fixtures/omni_tiny")),
            self.vocoder
                .clone()
                .unwrap_or_else(|| root.join("tests/fixtures/vocoder/tiny")),
        )
    }
}

/// Generation and streaming settings.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GenerationArgs {
    /// Most tokens per answer.
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// Sampling temperature (0: greedy, as the reference).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Nucleus mass in (0, 1].
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Seed of the sampler.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Units in the first audio chunk.
    #[arg(long = "first-chunk")]
    pub first_chunk: Option<usize>,
    /// Units per later audio chunk (Ω).
    #[arg(long)]
    pub chunk: Option<usize>,
}

impl GenerationArgs {
    /// Session options for `omni`: live endpointing or explicit turns.
    pub fn session_options(&self, omni: &Omni, live: bool) -> SessionOptions {
        let mut o = if live {
            SessionOptions::for_model(omni)
        } else {
            SessionOptions::explicit_turns(omni)
        };
        if let Some(n) = self.max_new_tokens {
            o.generation.max_new_tokens = n;
        }
        if let Some(t) = self.temperature {
            o.generation.sampling.temperature = t;
        }
        if let Some(p) = self.top_p {
            o.generation.sampling.top_p = p;
        }
        if let Some(s) = self.seed {
            o.generation.sampling.seed = s;
        }
        if let Some(c) = self.first_chunk {
            o.vocoder.first_chunk_units = c;
        }
        if let Some(c) = self.chunk {
            o.vocoder.chunk_units = c;
        }
        o
    }
}
