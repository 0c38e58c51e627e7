//! Whisper's log-mel frontend (`whisper.audio.log_mel_spectrogram`), in plain Rust.
//!
//! Steps, as in the reference: centred STFT (reflect padding of `N_FFT / 2` on both sides,
//! periodic Hann window of 400 samples, hop 160), the last frame dropped, power spectrum
//! `|X|²`, Slaney mel filterbank, `log10(max(x, 1e-10))`, `max(x, global_max - 8)`,
//! `(x + 4) / 4`. The arithmetic is done in f64 (the reference runs in f32), so the output is
//! at least as accurate as the reference's.

use std::fmt;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::mel_filters::slaney_mel_filters;
use crate::{Error, Result};

/// Sample rate Whisper expects.
pub const SAMPLE_RATE: u32 = 16000;
/// STFT window / FFT length (25 ms).
pub const N_FFT: usize = 400;
/// STFT hop (10 ms).
pub const HOP: usize = 160;
/// Samples in Whisper's 30 s window.
pub const N_SAMPLES: usize = 480_000;
/// Mel frames in Whisper's 30 s window.
pub const N_FRAMES: usize = N_SAMPLES / HOP;

/// Number of FFT bins (`N_FFT / 2 + 1`).
const N_BINS: usize = N_FFT / 2 + 1;

/// `whisper.pad_or_trim` on one clip: zero-pads at the end or truncates to `len` samples.
pub fn pad_or_trim(samples: &[f32], len: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&samples[..samples.len().min(len)]);
    out.resize(len, 0.0);
    out
}

/// Checks that `samples` is non-empty and finite; names the first bad sample.
pub(crate) fn validate_samples(samples: &[f32]) -> Result<()> {
    if samples.is_empty() {
        return Err(Error::Audio("empty audio".into()));
    }
    check_finite(samples).map_err(Error::Audio)
}

/// The message naming the first NaN/inf sample, if any.
pub(crate) fn check_finite(samples: &[f32]) -> std::result::Result<(), String> {
    match samples.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        Some((i, x)) => Err(format!(
            "non-finite sample {x} at index {i} (of {} samples)",
            samples.len()
        )),
        None => Ok(()),
    }
}

/// A log-mel spectrogram, row-major `[n_mels, n_frames]` (the layout Whisper's `conv1` reads).
#[derive(Debug, Clone, PartialEq)]
pub struct LogMel {
    pub n_mels: usize,
    pub n_frames: usize,
    /// `data[m * n_frames + t]` is mel bin `m` of frame `t`.
    pub data: Vec<f32>,
}

impl LogMel {
    /// The value of mel bin `mel` at frame `frame`.
    pub fn get(&self, mel: usize, frame: usize) -> f32 {
        self.data[mel * self.n_frames + frame]
    }

    /// The same values laid out `[n_frames, n_mels]` (frame-major).
    pub fn to_frame_major(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.data.len()];
        for m in 0..self.n_mels {
            for t in 0..self.n_frames {
                out[t * self.n_mels + m] = self.data[m * self.n_frames + t];
            }
        }
        out
    }
}

/// One mel filter, stored over its nonzero bins only.
#[derive(Clone)]
struct SparseFilter {
    first_bin: usize,
    weights: Vec<f64>,
}

/// Whisper's log-mel frontend for `n_mels` = 80 or 128. Build once, reuse for every clip
/// (it holds the FFT plan, the window and the filterbank). `Send + Sync`.
#[derive(Clone)]
pub struct MelFrontend {
    n_mels: usize,
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    /// The dense filterbank `[n_mels, N_BINS]` as f32 (what whisper ships).
    filters: Vec<f32>,
    sparse: Vec<SparseFilter>,
}

impl fmt::Debug for MelFrontend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MelFrontend")
            .field("n_mels", &self.n_mels)
            .finish_non_exhaustive()
    }
}

