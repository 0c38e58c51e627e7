//! Normalisations over the rows of a host buffer, parallel over blocks of rows, each
//! sum in eight f32 lanes (the compiler vectorizes the lanes; no SIMD module needed):
//!
//! - [`layer_norm_rows`]: PyTorch's `F.layer_norm` over the last axis (the Whisper
//!   encoder's `attn_ln`, `mlp_ln`, `ln_post`): `y = (x − mean) / √(var + eps) · γ +
//!   β`, `var` the biased variance; two passes per row (mean, then the centred
//!   squares: no `E[x²] − mean²` cancellation);
//! - [`rms_norm_rows`]: transformers' `LlamaRMSNorm` in f32: `y = x · (1 /
//!   √(mean(x²) + eps)) · w`.

use rayon::prelude::*;

/// Values per rayon task (rows are grouped up to this many values).
const CHUNK: usize = 32 << 10;

/// Lanes of the partial sums.
const LANES: usize = 8;

/// `out[r] = layer_norm(x[r]) · gamma + beta` for each row `r` of the row-major
/// `[rows, n]` buffer `x` (`n = gamma.len()`).
pub fn layer_norm_rows(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    let n = gamma.len();
    assert_eq!(beta.len(), n, "beta of {} for gamma of {n}", beta.len());
    for_each_row(x, n, out, |x, y| {
        let mean = lane_sum(x, |v| v) / n as f32;
        let var = lane_sum(x, |v| (v - mean) * (v - mean)) / n as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for (((y, &x), &g), &b) in y.iter_mut().zip(x).zip(gamma).zip(beta) {
            *y = (x - mean) * inv * g + b;
        }
    });
}

/// `out[r] = x[r] · (1 / √(mean(x[r]²) + eps)) · w` for each row `r` of the
/// row-major `[rows, n]` buffer `x` (`n = w.len()`).
pub fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let n = w.len();
    for_each_row(x, n, out, |x, y| {
        let inv = 1.0 / (lane_sum(x, |v| v * v) / n as f32 + eps).sqrt();
        for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
            *y = x * inv * w;
        }
    });
}

/// `f(x[r], out[r])` for each row `r` of the `[rows, n]` buffers, parallel over
/// blocks of rows (about [`CHUNK`] values each).
fn for_each_row(x: &[f32], n: usize, out: &mut [f32], f: impl Fn(&[f32], &mut [f32]) + Sync) {
    assert_eq!(x.len(), out.len(), "x and out differ in length");
    if x.is_empty() {
        return;
    }
    assert!(
        n > 0 && x.len().is_multiple_of(n),
        "{} values in rows of {n}",
        x.len()
    );
    let rows_per_task = (CHUNK / n).max(1) * n;
    out.par_chunks_mut(rows_per_task)
        .zip(x.par_chunks(rows_per_task))
        .for_each(|(out, x)| {
            for (y, x) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
                f(x, y);
            }
        });
}

/// `Σ f(v)` over `x`, in [`LANES`] partial sums.
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the definition in f64, rows of odd widths (lane tails) around a
    /// common offset of 100 with a spread σ ≈ 0.58: within 1e-4 absolute + relative.
    /// The f32 mean is off by ≈ ε·100 ≈ 1e-5 of σ; `E[x²] − mean²` would lose
    /// ≈ ε·1e4 ≈ 6e-4 of the variance 0.33 and fail.
    #[test]
    fn layer_norm_rows_match_the_f64_definition() {
        for (rows, n) in [(1usize, 1usize), (3, 7), (5, 64), (70, 1283)] {
            let x: Vec<f32> = (0..rows * n)
                .map(|i| 100.0 + ((i * 37 % 101) as f32 - 50.0) * 0.02)
                .collect();
            let gamma: Vec<f32> = (0..n).map(|j| 0.5 + (j % 5) as f32 * 0.25).collect();
            let beta: Vec<f32> = (0..n).map(|j| (j % 3) as f32 - 1.0).collect();
            let mut out = vec![f32::NAN; rows * n];
            layer_norm_rows(&x, &gamma, &beta, 1e-5, &mut out);
            for r in 0..rows {
                let row: Vec<f64> = x[r * n..(r + 1) * n].iter().map(|&v| v as f64).collect();
                let mean = row.iter().sum::<f64>() / n as f64;
                let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
                for j in 0..n {
                    let want =
                        (row[j] - mean) / (var + 1e-5).sqrt() * gamma[j] as f64 + beta[j] as f64;
                    let got = out[r * n + j] as f64;
                    assert!(
                        (got - want).abs() <= 1e-4 + 1e-4 * want.abs(),
                        "rows {rows} × {n}: [{r}, {j}] {got} vs {want}"
                    );
                }
            }
        }
    }

    /// RMSNorm against the definition in f64 (rows of odd widths): within 1e-5
    /// absolute + relative (f32 sums of ≤ 1283 squares, O(1) outputs).
    #[test]
    fn rms_norm_rows_match_the_f64_definition() {
        for (rows, n) in [(1usize, 1usize), (3, 7), (70, 1283)] {
            let x: Vec<f32> = (0..rows * n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.02 + 0.3)
                .collect();
            let w: Vec<f32> = (0..n).map(|j| 0.5 + (j % 5) as f32 * 0.25).collect();
            let mut out = vec![f32::NAN; rows * n];
            rms_norm_rows(&x, &w, 1e-5, &mut out);
            for r in 0..rows {
                let row: Vec<f64> = x[r * n..(r + 1) * n].iter().map(|&v| v as f64).collect();
                let ms = row.iter().map(|v| v * v).sum::<f64>() / n as f64;
                for j in 0..n {
                    let want = row[j] / (ms + 1e-5).sqrt() * w[j] as f64;
                    let got = out[r * n + j] as f64;
                    assert!(
                        (got - want).abs() <= 1e-5 + 1e-5 * want.abs(),
                        "rows {rows} × {n}: [{r}, {j}] {got} vs {want}"
                    );
                }
            }
        }
    }

    /// A NaN in one row reaches that row only.
    #[test]
    fn a_nan_stays_in_its_row() {
        let n = 16;
        let mut x: Vec<f32> = (0..3 * n).map(|i| i as f32 * 0.1).collect();
        x[n + 3] = f32::NAN;
        let (g, b) = (vec![1.0f32; n], vec![0.0f32; n]);
        let mut out = vec![0.0f32; 3 * n];
        layer_norm_rows(&x, &g, &b, 1e-5, &mut out);
        assert!(out[..n].iter().chain(&out[2 * n..]).all(|v| v.is_finite()));
        assert!(out[n..2 * n].iter().all(|v| v.is_nan()));
    }
}
