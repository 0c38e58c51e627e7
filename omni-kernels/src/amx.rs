//! Intel AMX (Advanced Matrix Extensions: Sapphire Rapids and later Xeons): the
//! `tdpbf16ps` tile instruction, `C[16×16 f32] += A[16×32 bf16] · B[32×16 bf16]`
//! with the products exact and the sums in f32 (round to nearest even; bf16
//! denormals read as zero). This module holds all of omni's AMX instructions (the
//! GEMM's packing and loops are in [`crate::amx_gemm`]):
//!
//! - [`available`]: CPUID (AMX-TILE, AMX-BF16), the OS's XSAVE support of the tile
//!   state (XCR0 bits 17, 18) and Linux's per-process permission
//!   (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, requested once);
//!   `OMNI_AMX=0` turns it off.
//! - [`split3`]: an f32 as the exact sum of three bf16 (`h + m + l`): how
//!   [`crate::amx_gemm`] computes f32 (and f16) products on bf16 units without
//!   losing precision.
//! - [`TileConfig`] and [`block_32x32`]: the register blocking (four C tiles, two A,
//!   two B: all eight tile registers) of a 32 × 32 block of `out`.
//!
//! The instructions are written with `asm!` (Rust's AMX intrinsics are unstable).
//! The tile registers are not known to the compiler, which never uses them: they
//! keep their values between the `asm!` blocks of one call of [`block_32x32`].

use std::arch::asm;
use std::sync::OnceLock;

/// Whether this process may run the AMX kernels: read once (CPUID, XCR0, the
/// Linux permission request, `OMNI_AMX`).
pub(crate) fn available() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var(crate::AMX_ENV).map_or(true, |v| v.trim() != "0") && enable())
}

/// CPUID leaf 7 EDX bits 22 (AMX-BF16) and 24 (AMX-TILE), XCR0 bits 17 and 18 (the
/// OS saves the tile state), then Linux's permission for this process.
fn enable() -> bool {
    let simd = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512bf16")
        && std::arch::is_x86_feature_detected!("xsave");
    if !simd {
        return false;
    }
    // CPUID leaf 7 exists when leaf 0 reports it (checked first).
    let max_leaf = std::arch::x86_64::__cpuid(0).eax;
    let edx7 = if max_leaf >= 7 {
        std::arch::x86_64::__cpuid_count(7, 0).edx
    } else {
        0
    };
    let cpu = max_leaf >= 7 && edx7 & (1 << 22) != 0 && edx7 & (1 << 24) != 0;
    if !cpu {
        return false;
    }
    // SAFETY: XGETBV with ECX = 0 is valid once the OS set CR4.OSXSAVE, which std's
    // detection of AVX-512 F (checked above) requires.
    let xcr0 = unsafe { std::arch::x86_64::_xgetbv(0) };
    if xcr0 & (0b11 << 17) != 0b11 << 17 {
        return false;
    }
    request_tile_permission()
}

/// Linux ≥ 5.16: `arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18)`;
/// without it the first tile instruction faults.
#[cfg(target_os = "linux")]
fn request_tile_permission() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    let ret: i64;
    // SAFETY: the arch_prctl system call with a request that only changes this
    // process's permitted XSAVE features; it reads and writes no user memory. The
    // syscall instruction clobbers rcx and r11 (declared).
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") 0x1023i64,
            in("rsi") 18i64,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret == 0
}

#[cfg(not(target_os = "linux"))]
fn request_tile_permission() -> bool {
    false
}

/// Round to nearest even to bf16 bits, and that value back as f32.
#[cfg_attr(not(test), allow(dead_code))]
#[inline(always)]
fn bf16_rne(v: f32) -> (u32, f32) {
    let b = v.to_bits();
    let h = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
    (h, f32::from_bits(h << 16))
}

