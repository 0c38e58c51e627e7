//! llama.cpp's `q8_0` and `q4_0` weight blocks (`ggml-common.h`, `ggml-quants.c`),
//! bit for bit: 32 weights per block, one f16 scale `d`.
//!
//! - `q8_0`: `d = amax / 127`, `qs[j] = round(x[j] / d)` (round half away from zero,
//!   C `roundf`), mirrors `quantize_row_q8_0_ref`.
//! - `q4_0`: `d = max / -8` where `max` is the *signed* value of largest magnitude
//!   (the first one on ties), `q = min(15, (int8)(x / d + 8.5))`; byte `j` holds
//!   element `j` in its low nibble and element `j + 16` in its high nibble; mirrors
//!   `quantize_row_q4_0_ref`. Dequantized value: `(q - 8) * d`.
//!
//! In both, the reciprocal `1/d` used to quantize is taken from the f32 `d`
//! *before* it is rounded to f16, as in llama.cpp.

use half::f16;

/// Weights per block (llama.cpp `QK8_0` = `QK4_0` = 32).
pub const QK: usize = 32;

/// `block_q8_0`: f16 scale + 32 signed bytes (34 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale, f16 bits.
    pub d: u16,
    pub qs: [i8; QK],
}

/// `block_q4_0`: f16 scale + 16 bytes of nibbles (18 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct BlockQ4_0 {
    /// Scale, f16 bits.
    pub d: u16,
    /// Byte `j`: element `j` in the low nibble, element `j + 16` in the high nibble.
    pub qs: [u8; QK / 2],
}

impl BlockQ8_0 {
    /// The scale as f32.
    pub fn scale(&self) -> f32 {
        f16::from_bits(self.d).to_f32()
    }
}

impl BlockQ4_0 {
    /// The scale as f32.
    pub fn scale(&self) -> f32 {
        f16::from_bits(self.d).to_f32()
    }

    /// The 4-bit code (0..=15) of element `j` (0..32).
    pub fn code(&self, j: usize) -> u8 {
        if j < QK / 2 {
            self.qs[j] & 0x0F
        } else {
            self.qs[j - QK / 2] >> 4
        }
    }
}

/// Eight q4_0 weight rows interleaved, one block column of them (the layout the
/// decode GEMV reads: one contiguous stream per eight rows instead of eight, and
/// the eight rows' codes side by side so that one 32-bit lane per row collects its
/// dot product — no horizontal sums). Same bytes as eight [`BlockQ4_0`] (144), the
/// idea of llama.cpp's repacked `block_q4_0x8`, in a layout of omni's own:
///
/// - `d[r]`: row `r`'s scale;
/// - `qs[32·c + 4·r + j]` (chunk `c` 0..4, row `r` 0..8, `j` 0..4) = row `r`'s byte
///   `4c + j`, unchanged: its low nibble is element `4c + j`, its high nibble element
///   `16 + 4c + j`. So chunk `c`'s low nibbles are elements `4c..4c+4` of the eight
///   rows and its high nibbles elements `16+4c..16+4c+4`: a 4-byte group per row, the
///   unit of `vpmaddubsw` pairs and VNNI's `vpdpbusd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct BlockQ4_0x8 {
    /// The eight rows' scales, f16 bits.
    pub d: [u16; 8],
    pub qs: [u8; 8 * QK / 2],
}

impl BlockQ4_0x8 {
    /// Interleaves one block column of eight rows.
    pub fn pack(rows: [&BlockQ4_0; 8]) -> Self {
        let mut qs = [0u8; 8 * QK / 2];
        for c in 0..4 {
            for (r, row) in rows.iter().enumerate() {
                qs[32 * c + 4 * r..32 * c + 4 * r + 4].copy_from_slice(&row.qs[4 * c..4 * c + 4]);
            }
        }
        BlockQ4_0x8 {
            d: std::array::from_fn(|r| rows[r].d),
            qs,
        }
    }

    /// Row `r`'s block (the inverse of [`BlockQ4_0x8::pack`]).
    pub fn row(&self, r: usize) -> BlockQ4_0 {
        let mut qs = [0u8; QK / 2];
        for c in 0..4 {
            qs[4 * c..4 * c + 4].copy_from_slice(&self.qs[32 * c + 4 * r..32 * c + 4 * r + 4]);
        }
        BlockQ4_0 { d: self.d[r], qs }
    }
}

