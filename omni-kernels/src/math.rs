//! Elementwise math on buffers: [`log10_floor`], `log10(max(x, floor))` (Whisper's
//! log-mel: `torch.clamp(mel_spec, min=1e-10).log10()`), with Cephes' `logf` on
//! AVX-512 / AVX2 (the coefficients of `cephes/single/logf.c`, as sse_mathfun's
//! `log_ps`: within ~1 ulp of `ln`, then one multiplication by `log10(e)`); `f32::log10`
//! portable.

use crate::Isa;

/// Cephes `logf`: the polynomial in `m − 1` (`m` the mantissa in [√½, √2)), highest
/// degree first.
pub(crate) const LOG_P: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461_1e-1,
    1.167_699_9e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_8e-1,
    2.000_071_4e-1,
    -2.499_999_4e-1,
    3.333_333e-1,
];
/// ln 2 in two parts (Cephes `C1`, `C2`: `0.693359375 − 2.12194440e-4`).
pub(crate) const LN2_HI: f32 = 0.693_359_4;
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;

/// `x ← log10(max(x, floor))` for every element (`floor` a positive normal f32; NaN
/// and +inf stay).
pub fn log10_floor(xs: &mut [f32], floor: f32) {
    log10_floor_with(Isa::selected(), xs, floor)
}

/// [`log10_floor`] with an explicit instruction set (panics if this CPU lacks it).
pub fn log10_floor_with(isa: Isa, xs: &mut [f32], floor: f32) {
    assert!(
        isa.is_available(),
        "kernels {isa:?} are not available on this CPU"
    );
    assert!(floor.is_normal() && floor > 0.0, "floor {floor}");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa.is_available()` was asserted: AVX-512 F (and AVX2, FMA, F16C).
        Isa::Avx512Vnni => unsafe { crate::x86::log10_floor_avx512(xs, floor) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above: AVX2, FMA, F16C.
        Isa::Avx2 => unsafe { crate::x86::log10_floor_avx2(xs, floor) },
        _ => xs
            .iter_mut()
            .for_each(|x| *x = if x.is_nan() { *x } else { x.max(floor).log10() }),
    }
}