/// `v = h + m + l` exactly, each a bf16 (bits), for finite `v` whose parts stay
/// normal (|v| ≥ 2^-110; smaller parts read as zero on the tiles): `h` is `v`
/// rounded to 8 significant bits, `m` the rest rounded to 8 bits (the rest has at
/// most 16: `v` has 24), `l` what remains (at most 8 bits: exact). The scalar
/// definition: the vector split ([`split_block_a`]) is tested against it, and
/// the products' error bounds in `amx_gemm` are argued from it.
#[cfg_attr(not(test), allow(dead_code))]
#[inline(always)]
pub(crate) fn split3(v: f32) -> [u32; 3] {
    if !v.is_finite() {
        // NaN stays NaN, ±inf stays ±inf in `h`, and the products become NaN (inf × 0
        // in the pairs with a zero part): non-finite in, non-finite out.
        return [
            if v.is_nan() {
                0x7fc0
            } else {
                v.to_bits() >> 16
            },
            0,
            0,
        ];
    }
    let (h, hf) = bf16_rne(v);
    let r = v - hf;
    let (m, mf) = bf16_rne(r);
    let (l, _) = bf16_rne(r - mf);
    [h, m, l]
}

/// Splits a block of 32 rows (row `r < rows` at `src[r·stride..][..kdim]`; rows
/// `rows..32` zero) into the three A planes of the tiles in place: part `p` at
/// `dst[p·32·kdim..]`, step `s` (32 columns) at `+1024·s`, row `r` at `+32·r` —
/// each value's [`split3`] parts (bf16 in element order is the pair layout
/// `tdpbf16ps` reads along `k`), written where [`block_32x32`] reads them.
/// AVX-512 BF16 `vcvtneps2bf16` rounds to nearest even, as [`split3`]; it reads
/// denormal f32 as zero, so parts below 2^-126 (of values below ~2^-110) are
/// dropped. `kdim % 32 == 0`. Returns whether any third part was nonzero (false
/// for values with at most 16 significant bits, f16 among them).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512bf16")]
pub(crate) fn split_block_a(
    src: &[f32],
    stride: usize,
    rows: usize,
    kdim: usize,
    dst: &mut [u16],
) -> bool {
    use std::arch::x86_64::*;
    assert!(kdim.is_multiple_of(32) && rows <= 32 && dst.len() >= 3 * 32 * kdim);
    assert!(rows == 0 || (rows - 1) * stride + kdim <= src.len());
    let mut third = _mm512_setzero_si512();
    let plane = 32 * kdim;
    for s in 0..kdim / 32 {
        for r in 0..32 {
            for half in 0..2 {
                let at = s * 1024 + r * 32 + half * 16;
                let parts = if r < rows {
                    // SAFETY: r < rows and s·32 + half·16 + 16 ≤ kdim: inside `src`
                    // (asserted above).
                    let v = unsafe {
                        _mm512_loadu_ps(src.as_ptr().add(r * stride + s * 32 + half * 16))
                    };
                    let p = split_v(v);
                    third = _mm512_or_si512(third, _mm512_cvtepu16_epi32(p[2]));
                    p
                } else {
                    [_mm256_setzero_si256(); 3]
                };
                for (p, part) in parts.into_iter().enumerate() {
                    // SAFETY: p·plane + at + 16 ≤ 3·32·kdim ≤ dst.len(): 32 writable bytes.
                    unsafe {
                        _mm256_storeu_si256(dst.as_mut_ptr().add(p * plane + at).cast(), part)
                    };
                }
            }
        }
    }
    _mm512_test_epi32_mask(third, _mm512_set1_epi32(0x7fff)) != 0
}