/// Eight q8_0 weight rows interleaved, one block column of them (as
/// [`BlockQ4_0x8`]; same bytes as eight [`BlockQ8_0`], 272):
///
/// - `d[r]`: row `r`'s scale;
/// - `qs[32·g + 4·r + j]` (group `g` 0..8, row `r` 0..8, `j` 0..4) = row `r`'s code
///   `4g + j` **plus 128**, as an unsigned byte (`code ^ 0x80`): VNNI's `vpdpbusd`
///   multiplies unsigned by signed bytes, so the kernels take the weights as the
///   unsigned side and subtract `128 · Σx` per block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct BlockQ8_0x8 {
    /// The eight rows' scales, f16 bits.
    pub d: [u16; 8],
    pub qs: [u8; 8 * QK],
}

impl BlockQ8_0x8 {
    /// Interleaves one block column of eight rows.
    pub fn pack(rows: [&BlockQ8_0; 8]) -> Self {
        let mut qs = [0u8; 8 * QK];
        for g in 0..8 {
            for (r, row) in rows.iter().enumerate() {
                for j in 0..4 {
                    qs[32 * g + 4 * r + j] = (row.qs[4 * g + j] as u8) ^ 0x80;
                }
            }
        }
        BlockQ8_0x8 {
            d: std::array::from_fn(|r| rows[r].d),
            qs,
        }
    }

    /// Row `r`'s block (the inverse of [`BlockQ8_0x8::pack`]).
    pub fn row(&self, r: usize) -> BlockQ8_0 {
        let mut qs = [0i8; QK];
        for g in 0..8 {
            for j in 0..4 {
                qs[4 * g + j] = (self.qs[32 * g + 4 * r + j] ^ 0x80) as i8;
            }
        }
        BlockQ8_0 { d: self.d[r], qs }
    }
}

/// A block type stored eight rows interleaved ([`BlockQ4_0x8`], [`BlockQ8_0x8`]).
pub trait Interleaved8: Copy + Send + Sync {
    /// The row-major block.
    type Block: Copy + Send + Sync;
    fn pack(rows: [&Self::Block; 8]) -> Self;
    fn row(&self, r: usize) -> Self::Block;
}

impl Interleaved8 for BlockQ4_0x8 {
    type Block = BlockQ4_0;
    fn pack(rows: [&BlockQ4_0; 8]) -> Self {
        BlockQ4_0x8::pack(rows)
    }
    fn row(&self, r: usize) -> BlockQ4_0 {
        BlockQ4_0x8::row(self, r)
    }
}

impl Interleaved8 for BlockQ8_0x8 {
    type Block = BlockQ8_0;
    fn pack(rows: [&BlockQ8_0; 8]) -> Self {
        BlockQ8_0x8::pack(rows)
    }
    fn row(&self, r: usize) -> BlockQ8_0 {
        BlockQ8_0x8::row(self, r)
    }
}

/// Mirrors llama.cpp `quantize_row_q8_0_ref`. `x.len()` must be a multiple of 32.
pub fn quantize_row_q8_0(x: &[f32]) -> Vec<BlockQ8_0> {
    assert!(
        x.len().is_multiple_of(QK),
        "q8_0 rows must be a multiple of {QK} long, got {}",
        x.len()
    );
    x.chunks_exact(QK)
        .map(|xb| {
            let amax = xb.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let mut qs = [0i8; QK];
            for (q, v) in qs.iter_mut().zip(xb) {
                // C roundf: half away from zero, as Rust's f32::round.
                *q = (v * id).round() as i8;
            }
            BlockQ8_0 {
                d: f16::from_f32(d).to_bits(),
                qs,
            }
        })
        .collect()
}

/// Mirrors llama.cpp `quantize_row_q4_0_ref`. `x.len()` must be a multiple of 32.
pub fn quantize_row_q4_0(x: &[f32]) -> Vec<BlockQ4_0> {
    assert!(
        x.len().is_multiple_of(QK),
        "q4_0 rows must be a multiple of {QK} long, got {}",
        x.len()
    );
    x.chunks_exact(QK)
        .map(|xb| {
            let (mut amax, mut max) = (0.0f32, 0.0f32);
            for &v in xb {
                // Strict `<`: the first element of largest magnitude wins, as in llama.cpp.
                if amax < v.abs() {
                    amax = v.abs();
                    max = v;
                }
            }
            let d = max / -8.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let mut qs = [0u8; QK / 2];
            for (j, q) in qs.iter_mut().enumerate() {
                let x0 = xb[j] * id;
                let x1 = xb[QK / 2 + j] * id;
                // (int8_t)(x + 8.5f) truncates toward zero; `as i8` does too (saturating).
                let xi0 = ((x0 + 8.5) as i8).min(15) as u8;
                let xi1 = ((x1 + 8.5) as i8).min(15) as u8;
                *q = xi0 | (xi1 << 4);
            }
            BlockQ4_0 {
                d: f16::from_f32(d).to_bits(),
                qs,
            }
        })
        .collect()
}

