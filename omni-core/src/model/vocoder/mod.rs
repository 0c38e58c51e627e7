//! The unit vocoder: fairseq's unit HiFi-GAN with duration prediction
//! (`CodeHiFiGANVocoder`, checkpoint `vocoder/g_00500000` + `config.json`, 16 kHz),
//! and chunked streaming synthesis.
//!
//! - [`config`]: the `config.json` fields (published format; f0 / multi-speaker rejected).
//! - [`weight_norm`]: folding `weight_g`/`weight_v` into plain weights at load.
//! - [`duration`]: the duration predictor and fairseq's duration rounding.
//! - [`hifigan`]: the HiFi-GAN generator (ResBlock1).
//! - [`host`]: the same generator on host buffers with omni-kernels' direct
//!   convolutions, used on the CPU device.
//! - [`code_hifigan`]: [`CodeHiFiGan`], units → PCM (`load`, `durations`, `synthesize`).
//! - [`stream`]: [`VocoderStream`], the reference's independent chunks or omni's
//!   overlapped, cross-faded chunks.
//!
//! Everything runs in f32 on any burn [`Device`](burn::tensor::Device), as the reference
//! (fp32 unless `--fp16`).

pub mod code_hifigan;
pub mod config;
pub mod duration;
pub mod hifigan;
pub mod host;
pub mod stream;
pub mod weight_norm;

pub use code_hifigan::CodeHiFiGan;
pub use config::{DurPredictorParams, VocoderConfig};
pub use stream::{ChunkBoundary, OverlapParams, StreamConfig, VocoderStream};