impl MelFrontend {
    /// A frontend producing `n_mels` bins (80: Whisper ≤ v2, 128: large-v3, used by LLaMA-Omni).
    pub fn new(n_mels: usize) -> Result<Self> {
        if n_mels != 80 && n_mels != 128 {
            return Err(Error::InvalidInput(format!(
                "n_mels must be 80 or 128 (Whisper's filterbanks), got {n_mels}"
            )));
        }
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
        // torch.hann_window(400) is periodic: 0.5 - 0.5 cos(2πn / N).
        let window = (0..N_FFT)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos())
            .collect();
        let filters = slaney_mel_filters(SAMPLE_RATE, N_FFT, n_mels);
        let sparse = filters
            .chunks_exact(N_BINS)
            .map(|row| {
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
                SparseFilter {
                    first_bin: first,
                    weights: row[first..last].iter().map(|&w| w as f64).collect(),
                }
            })
            .collect();
        Ok(Self {
            n_mels,
            fft,
            window,
            filters,
            sparse,
        })
    }

    /// Number of mel bins.
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// The mel filterbank, row-major `[n_mels, N_FFT / 2 + 1]` (whisper's `mel_filters.npz`).
    pub fn filters(&self) -> &[f32] {
        &self.filters
    }

    /// Number of frames [`log_mel`](Self::log_mel) gives for `n_samples` samples.
    pub fn n_frames(n_samples: usize) -> usize {
        n_samples / HOP
    }

    /// `whisper.log_mel_spectrogram(samples, n_mels)` on exactly these samples (no 30 s
    /// padding): `n_samples / 160` frames. The clip must be longer than `N_FFT / 2` samples
    /// (reflect padding needs that much, as in torch).
    pub fn log_mel(&self, samples: &[f32]) -> Result<LogMel> {
        validate_samples(samples)?;
        let len = samples.len();
        let pad = N_FFT / 2;
        if len <= pad {
            return Err(Error::Audio(format!(
                "audio too short for the mel frontend: {len} samples, need more than {pad}"
            )));
        }
        let n_frames = Self::n_frames(len);
        let n_mels = self.n_mels;

        // Reflect-padded signal: x[pad], ..., x[1], x[0..len], x[len-2], ..., x[len-1-pad].
        let mut padded = Vec::with_capacity(len + 2 * pad);
        padded.extend((1..=pad).rev().map(|i| samples[i] as f64));
        padded.extend(samples.iter().map(|&x| x as f64));
        padded.extend((0..pad).map(|i| samples[len - 2 - i] as f64));

        let mut input = self.fft.make_input_vec();
        let mut spectrum: Vec<Complex<f64>> = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0f64; N_BINS];
        // mel energies, [n_mels, n_frames]
        let mut mel = vec![0f64; n_mels * n_frames];

        for t in 0..n_frames {
            let frame = &padded[t * HOP..t * HOP + N_FFT];
            for ((dst, &x), &w) in input.iter_mut().zip(frame).zip(&self.window) {
                *dst = x * w;
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .map_err(|e| Error::Audio(format!("FFT failed: {e}")))?;
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.re * c.re + c.im * c.im;
            }
            for (m, f) in self.sparse.iter().enumerate() {
                let bins = &power[f.first_bin..f.first_bin + f.weights.len()];
                mel[m * n_frames + t] = f.weights.iter().zip(bins).map(|(w, p)| w * p).sum();
            }
        }

        let mut max = f64::NEG_INFINITY;
        for v in mel.iter_mut() {
            *v = v.max(1e-10).log10();
            max = max.max(*v);
        }
        let floor = max - 8.0;
        let data = mel
            .iter()
            .map(|&v| ((v.max(floor) + 4.0) / 4.0) as f32)
            .collect();
        Ok(LogMel {
            n_mels,
            n_frames,
            data,
        })
    }

    /// The reference's path: [`pad_or_trim`] to 30 s (480 000 samples), then
    /// [`log_mel`](Self::log_mel): always `N_FRAMES` = 3000 frames.
    pub fn log_mel_30s(&self, samples: &[f32]) -> Result<LogMel> {
        validate_samples(samples)?;
        self.log_mel(&pad_or_trim(samples, N_SAMPLES))
    }
}
