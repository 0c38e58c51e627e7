//! Whisper's log-mel frontend (`whisper.audio.log_mel_spectrogram`), in plain Rust.
//!
//! Steps, as in the reference: centred STFT (reflect padding of `N_FFT / 2` on both sides,
//! periodic Hann window of 400 samples, hop 160), the last frame dropped, power spectrum
//! `|X|²`, Slaney mel filterbank, `log10(max(x, 1e-10))`, `max(x, global_max - 8)`,
//! `(x + 4) / 4`. The arithmetic is done in f32, as the reference's (`torch.stft` on f32
//! audio); frames are split over rayon's threads.

use std::fmt;
use std::sync::Arc;

use rayon::prelude::*;
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
    weights: Vec<f32>,
}

/// Frames per rayon task: 3000 frames → 24 tasks, enough to balance 2–16 threads while
/// each task reuses its FFT buffers over many frames.
const FRAMES_PER_TASK: usize = 128;

/// Whisper's log-mel frontend for `n_mels` = 80 or 128. Build once, reuse for every clip
/// (it holds the FFT plan, the window and the filterbank). `Send + Sync`.
#[derive(Clone)]
pub struct MelFrontend {
    n_mels: usize,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
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

/// One task's FFT buffers, reused over its frames.
struct FftBuffers {
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
}

impl MelFrontend {
    /// A frontend producing `n_mels` bins (80: Whisper ≤ v2, 128: large-v3, used by LLaMA-Omni).
    pub fn new(n_mels: usize) -> Result<Self> {
        if n_mels != 80 && n_mels != 128 {
            return Err(Error::InvalidInput(format!(
                "n_mels must be 80 or 128 (Whisper's filterbanks), got {n_mels}"
            )));
        }
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        // torch.hann_window(400) is periodic: 0.5 - 0.5 cos(2πn / N) (computed in f64,
        // rounded once to f32 as torch's f32 window is).
        let window = (0..N_FFT)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32
            })
            .collect();
        let filters = slaney_mel_filters(SAMPLE_RATE, N_FFT, n_mels);
        let sparse = filters
            .chunks_exact(N_BINS)
            .map(|row| {
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
                SparseFilter {
                    first_bin: first,
                    weights: row[first..last].to_vec(),
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

    fn buffers(&self) -> FftBuffers {
        FftBuffers {
            input: self.fft.make_input_vec(),
            spectrum: self.fft.make_output_vec(),
            scratch: self.fft.make_scratch_vec(),
            power: vec![0f32; N_BINS],
        }
    }

    /// `log10(max(mel energy, 1e-10))` of frames `t0..t0 + out.len() / n_mels` of the
    /// signal, frame-major into `out`. Mirrors `log_mel_spectrogram`'s
    /// `torch.stft` → `magnitudes = stft[..., :-1].abs() ** 2` → `filters @ magnitudes`
    /// → `clamp(min=1e-10).log10()`, one frame at a time.
    fn log_energies(
        &self,
        signal: &Signal<'_>,
        t0: usize,
        out: &mut [f32],
        b: &mut FftBuffers,
    ) -> Result<()> {
        for (dt, row) in out.chunks_exact_mut(self.n_mels).enumerate() {
            signal.windowed_frame(t0 + dt, &self.window, &mut b.input);
            self.fft
                .process_with_scratch(&mut b.input, &mut b.spectrum, &mut b.scratch)
                .map_err(|e| Error::Audio(format!("FFT failed: {e}")))?;
            for (p, c) in b.power.iter_mut().zip(&b.spectrum) {
                *p = c.re * c.re + c.im * c.im;
            }
            for (dst, f) in row.iter_mut().zip(&self.sparse) {
                let bins = &b.power[f.first_bin..f.first_bin + f.weights.len()];
                *dst = f.weights.iter().zip(bins).map(|(w, p)| w * p).sum();
            }
        }
        // `torch.clamp(mel_spec, min=1e-10).log10()`, vectorized over the task's frames.
        omni_kernels::log10_floor(out, 1e-10);
        Ok(())
    }

    /// `whisper.log_mel_spectrogram(samples, n_mels)` on exactly these samples (no 30 s
    /// padding): `n_samples / 160` frames. The clip must be longer than `N_FFT / 2` samples
    /// (reflect padding needs that much, as in torch).
    ///
    /// Single precision like the reference (`torch.stft` in f32); the frames are split
    /// over rayon's threads.
    pub fn log_mel(&self, samples: &[f32]) -> Result<LogMel> {
        validate_samples(samples)?;
        self.log_mel_validated(samples, samples.len())
    }

    /// [`log_mel`](Self::log_mel) of `samples` (already checked by `validate_samples`)
    /// zero-extended or cut to `len` samples ([`pad_or_trim`] without the copy).
    fn log_mel_validated(&self, samples: &[f32], len: usize) -> Result<LogMel> {
        let pad = N_FFT / 2;
        if len <= pad {
            return Err(Error::Audio(format!(
                "audio too short for the mel frontend: {len} samples, need more than {pad}"
            )));
        }
        let n_frames = Self::n_frames(len);
        let n_mels = self.n_mels;
        let signal = Signal { src: samples, len };

        // log10 mel energies, frame-major [n_frames, n_mels].
        let mut logs = vec![0f32; n_frames * n_mels];
        logs.par_chunks_mut(FRAMES_PER_TASK * n_mels)
            .enumerate()
            .try_for_each_init(
                || self.buffers(),
                |b, (c, out)| self.log_energies(&signal, c * FRAMES_PER_TASK, out, b),
            )?;

        let max = logs
            .par_chunks(FRAMES_PER_TASK * n_mels)
            .map(|c| c.iter().copied().fold(f32::NEG_INFINITY, f32::max))
            .reduce(|| f32::NEG_INFINITY, f32::max);
        // `torch.maximum(log_spec, log_spec.max() - 8.0)`, `(log_spec + 4.0) / 4.0`,
        // written mel-major.
        let floor = max - 8.0;
        let mut data = vec![0f32; n_mels * n_frames];
        data.par_chunks_mut(n_frames)
            .enumerate()
            .for_each(|(m, row)| {
                for (t, dst) in row.iter_mut().enumerate() {
                    *dst = (logs[t * n_mels + m].max(floor) + 4.0) / 4.0;
                }
            });
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
        self.log_mel_validated(samples, N_SAMPLES)
    }
}

/// The signal the STFT reads, without copying it: `src` zero-extended (or cut) to
/// `len` samples ([`pad_or_trim`]), then reflect-padded by `N_FFT / 2` on both sides
/// (`torch.stft(center=True, pad_mode="reflect")`: x[pad], …, x[1], x[0..len],
/// x[len−2], …, x[len−1−pad]). `len > N_FFT / 2`.
struct Signal<'a> {
    src: &'a [f32],
    len: usize,
}

impl Signal<'_> {
    /// Sample `i` of the padded signal (`i` counted from its start, `−N_FFT/2` in `x`).
    fn at(&self, i: usize) -> f32 {
        let (pad, len) = (N_FFT / 2, self.len);
        let j = if i < pad {
            pad - i
        } else if i - pad < len {
            i - pad
        } else {
            2 * (len - 1) - (i - pad)
        };
        self.src.get(j).copied().filter(|_| j < len).unwrap_or(0.0)
    }

    /// Frame `t` (padded samples `t·HOP..t·HOP + N_FFT`) times `window`, into `dst`.
    fn windowed_frame(&self, t: usize, window: &[f32], dst: &mut [f32]) {
        let start = t * HOP;
        let pad = N_FFT / 2;
        let inside = self.src.len().min(self.len);
        if start >= pad && start - pad + N_FFT <= inside {
            let frame = &self.src[start - pad..start - pad + N_FFT];
            for ((d, &x), &w) in dst.iter_mut().zip(frame).zip(window) {
                *d = x * w;
            }
        } else {
            for (n, (d, &w)) in dst.iter_mut().zip(window).enumerate() {
                *d = self.at(start + n) * w;
            }
        }
    }
}