/// Mirrors llama.cpp `dequantize_row_q8_0`: `y = qs * d`.
pub fn dequantize_row_q8_0(blocks: &[BlockQ8_0], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.scale();
        for (y, &q) in o.iter_mut().zip(&b.qs) {
            *y = q as f32 * d;
        }
    }
}

/// Mirrors llama.cpp `dequantize_row_q4_0`: `y[j] = (lo - 8) * d`, `y[j + 16] = (hi - 8) * d`.
pub fn dequantize_row_q4_0(blocks: &[BlockQ4_0], out: &mut [f32]) {
    assert_eq!(out.len(), blocks.len() * QK);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.scale();
        for j in 0..QK / 2 {
            o[j] = ((b.qs[j] & 0x0F) as i32 - 8) as f32 * d;
            o[j + QK / 2] = ((b.qs[j] >> 4) as i32 - 8) as f32 * d;
        }
    }
}

/// Activations quantized to 8 bits per 32-block for the integer dot products
/// (llama.cpp quantizes `x` to `block_q8_0` for `ggml_vec_dot_q4_0_q8_0` /
/// `ggml_vec_dot_q8_0_q8_0`, with the SIMD `quantize_row_q8_0`: ties round to even,
/// unlike the weights' `_ref` quantizer). The scales are kept in f32 (llama.cpp
/// rounds them to f16), which only removes a rounding.
#[derive(Debug, Clone, Default)]
pub struct Q8Activations {
    pub qs: Vec<[i8; QK]>,
    pub d: Vec<f32>,
    /// Σ of each block's codes (the interleaved kernels' correction: they multiply
    /// unsigned weight codes — q4_0's 0..=15, q8_0's code + 128 — and subtract
    /// `8 · Σx` or `128 · Σx`).
    pub sums: Vec<i32>,
    /// Blocks per row.
    pub blocks_per_row: usize,
}

impl Q8Activations {
    /// Quantizes `m` rows of `k` values (`x.len() == m * k`, `k % 32 == 0`) with the
    /// [`crate::Isa::selected`] code.
    pub fn quantize(x: &[f32], k: usize) -> Self {
        Self::quantize_with(crate::Isa::selected(), x, k)
    }

    /// As llama.cpp's `quantize_row_q8_0` (the SIMD variants): `d = amax / 127`,
    /// codes `round(x · 127 / amax)`, rounding half to even. Every instruction set
    /// gives the same codes and scales.
    pub fn quantize_with(isa: crate::Isa, x: &[f32], k: usize) -> Self {
        assert!(k.is_multiple_of(QK) && x.len().is_multiple_of(k.max(1)));
        assert!(isa.is_available());
        let nb = x.len() / QK;
        let mut qs = vec![[0i8; QK]; nb];
        let mut d = vec![0.0f32; nb];
        for ((xb, q), s) in x.chunks_exact(QK).zip(qs.iter_mut()).zip(d.iter_mut()) {
            let xb: &[f32; QK] = xb.try_into().expect("32 values");
            *s = crate::quantize_act_block(isa, xb, q);
        }
        let sums = qs
            .iter()
            .map(|q| q.iter().map(|&v| v as i32).sum())
            .collect();
        Q8Activations {
            qs,
            d,
            sums,
            blocks_per_row: k / QK,
        }
    }

    /// The portable code of [`Q8Activations::quantize_with`], one block.
    pub(crate) fn quantize_block_portable(xb: &[f32; QK], q: &mut [i8; QK]) -> f32 {
        let amax = xb.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        for (q, v) in q.iter_mut().zip(xb) {
            *q = (v * id).round_ties_even() as i8;
        }
        amax / 127.0
    }

    /// Codes and scales of row `i`.
    pub fn row(&self, i: usize) -> (&[[i8; QK]], &[f32]) {
        let r = i * self.blocks_per_row..(i + 1) * self.blocks_per_row;
        (&self.qs[r.clone()], &self.d[r])
    }

    /// The block sums of row `i`.
    pub fn row_sums(&self, i: usize) -> &[i32] {
        &self.sums[i * self.blocks_per_row..(i + 1) * self.blocks_per_row]
    }

    /// The f32 values these codes stand for (row-major), for reference checks.
    pub fn dequantize(&self) -> Vec<f32> {
        self.qs
            .iter()
            .zip(&self.d)
            .flat_map(|(q, &d)| q.iter().map(move |&v| v as f32 * d))
            .collect()
    }
}