/// A block of scores (row `r < rows` at `src[r·stride..]`, keys `0..t_k`) into the
/// softmax numerators `exp(scale·(s − max_r))`, split into A planes as
/// [`split_block_a`] writes them (`kdim` columns, zero past `t_k` and in rows
/// `rows..32`), each row's sum into `sums[r]` — the softmax of
/// `attention::softmax_row` without writing the f32 numerators back (one pass
/// for the maxima, one for `exp`, the sums and the split). The same `exp`
/// (`x86::exp512`); the sums in another order.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512bf16")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn softmax_split_block_a(
    src: &[f32],
    stride: usize,
    rows: usize,
    t_k: usize,
    kdim: usize,
    scale: f32,
    dst: &mut [u16],
    sums: &mut [f32; 32],
) {
    use std::arch::x86_64::*;
    assert!(kdim.is_multiple_of(32) && t_k <= kdim && rows <= 32 && dst.len() >= 3 * 32 * kdim);
    assert!(rows == 0 || (rows - 1) * stride + kdim <= src.len());
    let mut max = [_mm512_setzero_ps(); 32];
    for (r, m) in max.iter_mut().enumerate().take(rows) {
        let row = &src[r * stride..r * stride + t_k];
        let (ch, rem) = row.as_chunks::<16>();
        let mut mv = _mm512_set1_ps(f32::NEG_INFINITY);
        for c in ch {
            // SAFETY: `c` is 16 readable f32.
            mv = _mm512_max_ps(mv, unsafe { _mm512_loadu_ps(c.as_ptr()) });
        }
        *m = _mm512_set1_ps(rem.iter().fold(_mm512_reduce_max_ps(mv), |a, &b| a.max(b)));
    }
    let vs = _mm512_set1_ps(scale);
    let mut acc = [_mm512_setzero_ps(); 32];
    let plane = 32 * kdim;
    for s in 0..kdim / 32 {
        for r in 0..32 {
            for half in 0..2 {
                let j0 = s * 32 + half * 16;
                let at = s * 1024 + r * 32 + half * 16;
                let parts = if r < rows && j0 < t_k {
                    let live: __mmask16 = if j0 + 16 <= t_k {
                        0xffff
                    } else {
                        (1u16 << (t_k - j0)) - 1
                    };
                    // SAFETY: j0 + 16 ≤ kdim: inside row r of `src` (asserted above).
                    let v = unsafe { _mm512_loadu_ps(src.as_ptr().add(r * stride + j0)) };
                    let e = _mm512_maskz_mov_ps(
                        live,
                        crate::x86::exp512(_mm512_mul_ps(_mm512_sub_ps(v, max[r]), vs)),
                    );
                    acc[r] = _mm512_add_ps(acc[r], e);
                    split_v(e)
                } else {
                    [_mm256_setzero_si256(); 3]
                };
                for (p, part) in parts.into_iter().enumerate() {
                    // SAFETY: p·plane + at + 16 ≤ 3·32·kdim ≤ dst.len(): 32 writable bytes.
                    unsafe {
                        _mm256_storeu_si256(dst.as_mut_ptr().add(p * plane + at).cast(), part)
                    };
                }
            }
        }
    }
    for (sum, a) in sums.iter_mut().zip(&acc) {
        *sum = _mm512_reduce_add_ps(*a);
    }
}

/// `v`'s three bf16 parts ([`split3`], 16 lanes): `vcvtneps2bf16` rounds to
/// nearest even (and reads denormal f32 as zero, as the tiles do).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512bf16")]
fn split_v(v: std::arch::x86_64::__m512) -> [std::arch::x86_64::__m256i; 3] {
    use std::arch::x86_64::*;
    // SAFETY: __m256bh and __m256i are both 32 bytes of plain vector data.
    let bits = |h: __m256bh| unsafe { std::mem::transmute::<__m256bh, __m256i>(h) };
    let widen = |h: __m256i| _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)));
    let h = bits(_mm512_cvtneps_pbh(v));
    let r = _mm512_sub_ps(v, widen(h));
    let m = bits(_mm512_cvtneps_pbh(r));
    let l = bits(_mm512_cvtneps_pbh(_mm512_sub_ps(r, widen(m))));
    [h, m, l]
}

