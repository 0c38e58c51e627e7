//! The activations applied to a layer's output buffer before it becomes a tensor
//! again (one vectorized pass instead of burn's elementwise ops, each a pass and an
//! allocation):
//!
//! - [`bias_gelu`]: `gelu(y + b)`, `gelu(x) = x/2 · (1 + erf(x/√2))` (PyTorch's
//!   `F.gelu`, exact form; the Whisper encoder's MLP and convolution stem);
//! - [`silu_mul`]: `silu(g) · u` (Llama's SwiGLU, `act_fn(gate_proj(x)) *
//!   up_proj(x)` of transformers' `LlamaMLP`), with the vectorized Cephes `exp`.
//!
//! GELU: On x86 `erf` is Abramowitz & Stegun 7.1.26 (`|error| ≤ 1.5e-7`
//! on erf) around the vectorized Cephes `exp`; written so that negative inputs
//! compute `x/2 · erfc(|x|/√2)` directly (no `1 − erf` cancellation):
//! `q = x/2 · P(t)·e^{−z²}` with `z = |x|/√2`, `t = 1/(1 + p·z)`; `gelu = x − q` for
//! `x ≥ 0`, `q` below. Portable: `libm::erff` (what burn-flex's `gelu` calls).

use rayon::prelude::*;

use crate::Isa;

/// A&S 7.1.26: `p` and `a1..a5`.
pub(crate) const AS_P: f32 = 0.327_591_1;
pub(crate) const AS_A: [f32; 5] = [
    0.254_829_6,
    -0.284_496_74,
    1.421_413_8,
    -1.453_152_1,
    1.061_405_4,
];

/// |x| beyond which `erfc(|x|/√2)` is taken as 0 in the SIMD GELU.
pub(crate) const CLAMP: f32 = 20.0;

/// Elements per rayon task.
const CHUNK: usize = 16 << 10;

/// `y ← gelu(y + bias[j % n])` in place (`bias`: one value per column of the
/// row-major `[rows, n]` buffer, or none); parallel over chunks of rows.
pub fn bias_gelu(y: &mut [f32], bias: Option<&[f32]>, n: usize) {
    bias_gelu_with(Isa::selected(), y, bias, n)
}

/// [`bias_gelu`] with an explicit instruction set (panics if this CPU lacks it).
pub fn bias_gelu_with(isa: Isa, y: &mut [f32], bias: Option<&[f32]>, n: usize) {
    assert!(
        isa.is_available(),
        "kernels {isa:?} are not available on this CPU"
    );
    if y.is_empty() {
        return;
    }
    assert!(
        n > 0 && y.len().is_multiple_of(n),
        "{} values in rows of {n}",
        y.len()
    );
    if let Some(b) = bias {
        assert_eq!(b.len(), n, "bias of {} for rows of {n}", b.len());
    }
    let rows_per_task = (CHUNK / n).max(1);
    y.par_chunks_mut(rows_per_task * n).for_each(|c| {
        for row in c.chunks_exact_mut(n) {
            if let Some(b) = bias {
                row.iter_mut().zip(b).for_each(|(v, &b)| *v += b);
            }
            gelu_row(isa, row);
        }
    });
}

/// `g ← silu(g) · u = g·u / (1 + e^{−g})` in place, elementwise; parallel over
/// chunks.
pub fn silu_mul(g: &mut [f32], u: &[f32]) {
    silu_mul_with(Isa::selected(), g, u)
}

/// [`silu_mul`] with an explicit instruction set (panics if this CPU lacks it).
pub fn silu_mul_with(isa: Isa, g: &mut [f32], u: &[f32]) {
    assert!(
        isa.is_available(),
        "kernels {isa:?} are not available on this CPU"
    );
    assert_eq!(g.len(), u.len(), "gate and up of different lengths");
    g.par_chunks_mut(CHUNK)
        .zip(u.par_chunks(CHUNK))
        .for_each(|(g, u)| match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa.is_available()` was asserted: AVX-512 F (and AVX2, FMA,
            // F16C) were detected.
            Isa::Avx512Vnni => unsafe { crate::x86::silu_mul_avx512(g, u) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above: AVX2, FMA, F16C.
            Isa::Avx2 => unsafe { crate::x86::silu_mul_avx2(g, u) },
            _ => g
                .iter_mut()
                .zip(u)
                .for_each(|(g, &u)| *g = *g / (1.0 + (-*g).exp()) * u),
        });
}

fn gelu_row(isa: Isa, row: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `bias_gelu_with` asserted `isa.is_available()`: AVX-512 F (and AVX2,
        // FMA, F16C) were detected.
        Isa::Avx512Vnni => unsafe { crate::x86::gelu_avx512(row) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: AVX2, FMA, F16C.
        Isa::Avx2 => unsafe { crate::x86::gelu_avx2(row) },
        _ => row.iter_mut().for_each(|v| *v = gelu_exact(*v)),
    }
}

/// `x/2 · (1 + erf(x/√2))` with `libm::erff`.
pub(crate) fn gelu_exact(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}
