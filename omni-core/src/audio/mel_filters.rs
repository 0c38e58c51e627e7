//! The Slaney mel filterbank Whisper uses (`whisper/assets/mel_filters.npz`), computed here.
//!
//! Whisper ships `librosa.filters.mel(sr=16000, n_fft=400, n_mels=N)` (Slaney mel scale,
//! `htk=False`, Slaney area normalisation, `fmin = 0`, `fmax = sr / 2`). This module
//! restates that formula in f64 and rounds like librosa does (the triangle weights are stored
//! in an f32 array, then scaled in place by the f64 normalisation), so the result matches the
//! shipped arrays to f32 rounding (the tests check `mel_80` and `mel_128`).

/// Slaney scale: Hz per mel below 1 kHz, and where the log part starts.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;

/// Hz → mel on the Slaney scale (linear below 1 kHz, logarithmic above).
fn hz_to_mel(hz: f64) -> f64 {
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        min_log_mel + (hz / MIN_LOG_HZ).ln() / logstep
    } else {
        hz / F_SP
    }
}

/// Mel → Hz on the Slaney scale (inverse of [`hz_to_mel`]).
fn mel_to_hz(mel: f64) -> f64 {
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (logstep * (mel - min_log_mel)).exp()
    } else {
        F_SP * mel
    }
}

/// `numpy.linspace(start, stop, n)` (endpoint included), as numpy computes it.
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    let div = (n - 1) as f64;
    let step = (stop - start) / div;
    let mut v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
    v[n - 1] = stop;
    v
}

/// The dense filterbank `[n_mels, n_fft / 2 + 1]`, row-major, f32 (librosa's dtype).
pub(crate) fn slaney_mel_filters(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_bins = n_fft / 2 + 1;
    let sr = sample_rate as f64;
    let fft_freqs = linspace(0.0, sr / 2.0, n_bins);
    let mel_f: Vec<f64> = linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2)
        .into_iter()
        .map(mel_to_hz)
        .collect();

    let mut weights = vec![0f32; n_mels * n_bins];
    for i in 0..n_mels {
        let fdiff_lo = mel_f[i + 1] - mel_f[i];
        let fdiff_hi = mel_f[i + 2] - mel_f[i + 1];
        let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = -(mel_f[i] - f) / fdiff_lo;
            let upper = (mel_f[i + 2] - f) / fdiff_hi;
            let tri = 0f64.max(lower.min(upper)) as f32;
            weights[i * n_bins + k] = (tri as f64 * enorm) as f32;
        }
    }
    weights
}