/// The body of the panel packers: for each 32 columns of `k` and each half of the
/// 32 rows, `$load(j, k0)` gives row `j`'s 32 values as two f32 vectors; their
/// parts are joined into one vector of 16 bf16 pairs per row, and the 16 × 16 pairs
/// transposed into the B tiles' rows (`dst` part `p`: `[kc/2][32][2]` bf16 at
/// `p·kc·32`).
macro_rules! pack_panel_body {
    ($kc:expr, $parts:expr, $dst:expr, |$j:ident, $k0:ident| $load:expr) => {
        for $k0 in (0..$kc).step_by(32) {
            for h in 0..2 {
                let mut planes = [[_mm512_setzero_ps(); 16]; 3];
                for i in 0..16 {
                    let $j = 16 * h + i;
                    let (v0, v1) = $load;
                    let (a, b) = (split_v(v0), split_v(v1));
                    for p in 0..3 {
                        planes[p][i] = _mm512_castsi512_ps(_mm512_inserti64x4::<1>(
                            _mm512_castsi256_si512(a[p]),
                            b[p],
                        ));
                    }
                }
                for (p, r) in planes.iter_mut().enumerate().take($parts) {
                    crate::x86::transpose16(r);
                    for (kk, v) in r.iter().enumerate() {
                        let d = &mut $dst[p * $kc * 32 + ($k0 / 2 + kk) * 64 + 32 * h..][..32];
                        // SAFETY: `d` is 32 writable u16 (64 bytes).
                        unsafe { _mm512_storeu_ps(d.as_mut_ptr().cast(), *v) };
                    }
                }
            }
        }
    };
}

/// Packs 32 rows of f32 weights (row `j` at `src[j·stride..][..kc]`, `kc % 32 ==
/// 0`) into `parts` (2 or 3) bf16 part planes in the B tiles' layout
/// (`dst[p·kc·32 + kk·64 + 2j + e]` = part `p` of row `j`, column `2kk + e`).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512bf16")]
pub(crate) fn pack_panel_f32(src: &[f32], stride: usize, kc: usize, parts: usize, dst: &mut [u16]) {
    use std::arch::x86_64::*;
    assert!(kc.is_multiple_of(32) && (2..=3).contains(&parts) && dst.len() == parts * kc * 32);
    assert!(src.len() >= 31 * stride + kc);
    pack_panel_body!(kc, parts, dst, |j, k0| {
        let s = &src[j * stride + k0..][..32];
        // SAFETY: `s` is 32 readable f32.
        unsafe {
            (
                _mm512_loadu_ps(s.as_ptr()),
                _mm512_loadu_ps(s.as_ptr().add(16)),
            )
        }
    });
}

/// [`pack_panel_f32`] from f16 weights (bits), converted as they are loaded.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512bf16")]
pub(crate) fn pack_panel_f16(src: &[u16], stride: usize, kc: usize, parts: usize, dst: &mut [u16]) {
    use std::arch::x86_64::*;
    assert!(kc.is_multiple_of(32) && (2..=3).contains(&parts) && dst.len() == parts * kc * 32);
    assert!(src.len() >= 31 * stride + kc);
    pack_panel_body!(kc, parts, dst, |j, k0| {
        let s = &src[j * stride + k0..][..32];
        // SAFETY: `s` is 32 readable u16 (64 bytes).
        let v = unsafe { _mm512_loadu_si512(s.as_ptr().cast()) };
        (
            _mm512_cvtph_ps(_mm512_castsi512_si256(v)),
            _mm512_cvtph_ps(_mm512_extracti64x4_epi64::<1>(v)),
        )
    });
}

/// Asks for the cache line at `p` in L2 (`prefetcht1`; never faults, any
/// address).
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    use std::arch::x86_64::*;
    // SAFETY: a prefetch is a hint: it reads nothing architecturally and never
    // faults, whatever the address.
    unsafe { _mm_prefetch::<_MM_HINT_T1>(p.cast()) };
}

/// The tile configuration (`ldtilecfg`'s 64-byte operand, palette 1): the eight
/// tile registers all 16 rows × 64 bytes.
#[repr(C, align(64))]
pub(crate) struct TileConfig([u8; 64]);

impl TileConfig {
    /// Palette 1, tmm0..tmm7 16 rows of 64 bytes.
    pub(crate) fn new() -> Self {
        let mut c = [0u8; 64];
        c[0] = 1;
        for t in 0..8 {
            c[16 + 2 * t] = 64;
            c[48 + t] = 16;
        }
        TileConfig(c)
    }

