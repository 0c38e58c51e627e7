//! Audio input: audio files (WAV, FLAC, MP3, Ogg Vorbis: [`read_audio`]),
//! resampling to 16 kHz, and Whisper's log-mel frontend.
//!
//! ```no_run
//! use omni_core::audio::{read_audio, to_16k_mono, MelFrontend};
//! # fn main() -> omni_core::Result<()> {
//! let (samples, rate) = read_audio(std::path::Path::new("question.flac"))?;
//! let samples = to_16k_mono(&samples, rate)?;
//! let mel = MelFrontend::new(128)?.log_mel_30s(&samples)?; // [128, 3000]
//! # Ok(()) }
//! ```

pub mod mel;
mod mel_filters;
pub mod pcm;
pub mod read;
pub mod resample;
pub mod wav;

pub use mel::{pad_or_trim, LogMel, MelFrontend, HOP, N_FFT, N_FRAMES, N_SAMPLES, SAMPLE_RATE};
pub use pcm::{f32_to_i16, i16_to_f32};
pub use read::read_audio;
pub use resample::{resample, to_16k_mono};
pub use wav::{read_wav, write_wav};