    /// Loads the configuration on this thread; [`TileConfig::release`] ends it.
    ///
    /// # Safety
    /// [`available`] must have returned true.
    pub(crate) unsafe fn load(&self) {
        // SAFETY: AMX is enabled for this process (the contract); the operand is 64
        // valid bytes.
        unsafe {
            asm!("ldtilecfg [{0}]", in(reg) self.0.as_ptr(), options(nostack, readonly, preserves_flags))
        };
    }

    /// `tilerelease`: the thread's tile state back to its initial (unused) state.
    ///
    /// # Safety
    /// [`available`] must have returned true.
    pub(crate) unsafe fn release() {
        // SAFETY: AMX is enabled (the contract); touches no memory.
        unsafe { asm!("tilerelease", options(nostack, nomem, preserves_flags)) };
    }
}

/// Bytes of x's packed plane per step of 32 columns of `k` (32 rows × 32 bf16).
pub(crate) const A_STEP_BYTES: usize = 2048;

/// Byte stride between the rows (k-pairs) of a packed weight panel: 32 columns ×
/// one bf16 pair.
pub(crate) const PANEL_ROW_BYTES: usize = 128;

/// A 32 × 32 block of `C` (f32, row stride `ldc` bytes) plus
/// `Σ_(i,j) ∈ pairs Σ_s A_i[s] · B_j[s]` over `steps` steps of 32 columns of `k`:
///
/// - `a[i]`: plane `i` of x, step `s` at `+2048·s` bytes: 32 rows of 32 bf16
///   (64 bytes), contiguous (x is packed per 32 rows and 32 columns: a row stride of
///   a multiple of 4 KiB would put a tile's 16 rows in one L1 set);
/// - `b[j]`: plane `j` of a weight panel, `[k/2][32][2]` bf16 (pairs of `k` per
///   column, rows of [`PANEL_ROW_BYTES`]; step `s` at `+2048·s`);
/// - `load_c`: add to `C`'s values, else to zeros.
///
/// Four C tiles (rows 0–15 / 16–31 × columns 0–15 / 16–31), two A tiles and two B
/// tiles per pair and step.
///
/// # Safety
/// [`TileConfig::load`] ran on this thread (and no `release` since); the rows of
/// every `a[i]` / `b[j]` named in `pairs` are readable over `steps` steps; `C`'s 32
/// rows of 128 bytes are readable and writable and no one else's during the call.
pub(crate) unsafe fn block_32x32(
    a: [*const u8; 3],
    b: [*const u8; 3],
    steps: usize,
    pairs: &[(usize, usize)],
    c: *mut u8,
    ldc: usize,
    load_c: bool,
) {
    let c1 = c.wrapping_add(16 * ldc);
    // SAFETY: `C` is valid and exclusive (the contract); the configuration is loaded.
    unsafe {
        if load_c {
            asm!(
                "tileloadd tmm0, [{c} + {ldc}*1]",
                "tileloadd tmm1, [{c} + {ldc}*1 + 64]",
                "tileloadd tmm2, [{c1} + {ldc}*1]",
                "tileloadd tmm3, [{c1} + {ldc}*1 + 64]",
                c = in(reg) c, c1 = in(reg) c1, ldc = in(reg) ldc,
                options(nostack, readonly, preserves_flags)
            );
        } else {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem, preserves_flags)
            );
        }
    }
    for s in 0..steps {
        let mut held = usize::MAX;
        for &(i, j) in pairs {
            let a0 = a[i].wrapping_add(A_STEP_BYTES * s);
            let a1 = a0.wrapping_add(16 * 64);
            let b0 = b[j].wrapping_add(16 * PANEL_ROW_BYTES * s);
            if i == held {
                // A_i is still in tmm4/tmm5 (pairs come grouped by i).
                // SAFETY: as below.
                unsafe {
                    asm!(
                        "tileloadd tmm6, [{b0} + {ldb}*1]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tileloadd tmm7, [{b0} + {ldb}*1 + 64]",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        b0 = in(reg) b0, ldb = in(reg) PANEL_ROW_BYTES,
                        options(nostack, readonly, preserves_flags)
                    );
                }
                continue;
            }
            held = i;
            // SAFETY: rows of A_i and B_j inside the step's range, readable (the
            // contract); the products go to tmm0..3.
            unsafe {
                asm!(
                    "tileloadd tmm4, [{a0} + {lda}*1]",
                    "tileloadd tmm6, [{b0} + {ldb}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tileloadd tmm7, [{b0} + {ldb}*1 + 64]",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tileloadd tmm5, [{a1} + {lda}*1]",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a0 = in(reg) a0, a1 = in(reg) a1, lda = in(reg) 64usize,
                    b0 = in(reg) b0, ldb = in(reg) PANEL_ROW_BYTES,
                    options(nostack, readonly, preserves_flags)
                );
            }
        }
    }
    // SAFETY: as the load above.
    unsafe {
        asm!(
            "tilestored [{c} + {ldc}*1], tmm0",
            "tilestored [{c} + {ldc}*1 + 64], tmm1",
            "tilestored [{c1} + {ldc}*1], tmm2",
            "tilestored [{c1} + {ldc}*1 + 64], tmm3",
            c = in(reg) c, c1 = in(reg) c1, ldc = in(reg) ldc,
            options(nostack, preserves_flags)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block split equals [`split3`] part for part at the layout's positions
    /// (values whose parts stay normal; 20 of 32 rows, a row stride wider than the
    /// rows, 96 columns: three steps), writes zeros in the rows past `rows`, and
    /// reports a third part exactly when one is nonzero (f16 values: none).
    #[test]
    fn split_block_a_equals_split3_at_the_tiles_positions() {
        if !available() {
            eprintln!("no AMX on this CPU: split_block_a not exercised");
            return;
        }
        let (rows, kdim, stride) = (20usize, 96usize, 101usize);
        let mut s = 0x9e37_79b9u32;
        let src: Vec<f32> = (0..rows * stride)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                f32::from_bits(0x3f80_0000 | (s >> 9)) * 2f32.powi((s % 40) as i32 - 20) - 1.5
            })
            .collect();
        let mut dst = vec![0xffffu16; 3 * 32 * kdim];
        // SAFETY: `available()` implies AVX-512 F/BW/BF16 (every AMX CPU has them).
        let third = unsafe { split_block_a(&src, stride, rows, kdim, &mut dst) };
        assert!(third);
        for r in 0..32 {
            for j in 0..kdim {
                let at = |p: usize| dst[p * 32 * kdim + (j / 32) * 1024 + r * 32 + j % 32];
                let want = if r < rows {
                    split3(src[r * stride + j])
                } else {
                    [0; 3]
                };
                assert_eq!(
                    [at(0), at(1), at(2)].map(u32::from),
                    want,
                    "row {r} col {j}"
                );
            }
        }
        let f16: Vec<f32> = src
            .iter()
            .map(|&v| half::f16::from_f32(v.clamp(-6e4, 6e4)).to_f32())
            .collect();
        // SAFETY: as above.
        assert!(!unsafe { split_block_a(&f16, stride, rows, kdim, &mut dst) });
    }

    /// Every part is a bf16 and the three add back to the f32 exactly, over values
    /// from 2^-60 to 2^60 of both signs; f16 values need only two parts.
    #[test]
    fn split3_is_exact_and_f16_values_need_two_parts() {
        let mut s = 0x1234_5678u32;
        for _ in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let e = (s % 120) as i32 - 60;
            let v = f32::from_bits(0x3f80_0000 | (s >> 9))
                * 2f32.powi(e)
                * if s & 1 == 0 { 1.0 } else { -1.0 };
            let [h, m, l] = split3(v);
            let back = |b: u32| f32::from_bits(b << 16) as f64;
            assert_eq!(back(h) + back(m) + back(l), v as f64, "{v:e}");
            assert!(
                back(m).abs() <= back(h).abs() / 128.0 && back(l).abs() <= back(m).abs() / 128.0
            );
            let f = half::f16::from_f32(v / 2f32.powi(e)).to_f32();
            assert_eq!(split3(f)[2], 0, "{f}");
        }
    }
}
