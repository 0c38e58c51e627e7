//! omni's CPU kernels, the one crate of the workspace with `unsafe` code.
//!
//! - [`blocks`]: llama.cpp's `q8_0` / `q4_0` block layouts, quantize and dequantize
//!   (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`, `dequantize_row_*`).
//! - [`WeightMatrix`]: a linear layer's weight `[rows = out, cols = in]` (PyTorch's
//!   layout) held as f16, q8_0 or q4_0, and [`WeightMatrix::matmul`]:
//!   `y[m, rows] = x[m, cols] · Wᵀ` (decode's GEMV, and GEMMs of up to a few hundred
//!   rows: the speech decoder's frames, prompts), reading the stored blocks and
//!   dequantizing in registers, multi-threaded over output rows with rayon. For
//!   q8_0/q4_0 the activations are first quantized to 8 bits per 32-block and the
//!   dot products run on integers, as llama.cpp's `ggml_vec_dot_q8_0_q8_0` /
//!   `ggml_vec_dot_q4_0_q8_0` do; four rows of x share each weight load.
//! - [`Conv1d`] / [`ConvTranspose1d`]: direct (no im2col) f32 1-D convolutions with
//!   register tiles, multi-threaded with rayon (the HiFi-GAN vocoder's convolutions).
//! - [`attention_f32`]: unmasked multi-head attention (the Whisper encoder's): two
//!   GEMMs per block of query rows and a softmax with a vectorized `exp` (on AMX
//!   CPUs, opt-in, fused on the tiles: `amx_attention.rs`).
//! - [`activation`]: a layer's bias and GELU ([`bias_gelu`], vectorized `erf`), and
//!   SwiGLU's `silu(g)·u` ([`silu_mul`]), on output buffers in one pass.
//! - [`math`]: `log10(max(x, floor))` with a vectorized `ln` (the log-mel).
//! - [`norm`]: LayerNorm and RMSNorm over the rows of a buffer ([`layer_norm_rows`],
//!   [`rms_norm_rows`]).
//! - [`Isa`]: the instruction set, picked at run time (`is_x86_feature_detected!`):
//!   `Avx512Vnni` (AVX2 + FMA + F16C + AVX-512 F/BW/VL/VNNI), `Avx2` (AVX2 + FMA +
//!   F16C) or `Portable` (scalar, any CPU). `OMNI_KERNELS=portable|avx2` forces a
//!   lesser set (so CI runs every variant on one machine). The VNNI variant differs
//!   only in the q8_0 / q4_0 GEMV (`vpdpbusd`); everything else runs its AVX2 code.
//! - AMX (Intel Sapphire Rapids and later, [`amx_available`]): f16 and f32 GEMMs
//!   past the small-batch kernels and unmasked attention on the AMX-BF16 tiles at
//!   f32 precision, each operand split into exact bf16 parts (`amx.rs`: detection,
//!   Linux's permission, the splits and the tile kernel in `asm!`; `amx_gemm.rs`:
//!   the GEMM's packing and loops; `amx_attention.rs`: per head, scores, softmax
//!   and `P·V` per 32 query rows, opt-in: [`AMX_ATTENTION_ENV`]). `OMNI_AMX=0`
//!   turns it off; `OMNI_KERNELS=portable|avx2` does too.
//! - q8_0 / q4_0 weights are stored eight rows interleaved ([`BlockQ8_0x8`],
//!   [`BlockQ4_0x8`]) for the GEMV, which then keeps one 32-bit lane per weight row
//!   (no horizontal sums); rows are gathered back for the other paths.
//!
//! Safety policy: SIMD code lives in `x86.rs` (and `amx.rs`) as safe
//! `#[target_feature]` functions; the only `unsafe` are their unaligned loads, the
//! AMX tile instructions and system call (`asm!`, in `amx.rs` only), and the calls
//! into them (from `amx_gemm.rs` and `amx_attention.rs` too), which happen only
//! after the run-time feature check. Every `unsafe` block
//! carries a `// SAFETY:` comment (enforced by the lint below).

#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod activation;
#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod amx_attention;
#[cfg(target_arch = "x86_64")]
mod amx_gemm;
pub mod attention;
pub mod blocks;
pub mod conv1d;
pub mod math;
pub mod norm;
mod panel_attention;
mod panel_gemm;
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

use rayon::prelude::*;

pub use activation::{bias_gelu, bias_gelu_with, silu_mul, silu_mul_with};
pub use attention::{attention_f32, attention_heads, attention_heads_with, Heads};
pub use blocks::{BlockQ4_0, BlockQ4_0x8, BlockQ8_0, BlockQ8_0x8, Interleaved8, Q8Activations, QK};
pub use conv1d::{Conv1d, ConvTranspose1d};
pub use math::{log10_floor, log10_floor_with};
pub use norm::{layer_norm_rows, rms_norm_rows};

/// Instruction set of the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Scalar Rust, any CPU.
    Portable,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// [`Isa::Avx2`] plus AVX-512 F, BW, VL and VNNI (Intel Ice Lake and later
    /// Xeons, AMD Zen 4 and later).
    Avx512Vnni,
}

/// The environment variable that overrides the run-time choice: `portable`,
/// `avx2`, `avx512vnni` or `auto` (default).
pub const KERNELS_ENV: &str = "OMNI_KERNELS";

impl Isa {
    /// Name as accepted in `OMNI_KERNELS`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
        }
    }

    /// Whether this CPU can run `self`.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                Isa::Avx2.is_available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512Vnni => false,
        }
    }

    /// Every variant this CPU can run, best last.
    pub fn available() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512Vnni]
            .into_iter()
            .filter(|i| i.is_available())
            .collect()
    }

    /// The best variant this CPU can run.
    pub fn detected() -> Isa {
        *Isa::available().last().unwrap_or(&Isa::Portable)
    }

    /// The choice for a value of `OMNI_KERNELS` (`None`: unset). An unknown name
    /// or a variant this CPU lacks is an error (a forced choice must not silently
    /// fall back).
    pub fn from_env_value(v: Option<&str>) -> Result<Isa, String> {
        let isa = match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("auto") => return Ok(Isa::detected()),
            Some("portable") | Some("scalar") => Isa::Portable,
            Some("avx2") => Isa::Avx2,
            Some("avx512vnni") | Some("avx512") => Isa::Avx512Vnni,
            Some(other) => {
                return Err(format!(
                    "{KERNELS_ENV}={other}: expected auto, portable, avx2 or avx512vnni"
                ))
            }
        };
        if isa.is_available() {
            Ok(isa)
        } else {
            Err(format!(
                "{KERNELS_ENV}={}: this CPU lacks the instructions",
                isa.name()
            ))
        }
    }

    /// The variant used by [`WeightMatrix::matmul`]: `OMNI_KERNELS` read once per
    /// process, else [`Isa::detected`]. Panics on an invalid `OMNI_KERNELS`.
    pub fn selected() -> Isa {
        static SEL: OnceLock<Isa> = OnceLock::new();
        *SEL.get_or_init(|| {
            let v = std::env::var(KERNELS_ENV).ok();
            Isa::from_env_value(v.as_deref()).unwrap_or_else(|e| panic!("{e}"))
        })
    }
}

/// Whether this process can run the AMX tile kernels ([`WeightMatrix::matmul_amx`]):
/// an x86-64 CPU with AMX-TILE and AMX-BF16 (Intel Sapphire Rapids and later), an
/// OS that saves the tile state and grants it (Linux `arch_prctl`), and
/// [`AMX_ENV`] not `0`. Checked once per process.
pub fn amx_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return amx::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The environment variable that turns the AMX kernels off (`OMNI_AMX=0`).
pub const AMX_ENV: &str = "OMNI_AMX";

/// The environment variable that turns the unmasked attention on the AMX tiles on
/// (`OMNI_AMX_ATTENTION=1`; read at each call). Off by default: it is as accurate
/// as the `gemm` path (within 1e-5 of the f64 definition, tested) and faster (one
/// Whisper large-v3 block's attention 50–55 → 39–42 ms), but its different
/// rounding sends `tests/training_overfit.rs` down another trajectory whose stage 2
/// does not converge (see the note of issue 11); on until that test is robust to
/// rounding-level changes.
pub const AMX_ATTENTION_ENV: &str = "OMNI_AMX_ATTENTION";

/// Whether [`WeightMatrix::matmul_gemm`] takes the AMX path: available, and the
/// selected instruction set is AVX-512 (`OMNI_KERNELS=avx2|portable` turns it off).
fn amx_selected() -> bool {
    Isa::selected() == Isa::Avx512Vnni && amx_available()
}

/// CPU model and the SIMD flags the kernels care about, for benchmark records.
pub fn cpu_description() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    #[allow(unused_mut)]
    let mut flags: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! f {
            ($($n:tt),*) => { $( if is_x86_feature_detected!($n) { flags.push($n); } )* };
        }
        f!(
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vnni",
            "avxvnni",
            "avx512fp16",
            "avx512bf16"
        );
    }
    if amx_available() {
        flags.push("amx-bf16");
    }
    format!(
        "{model} [{}]; kernels: {}{}",
        flags.join(" "),
        Isa::selected().name(),
        if amx_selected() { " + amx" } else { "" }
    )
}

/// Storage format of a [`WeightMatrix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    F32,
    F16,
    Q8_0,
    Q4_0,
}

#[derive(Clone)]
enum Data {
    F32(Vec<f32>),
    F16(Vec<u16>),
    Q8_0(Rows8<BlockQ8_0x8>),
    Q4_0(Rows8<BlockQ4_0x8>),
}

/// q8_0 / q4_0 weights: rows `0..8·⌊n/8⌋` interleaved by eight (`X8`:
/// [`BlockQ8_0x8`] / [`BlockQ4_0x8`], group-major: group `g`'s block columns
/// `0..nb` in turn), the last `n % 8` rows row-major.
#[derive(Clone)]
struct Rows8<X8: Interleaved8> {
    groups: Vec<X8>,
    tail: Vec<X8::Block>,
    /// Blocks per row.
    nb: usize,
}

impl<X8: Interleaved8> Rows8<X8> {
    /// From row-major blocks of `rows` rows.
    fn pack(blocks: Vec<X8::Block>, rows: usize, nb: usize) -> Self {
        let full = rows / 8 * 8;
        let groups = (0..full / 8)
            .into_par_iter()
            .flat_map_iter(|g| {
                let blocks = &blocks;
                (0..nb)
                    .map(move |b| X8::pack(std::array::from_fn(|r| &blocks[(8 * g + r) * nb + b])))
            })
            .collect();
        Rows8 {
            groups,
            tail: blocks[full * nb..].to_vec(),
            nb,
        }
    }

    /// Rows stored interleaved (`8·⌊n/8⌋`).
    fn full(&self) -> usize {
        self.groups.len() / self.nb.max(1) * 8
    }

    /// Group `g`'s block columns (rows `8g..8g+8`).
    fn group(&self, g: usize) -> &[X8] {
        &self.groups[g * self.nb..(g + 1) * self.nb]
    }

    /// Row `r` (≥ [`Rows8::full`]) of the row-major tail.
    fn tail_row(&self, r: usize) -> &[X8::Block] {
        let t = r - self.full();
        &self.tail[t * self.nb..(t + 1) * self.nb]
    }

    /// Row `r`'s blocks, gathered into `buf`.
    fn row_into(&self, r: usize, buf: &mut Vec<X8::Block>) {
        buf.clear();
        if r < self.full() {
            buf.extend(self.group(r / 8).iter().map(|g| g.row(r % 8)));
        } else {
            buf.extend_from_slice(self.tail_row(r));
        }
    }

    /// Row `r`'s values in columns `k0..k0 + out.len()` (whole blocks), each block
    /// through `dequantize`.
    fn dequantize_range(
        &self,
        r: usize,
        k0: usize,
        out: &mut [f32],
        dequantize: impl Fn(&X8::Block, &mut [f32]),
    ) {
        assert!(k0.is_multiple_of(QK) && out.len().is_multiple_of(QK));
        let b0 = k0 / QK;
        for (b, o) in (b0..).zip(out.chunks_exact_mut(QK)) {
            let block = if r < self.full() {
                self.group(r / 8)[b].row(r % 8)
            } else {
                self.tail_row(r)[b]
            };
            dequantize(&block, o);
        }
    }

    fn nbytes(&self) -> usize {
        self.groups.len() * std::mem::size_of::<X8>()
            + self.tail.len() * std::mem::size_of::<X8::Block>()
    }
}

/// A linear layer's weight `[rows, cols]` (= `[out, in]`, row-major, PyTorch's layout).
#[derive(Clone)]
pub struct WeightMatrix {
    rows: usize,
    cols: usize,
    data: Data,
}

impl std::fmt::Debug for WeightMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WeightMatrix({:?}, [{}, {}])",
            self.format(),
            self.rows,
            self.cols
        )
    }
}

/// Rows of x up to which [`WeightMatrix::matmul_gemm`] multiplies f32 and f16
/// weights with omni's packed-panel GEMM (`panel_gemm`) rather than the `gemm` crate
/// (f16: on f32 tiles of the weight). `examples/gemm_probe.rs`, Intel Xeon
/// (AVX-512), 2 threads, 2026-12-01, `gemm` crate → panels, f32 / f16: m = 340,
/// 2048 → 8192: 35.5 → 29.7 ms / 29.5 (tiles: 35.9 before) → 29.3 ms; 8192 → 2048:
/// 37.5 → 33.0 / 52.3 (tiles) → 31.0 ms; m = 56, 4096 → 11008: 32.6 → 18.7 ms; m =
/// 100: 41.2 → 31.2 ms. At m = 1500 (Whisper) the `gemm` crate stays ahead: 2048 →
/// 512 8.2 vs 9.9 ms, 512 → 512 2.0 vs 2.6 ms (x's blocks of 1500 rows and the
/// strips of out no longer fit L2 beside the panels), 1280 → 5120 47.7 vs 50.7 ms.
pub const PANEL_GEMM_MAX_ROWS: usize = 512;

/// Output rows per rayon task.
const ROWS_PER_TASK: usize = 16;

/// Rows of `x` per pass of the portable small-batch path (see
/// [`WeightMatrix::small_batch`]; the x86 kernels use register blocks of
/// `BLOCK_W` weight rows × `BLOCK_X` x rows instead, over column chunks of
/// `BLOCK_K`: one 8B `gate_proj`, Intel Xeon AVX-512, 2026-12-01, m = 25: f32 39.8
/// → 19.8 ms, f16 37 → 15 ms against the former eight-rows-per-weight-row kernel).
/// q8_0/q4_0 never take it: with the interleaved rows their 8-bit-activation path
/// is 3–6× faster at every m (q4_0 m = 2 / 4 / 8: 1.1 / 3.4 / 3.4 ms against 9.4 /
/// 11 / 14 ms).
pub const SMALL_M_MAX: usize = 8;

impl WeightMatrix {
    /// Quantizes (q8_0, q4_0) or rounds (f16) a row-major f32 `[rows, cols]` matrix.
    /// q8_0/q4_0 need `cols % 32 == 0`.
    pub fn from_f32(format: Format, rows: usize, cols: usize, w: &[f32]) -> Self {
        assert_eq!(
            w.len(),
            rows * cols,
            "weight of {} values for [{rows}, {cols}]",
            w.len()
        );
        let data = match format {
            Format::F32 => Data::F32(w.to_vec()),
            Format::F16 => Data::F16(
                w.iter()
                    .map(|&v| half::f16::from_f32(v).to_bits())
                    .collect(),
            ),
            Format::Q8_0 => Data::Q8_0(Rows8::pack(blocks::quantize_row_q8_0(w), rows, cols / QK)),
            Format::Q4_0 => Data::Q4_0(Rows8::pack(blocks::quantize_row_q4_0(w), rows, cols / QK)),
        };
        WeightMatrix { rows, cols, data }
    }

    /// An f16 matrix from its bits, row-major `[rows, cols]`.
    pub fn from_f16_bits(rows: usize, cols: usize, bits: Vec<u16>) -> Self {
        assert_eq!(bits.len(), rows * cols);
        WeightMatrix {
            rows,
            cols,
            data: Data::F16(bits),
        }
    }

    /// An f32 matrix, row-major `[rows, cols]`, taking the values as they are.
    pub fn from_f32_vec(rows: usize, cols: usize, w: Vec<f32>) -> Self {
        assert_eq!(w.len(), rows * cols);
        WeightMatrix {
            rows,
            cols,
            data: Data::F32(w),
        }
    }

    /// Whether `format` can hold a matrix with `cols` columns.
    pub fn supports(format: Format, cols: usize) -> bool {
        matches!(format, Format::F32 | Format::F16) || cols.is_multiple_of(QK)
    }

    pub fn format(&self) -> Format {
        match self.data {
            Data::F32(_) => Format::F32,
            Data::F16(_) => Format::F16,
            Data::Q8_0(_) => Format::Q8_0,
            Data::Q4_0(_) => Format::Q4_0,
        }
    }

    /// `[rows, cols]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    /// Bytes of weight storage.
    pub fn nbytes(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len() * 4,
            Data::F16(v) => v.len() * 2,
            Data::Q8_0(q) => q.nbytes(),
            Data::Q4_0(q) => q.nbytes(),
        }
    }

    /// Row `r`'s q8_0 blocks (`cols / 32`), if that is the format (the rows are
    /// stored interleaved by eight: this gathers one).
    pub fn q8_0_row(&self, r: usize) -> Option<Vec<BlockQ8_0>> {
        match &self.data {
            Data::Q8_0(q) if r < self.rows => {
                let mut buf = Vec::new();
                q.row_into(r, &mut buf);
                Some(buf)
            }
            _ => None,
        }
    }

    /// Row `r`'s q4_0 blocks (`cols / 32`), if that is the format (the rows are
    /// stored interleaved by eight: this gathers one).
    pub fn q4_0_row(&self, r: usize) -> Option<Vec<BlockQ4_0>> {
        match &self.data {
            Data::Q4_0(q) if r < self.rows => {
                let mut buf = Vec::new();
                q.row_into(r, &mut buf);
                Some(buf)
            }
            _ => None,
        }
    }

    /// Dequantizes rows `r0..r1` into `out` (row-major `[r1 - r0, cols]`),
    /// multi-threaded over rows (rayon).
    pub fn dequantize_rows(&self, r0: usize, r1: usize, out: &mut [f32]) {
        assert!(r0 <= r1 && r1 <= self.rows && out.len() == (r1 - r0) * self.cols);
        let k = self.cols;
        if k == 0 {
            return;
        }
        out.par_chunks_mut(k * ROWS_PER_TASK)
            .enumerate()
            .for_each_init(
                <(Vec<BlockQ8_0>, Vec<BlockQ4_0>)>::default,
                |buf, (c, o)| {
                    let a = r0 + c * ROWS_PER_TASK;
                    let b = a + o.len() / k;
                    match &self.data {
                        Data::F32(v) => o.copy_from_slice(&v[a * k..b * k]),
                        Data::F16(v) => f16_to_f32(Isa::selected(), &v[a * k..b * k], o),
                        Data::Q8_0(q) => {
                            let buf = &mut buf.0;
                            for (r, o) in (a..b).zip(o.chunks_exact_mut(k)) {
                                q.row_into(r, buf);
                                blocks::dequantize_row_q8_0(buf, o);
                            }
                        }
                        Data::Q4_0(q) => {
                            let buf = &mut buf.1;
                            for (r, o) in (a..b).zip(o.chunks_exact_mut(k)) {
                                q.row_into(r, buf);
                                blocks::dequantize_row_q4_0(buf, o);
                            }
                        }
                    }
                },
            );
    }

    /// The whole matrix as f32, row-major `[rows, cols]`.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.rows * self.cols];
        self.dequantize_rows(0, self.rows, &mut out);
        out
    }

    /// `out[m, rows] = x[m, cols] · Wᵀ` with the [`Isa::selected`] kernels.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        self.matmul_with(Isa::selected(), x, m, out)
    }

    /// Whether `m` rows of `x` take the small-batch path: for f32/f16 weights, 2 rows
    /// or more (and `cols % 32 == 0`) run against each 32 weights loaded (converted)
    /// once into registers, up to 8 rows of x per pass over a weight row; one row is
    /// a dot product. q8_0/q4_0 always quantize `x` to 8 bits per 32-block and use
    /// integer dot products, as llama.cpp does.
    pub fn small_batch(&self, m: usize) -> bool {
        matches!(self.format(), Format::F32 | Format::F16) && m >= 2 && self.cols.is_multiple_of(QK)
    }

    /// `out[m, rows] = x[m, cols] · Wᵀ` for long inputs (prompts, Whisper's frames):
    /// the f32 product with the (dequantized) weight. Up to [`PANEL_GEMM_MAX_ROWS`]
    /// rows of x, and q8_0/q4_0 weights at any length, take omni's own packed-panel
    /// GEMM ([`WeightMatrix::matmul_panel`]: f16 converted and q8_0/q4_0 blocks
    /// dequantized while the weight is packed). Longer inputs with f32 or f16 weights
    /// take the `gemm` crate's blocked f32 GEMM (the one burn-flex's matmul calls) on
    /// the stored weight in place, f16 converted [`F16_GEMM_TILE_VALUES`] weights at a
    /// time (F16C, into a buffer that stays in cache). On CPUs with AMX, f32 and f16
    /// weights take the AMX tiles instead at any length ([`WeightMatrix::matmul_amx`],
    /// same precision). Threads: rayon's current pool.
    pub fn matmul_gemm(&self, x: &[f32], m: usize, out: &mut [f32]) {
        if self.amx_gemm() {
            return self.matmul_amx(x, m, out);
        }
        if m <= PANEL_GEMM_MAX_ROWS || !self.matmul_gemm_tiled(x, m, out, f16_gemm_tile_values()) {
            self.matmul_panel(x, m, out);
        }
    }

    /// `out[m, rows] = x[m, cols] · Wᵀ` through omni's own packed-panel GEMM
    /// (`panel_gemm`: BLIS's loop order, the weight packed per 512-column block:
    /// f16 converted, q8_0/q4_0 blocks dequantized to f32 while packing — the f32
    /// product with the dequantized weight, f32 activations). Inputs of more than
    /// [`PANEL_GEMM_MAX_ROWS`] rows are split, each part packing the weight again.
    /// Threads: rayon's current pool.
    pub fn matmul_panel(&self, x: &[f32], m: usize, out: &mut [f32]) {
        self.matmul_panel_with(Isa::selected(), x, m, out)
    }

    /// [`WeightMatrix::matmul_panel`] with an explicit instruction set (panics if
    /// this CPU lacks it).
    pub fn matmul_panel_with(&self, isa: Isa, x: &[f32], m: usize, out: &mut [f32]) {
        let (n, k) = (self.rows, self.cols);
        self.with_rows(|w| {
            if m <= PANEL_GEMM_MAX_ROWS || k == 0 || n == 0 {
                return panel_gemm::gemm_nt(isa, w, n, k, x, m, out);
            }
            let rows = m.div_ceil(m.div_ceil(PANEL_GEMM_MAX_ROWS));
            for (xc, oc) in x.chunks(rows * k).zip(out.chunks_mut(rows * n)) {
                panel_gemm::gemm_nt(isa, w, n, k, xc, xc.len() / k, oc);
            }
        })
    }

    /// `f` on the weight as the GEMMs' row source: f32 / f16 rows in place, q8_0 /
    /// q4_0 rows through [`WeightMatrix::dequantize_row_range`].
    pub(crate) fn with_rows<R>(&self, f: impl FnOnce(panel_gemm::Rows<'_>) -> R) -> R {
        let row_range =
            |r: usize, k0: usize, out: &mut [f32]| self.dequantize_row_range(r, k0, out);
        f(match &self.data {
            Data::F32(w) => panel_gemm::Rows::F32(w),
            Data::F16(w) => panel_gemm::Rows::F16(w),
            Data::Q8_0(_) | Data::Q4_0(_) => panel_gemm::Rows::Dequant(&row_range),
        })
    }

    /// Whether [`WeightMatrix::matmul_gemm`] takes the AMX tiles: where
    /// [`amx_available`] (and `OMNI_KERNELS` is not forced below AVX-512), for f32
    /// and f16 weights at any number of rows. `examples/amx_probe.rs` (Intel Xeon,
    /// 2 threads, f32 x, 2026-12-01), ms, AMX vs the AVX-512 panel GEMM: m = 340,
    /// 2048 → 8192: f16 21.7 vs 29.9, f32 29.2 vs 34.4; 8192 → 2048: f16 26.0 vs
    /// 33.6, f32 32.0 vs 35.0; the 1B prompt, weights from memory: f32 2.14 vs 2.40
    /// s, f16 1.77 vs 2.29 s. Past [`PANEL_GEMM_MAX_ROWS`] rows, AMX vs the `gemm`
    /// crate, f32 weights, m = 1500 (Whisper's shapes; since x's planes of a block
    /// of `k` are contiguous, `amx_gemm`): 512 → 512 2.27 vs 2.71, 512 → 2048 7.31
    /// vs 8.86, 2048 → 512 9.28 vs 9.71, 1280 → 1280 11.6 vs 13.7. q8_0/q4_0 keep
    /// their int8 and panel paths.
    fn amx_gemm(&self) -> bool {
        amx_selected()
            && match self.format() {
                Format::F16 | Format::F32 => true,
                Format::Q8_0 | Format::Q4_0 => false,
            }
    }

    /// `out[m, rows] = x[m, cols] · Wᵀ` on AMX tiles at f32 precision (`amx_gemm`:
    /// both operands split into bf16 parts, the part products above 2^-23 summed in
    /// f32; f16 weights and f16-valued x exactly), any number of rows in one call
    /// (each weight split and packed once). Panics unless [`amx_available`].
    /// Threads: rayon's current pool.
    pub fn matmul_amx(&self, x: &[f32], m: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        self.with_rows(|w| amx_gemm::gemm_nt(w, self.rows, self.cols, x, m, out));
        #[cfg(not(target_arch = "x86_64"))]
        panic!("AMX is x86-64 only ({x:p}, {m}, {})", out.len())
    }

    /// Row `r`'s weights in columns `k0..k0 + out.len()`, as f32 (q8_0 / q4_0:
    /// `k0` and the length whole blocks of 32).
    fn dequantize_row_range(&self, r: usize, k0: usize, out: &mut [f32]) {
        let k = self.cols;
        match &self.data {
            Data::F32(v) => out.copy_from_slice(&v[r * k + k0..r * k + k0 + out.len()]),
            Data::F16(v) => {
                f16_to_f32(Isa::selected(), &v[r * k + k0..r * k + k0 + out.len()], out)
            }
            Data::Q8_0(q) => q.dequantize_range(r, k0, out, |b, o| {
                blocks::dequantize_row_q8_0(std::slice::from_ref(b), o)
            }),
            Data::Q4_0(q) => q.dequantize_range(r, k0, out, |b, o| {
                blocks::dequantize_row_q4_0(std::slice::from_ref(b), o)
            }),
        }
    }

    /// The `gemm` crate path of [`WeightMatrix::matmul_gemm`] (whatever the length
    /// of x) with f16 tiles of `tile_values` weights (at least one row). Returns
    /// `false` (and leaves `out`) for q8_0/q4_0, which have no such path.
    pub fn matmul_gemm_tiled(
        &self,
        x: &[f32],
        m: usize,
        out: &mut [f32],
        tile_values: usize,
    ) -> bool {
        let (n, k) = (self.rows, self.cols);
        assert_eq!(x.len(), m * k, "x has {} values, expected {m}×{k}", x.len());
        assert_eq!(
            out.len(),
            m * n,
            "out has {} values, expected {m}×{n}",
            out.len()
        );
        let par = |cols: usize| {
            if m * cols * k >= 1 << 21 {
                gemm::Parallelism::Rayon(rayon::current_num_threads())
            } else {
                gemm::Parallelism::None
            }
        };
        match &self.data {
            Data::F32(w) => {
                gemm_strided(m, n, k, out, n, x, w, par(n));
                true
            }
            Data::F16(_) => {
                let tile = (tile_values / k.max(1)).clamp(1, n);
                F16_TILE.with_borrow_mut(|buf| {
                    // Kept between calls: a fresh 32 MiB buffer per call costs the
                    // kernel's zeroing of its pages (measured: ~15 % of an f16 prompt).
                    if buf.len() < tile * k {
                        buf.resize(tile * k, 0.0);
                    }
                    let mut r0 = 0;
                    while r0 < n {
                        let r1 = (r0 + tile).min(n);
                        let wt = &mut buf[..(r1 - r0) * k];
                        self.dequantize_rows(r0, r1, wt);
                        gemm_strided(m, r1 - r0, k, &mut out[r0..], n, x, wt, par(r1 - r0));
                        r0 = r1;
                    }
                });
                true
            }
            Data::Q8_0(_) | Data::Q4_0(_) => false,
        }
    }

    /// [`WeightMatrix::matmul`] with an explicit instruction set (panics if this CPU
    /// lacks it). Threads: rayon's current pool, over blocks of output rows; each
    /// block of weight rows is read once for all `m` rows of `x`.
    pub fn matmul_with(&self, isa: Isa, x: &[f32], m: usize, out: &mut [f32]) {
        let (n, k) = (self.rows, self.cols);
        assert_eq!(x.len(), m * k, "x has {} values, expected {m}×{k}", x.len());
        assert_eq!(
            out.len(),
            m * n,
            "out has {} values, expected {m}×{n}",
            out.len()
        );
        assert!(
            isa.is_available(),
            "kernels {isa:?} are not available on this CPU"
        );
        if m == 0 || n == 0 {
            return;
        }
        if self.small_batch(m) {
            return match &self.data {
                Data::F32(w) => small_batch_f32(isa, w, n, k, m, x, out),
                Data::F16(w) => small_batch_f16(isa, w, n, k, m, x, out),
                Data::Q8_0(_) | Data::Q4_0(_) => unreachable!("small batches are f32/f16 only"),
            };
        }
        match &self.data {
            #[cfg(target_arch = "x86_64")]
            Data::F32(w) if m == 1 && isa != Isa::Portable => gemv4(
                n,
                out,
                // SAFETY: `matmul_with` asserted `isa.is_available()`: AVX2, FMA and
                // F16C were detected (every non-portable set has them).
                |r| unsafe {
                    x86::dot4_f32(std::array::from_fn(|j| &w[(r + j) * k..(r + j + 1) * k]), x)
                },
                |r| dot_f32(isa, &w[r * k..(r + 1) * k], x),
            ),
            #[cfg(target_arch = "x86_64")]
            Data::F16(w) if m == 1 && isa != Isa::Portable => gemv4(
                n,
                out,
                // SAFETY: as above.
                |r| unsafe {
                    x86::dot4_f16(std::array::from_fn(|j| &w[(r + j) * k..(r + j + 1) * k]), x)
                },
                |r| dot_f16(isa, &w[r * k..(r + 1) * k], x),
            ),
            Data::F32(w) => run_rows(n, m, out, |r, i| {
                dot_f32(isa, &w[r * k..(r + 1) * k], &x[i * k..(i + 1) * k])
            }),
            Data::F16(w) => run_rows(n, m, out, |r, i| {
                dot_f16(isa, &w[r * k..(r + 1) * k], &x[i * k..(i + 1) * k])
            }),
            Data::Q8_0(w) => {
                let act = Q8Activations::quantize_with(isa, x, k);
                run_rows8(
                    n,
                    m,
                    out,
                    |r0, i| dot8_q8_0x8(isa, w.group(r0 / 8), [XRow::of(&act, i)])[0],
                    |r0, i| {
                        dot8_q8_0x8(
                            isa,
                            w.group(r0 / 8),
                            std::array::from_fn(|j| XRow::of(&act, i + j)),
                        )
                    },
                    |r, i| {
                        let (q, d) = act.row(i);
                        dot_q8_0(isa, w.tail_row(r), q, d)
                    },
                )
            }
            Data::Q4_0(w) => {
                let act = Q8Activations::quantize_with(isa, x, k);
                run_rows8(
                    n,
                    m,
                    out,
                    |r0, i| dot8_q4_0x8(isa, w.group(r0 / 8), [XRow::of(&act, i)])[0],
                    |r0, i| {
                        dot8_q4_0x8(
                            isa,
                            w.group(r0 / 8),
                            std::array::from_fn(|j| XRow::of(&act, i + j)),
                        )
                    },
                    |r, i| {
                        let (q, d) = act.row(i);
                        dot_q4_0(isa, w.tail_row(r), q, d)
                    },
                )
            }
        }
    }
}

/// Fills `out[n]` (one row of x) four weight rows at a time with `f4(r0)` (rows
/// `r0..r0 + 4`), the rows that do not fill a group of four with `f(row)`; parallel
/// over blocks of `ROWS_PER_TASK` rows. Four weight streams per thread instead of one
/// (and one x load per four rows): measured in `omni_bench` (Intel Xeon, 2026-12-01),
/// one 8B layer f16 decode 20.5–22.2 → 16.3 ms (llama.cpp: 16.1 ms), 1B f32 decode
/// 188–199 → 180 ms. An AVX-512 one-row f16 kernel (16 halves per `vcvtph2ps`)
/// changed nothing: the one-row kernel was bound by its single memory stream.
#[cfg(target_arch = "x86_64")]
fn gemv4(
    n: usize,
    out: &mut [f32],
    f4: impl Fn(usize) -> [f32; 4] + Sync,
    f: impl Fn(usize) -> f32 + Sync,
) {
    const { assert!(ROWS_PER_TASK.is_multiple_of(4)) };
    debug_assert_eq!(out.len(), n);
    out.par_chunks_mut(ROWS_PER_TASK)
        .enumerate()
        .for_each(|(c, o)| {
            let r0 = c * ROWS_PER_TASK;
            let full = o.len() / 4 * 4;
            for j in (0..full).step_by(4) {
                o[j..j + 4].copy_from_slice(&f4(r0 + j));
            }
            for (j, y) in o.iter_mut().enumerate().skip(full) {
                *y = f(r0 + j);
            }
        });
}

/// `out[i·n + j] = t[j·m + i]`: the kernels' row-block-major scratch `[n, m]` back to
/// `[m, n]`, parallel over blocks of 8 rows of `out` (each column's 8 values are
/// contiguous in `t`; the 8 rows of `out` are written front to back). The serial
/// element-by-element transpose it replaces cost q8_0 prompts ≈ 15 % of their time:
/// one cache miss per write at 2048–8192 columns.
fn transpose_scratch(t: &[f32], n: usize, m: usize, out: &mut [f32]) {
    const ROWS: usize = 8;
    debug_assert!(t.len() == n * m && out.len() == m * n);
    let block = |(b, o): (usize, &mut [f32])| {
        let i0 = b * ROWS;
        let rows = o.len() / n;
        for j in 0..n {
            for (r, &v) in t[j * m + i0..j * m + i0 + rows].iter().enumerate() {
                o[r * n + j] = v;
            }
        }
    };
    if n == 0 || m == 0 {
        return;
    }
    if m * n >= 1 << 15 {
        out.par_chunks_mut(ROWS * n).enumerate().for_each(block);
    } else {
        out.chunks_mut(ROWS * n).enumerate().for_each(block);
    }
}

/// Fills `out[m, n]` with `f(row, i)`, parallel over blocks of `ROWS_PER_TASK` rows.
fn run_rows(n: usize, m: usize, out: &mut [f32], f: impl Fn(usize, usize) -> f32 + Sync) {
    if m == 1 {
        out.par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(c, o)| {
                for (j, y) in o.iter_mut().enumerate() {
                    *y = f(c * ROWS_PER_TASK + j, 0);
                }
            });
        return;
    }
    // Row-block-major scratch [n, m]: a task owns whole weight rows and walks all
    // of x against them while they are in cache; then one transpose to [m, n].
    let mut t = vec![0.0f32; n * m];
    t.par_chunks_mut(ROWS_PER_TASK * m)
        .enumerate()
        .for_each(|(c, o)| {
            let r0 = c * ROWS_PER_TASK;
            let rows = o.len() / m;
            for i in 0..m {
                for j in 0..rows {
                    o[j * m + i] = f(r0 + j, i);
                }
            }
        });
    transpose_scratch(&t, n, m, out);
}

/// As [`run_rows`], eight weight rows at a time: `f8(r0, i)` gives rows
/// `r0..r0 + 8` against row `i` of x, `f8x4(r0, i)` the same against rows
/// `i..i + 4` of x (each weight block loaded once for four rows); rows that do not
/// fill a group of eight (the end of the matrix) take `f(row, i)`. `ROWS_PER_TASK`
/// is a multiple of 8, so the groups never straddle two tasks.
fn run_rows8(
    n: usize,
    m: usize,
    out: &mut [f32],
    f8: impl Fn(usize, usize) -> [f32; 8] + Sync,
    f8x4: impl Fn(usize, usize) -> [[f32; 8]; 4] + Sync,
    f: impl Fn(usize, usize) -> f32 + Sync,
) {
    const { assert!(ROWS_PER_TASK.is_multiple_of(8)) };
    // Row-block-major scratch [n, m] as in `run_rows` (for m = 1 it is `out` itself).
    let mut scratch = Vec::new();
    let t: &mut [f32] = if m == 1 {
        out
    } else {
        scratch.resize(n * m, 0.0f32);
        &mut scratch
    };
    t.par_chunks_mut(ROWS_PER_TASK * m)
        .enumerate()
        .for_each(|(c, o)| {
            let r0 = c * ROWS_PER_TASK;
            let rows = o.len() / m;
            let full = rows / 8 * 8;
            let mut i = 0;
            while i + 4 <= m {
                for j in (0..full).step_by(8) {
                    for (di, ys) in f8x4(r0 + j, i).into_iter().enumerate() {
                        for (q, v) in ys.into_iter().enumerate() {
                            o[(j + q) * m + i + di] = v;
                        }
                    }
                }
                i += 4;
            }
            for i in i..m {
                for j in (0..full).step_by(8) {
                    for (q, v) in f8(r0 + j, i).into_iter().enumerate() {
                        o[(j + q) * m + i] = v;
                    }
                }
            }
            for i in 0..m {
                for j in full..rows {
                    o[j * m + i] = f(r0 + j, i);
                }
            }
        });
    if m > 1 {
        transpose_scratch(&scratch, n, m, out);
    }
}

/// Fills `out[m, n]` from `g(row, outputs of that row for the m rows of x)`,
/// parallel over blocks of `ROWS_PER_TASK` weight rows.
fn run_row_blocks(n: usize, m: usize, out: &mut [f32], g: impl Fn(usize, &mut [f32]) + Sync) {
    let mut t = vec![0.0f32; n * m];
    t.par_chunks_mut(ROWS_PER_TASK * m)
        .enumerate()
        .for_each(|(c, o)| {
            for (j, oj) in o.chunks_exact_mut(m).enumerate() {
                g(c * ROWS_PER_TASK + j, oj);
            }
        });
    transpose_scratch(&t, n, m, out);
}

/// Weight values per f32 tile of the f16 GEMM path (32 MiB of f32; a larger tile
/// amortizes the GEMM's packing of x over more weight rows). Measured
/// (`examples/burn_quant_probe.rs`, `PROBE_PROJ_ONLY=1`, one 8B `gate_proj` at
/// m = 340, Intel Xeon, 2026-12-01; rows per tile → ms): 256 → 205, 512 → 191,
/// 1024 → 181, 2048 (this value) → 154, 4096 → 151, 8192 → 164, all 14336 → 183;
/// the f32 weight's GEMM: 119 ms, the `gemm` crate's own f16 GEMM: 215 ms.
/// `OMNI_F16_GEMM_TILE` overrides it (values; for measurements).
pub const F16_GEMM_TILE_VALUES: usize = 8 << 20;

thread_local! {
    /// The f16 GEMM path's f32 tile, per calling thread (at most
    /// [`F16_GEMM_TILE_VALUES`] f32 unless a caller asks for larger tiles).
    static F16_TILE: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn f16_gemm_tile_values() -> usize {
    std::env::var("OMNI_F16_GEMM_TILE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(F16_GEMM_TILE_VALUES)
}

/// Rows of x per register block of the small-batch kernels (AVX-512: 6 × 4
/// accumulators + 4 weight vectors + 1 x vector of the 32 registers; AVX2: 4).
const BLOCK_X: usize = 6;
/// Weight rows per register block (AVX-512; AVX2: 2).
const BLOCK_W: usize = 4;

/// Columns per chunk of the small-batch kernels: a block's six x rows of 512 f32
/// (12 KiB) stay in L1 while the task's weight rows pass.
const BLOCK_K: usize = 512;

/// Calls `$call` with `$arr` = the rows of `$xs` as an array of their count (1 to
/// [`BLOCK_X`]: one instantiation of the const-generic kernel each).
#[cfg(target_arch = "x86_64")]
macro_rules! by_x {
    ($xs:expr, |$arr:ident| $call:expr) => {
        by_x!(@arms $xs, |$arr| $call, [1, 2, 3, 4, 5, 6])
    };
    (@arms $xs:expr, |$arr:ident| $call:expr, [$($n:literal),*]) => {
        match $xs.len() {
            $($n => {
                let $arr: [&[f32]; $n] = std::array::from_fn(|i| $xs[i]);
                $call
            })*
            l => unreachable!("{l} rows of x in a block"),
        }
    };
}

/// f32 weights, 2..=`m` rows: register blocks ([`small_batch_blocked`]) on x86,
/// the dequantize-then-dot fallback elsewhere.
fn small_batch_f32(isa: Isa, w: &[f32], n: usize, k: usize, m: usize, x: &[f32], out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => {
            small_batch_blocked(w, n, k, m, x, out, BLOCK_W, BLOCK_X, 16, |ws, xs, acc| {
                let ws: [&[f32]; BLOCK_W] = ws.try_into().expect("BLOCK_W rows");
                // SAFETY: `matmul_with` asserted `isa.is_available()`: AVX2, FMA, F16C and
                // AVX-512 F were detected.
                by_x!(xs, |xa| unsafe { x86::block_f32_avx512(ws, xa, acc) })
            })
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => small_batch_blocked(w, n, k, m, x, out, 2, 4, 8, |ws, xs, acc| {
            let ws: [&[f32]; 2] = ws.try_into().expect("2 rows");
            // SAFETY: `matmul_with` asserted `isa.is_available()`: AVX2, FMA, F16C.
            by_x!(xs, |xa| unsafe { x86::block_f32_avx2(ws, xa, acc) })
        }),
        _ => run_row_blocks(n, m, out, |r, o| {
            let (row, _) = w[r * k..(r + 1) * k].as_chunks::<QK>();
            for (c, oc) in o.chunks_mut(SMALL_M_MAX).enumerate() {
                let x0 = c * SMALL_M_MAX * k;
                portable::rows_dequantized(
                    row.len(),
                    |b, buf| *buf = row[b],
                    &x[x0..x0 + oc.len() * k],
                    k,
                    oc,
                )
            }
        }),
    }
}

/// f16 weights, 2..=`m` rows: as [`small_batch_f32`], each weight vector converted
/// once per block.
fn small_batch_f16(isa: Isa, w: &[u16], n: usize, k: usize, m: usize, x: &[f32], out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => {
            small_batch_blocked(w, n, k, m, x, out, BLOCK_W, BLOCK_X, 16, |ws, xs, acc| {
                let ws: [&[u16]; BLOCK_W] = ws.try_into().expect("BLOCK_W rows");
                // SAFETY: as in `small_batch_f32`.
                by_x!(xs, |xa| unsafe { x86::block_f16_avx512(ws, xa, acc) })
            })
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => small_batch_blocked(w, n, k, m, x, out, 2, 4, 8, |ws, xs, acc| {
            let ws: [&[u16]; 2] = ws.try_into().expect("2 rows");
            // SAFETY: as in `small_batch_f32`.
            by_x!(xs, |xa| unsafe { x86::block_f16_avx2(ws, xa, acc) })
        }),
        _ => run_row_blocks(n, m, out, |r, o| {
            let (row, _) = w[r * k..(r + 1) * k].as_chunks::<QK>();
            for (c, oc) in o.chunks_mut(SMALL_M_MAX).enumerate() {
                let x0 = c * SMALL_M_MAX * k;
                portable::rows_dequantized(
                    row.len(),
                    |b, buf| {
                        buf.iter_mut()
                            .zip(&row[b])
                            .for_each(|(o, &h)| *o = half::f16::from_bits(h).to_f32())
                    },
                    &x[x0..x0 + oc.len() * k],
                    k,
                    oc,
                )
            }
        }),
    }
}

/// Fills `out[m, n]` block by block: `block(ws, xs, acc)` adds `wb` weight rows
/// (the matrix's last row repeated where fewer remain; those outputs are dropped)
/// times 1..=`xb` rows of x, over one chunk of [`BLOCK_K`] columns, into `acc`
/// (`xs.len()·wb` vectors of `lanes` partial sums, entry `(i·wb + j)·lanes`).
/// Parallel over tasks of `ROWS_PER_TASK` weight rows; a task walks the columns
/// chunk by chunk, each chunk of a block of x rows meeting all the task's weight
/// rows while it is in L1. The rows of x are split into equal blocks (25 → 5 × 5).
#[allow(clippy::too_many_arguments)]
fn small_batch_blocked<T: Sync>(
    w: &[T],
    n: usize,
    k: usize,
    m: usize,
    x: &[f32],
    out: &mut [f32],
    wb: usize,
    xb: usize,
    lanes: usize,
    block: impl Fn(&[&[T]], &[&[f32]], &mut [f32]) + Sync,
) {
    assert!(wb <= BLOCK_W && xb <= BLOCK_X && k.is_multiple_of(lanes));
    let xb = m.div_ceil(m.div_ceil(xb));
    let x_blocks = m.div_ceil(xb);
    let mut t = vec![0.0f32; n * m];
    t.par_chunks_mut(ROWS_PER_TASK * m)
        .enumerate()
        .for_each(|(c, o)| {
            let r0 = c * ROWS_PER_TASK;
            let rows = o.len() / m;
            let w_blocks = rows.div_ceil(wb);
            // Partial sums: [w block][x block][x row][weight row][lane].
            let per = xb * wb * lanes;
            let mut acc = vec![0.0f32; w_blocks * x_blocks * per];
            for c0 in (0..k).step_by(BLOCK_K) {
                let c1 = (c0 + BLOCK_K).min(k);
                for xi in 0..x_blocks {
                    let i0 = xi * xb;
                    let xn = xb.min(m - i0);
                    let xs: [&[f32]; BLOCK_X] = std::array::from_fn(|i| {
                        let r = i0 + i.min(xn - 1);
                        &x[r * k + c0..r * k + c1]
                    });
                    for wi in 0..w_blocks {
                        if c1 < k {
                            // The task's weights of the next chunk, into L2 a part per
                            // block, read from memory while this chunk's blocks run.
                            // Speech decoder incremental (25 rows, `omni_bench`, Intel
                            // Xeon, 2026-12-02, with/without alternated): AVX2 275–282
                            // vs 291–293 ms; AVX-512 224.9–225.4 vs 224.5–225.2.
                            let lines = ((BLOCK_K.min(k - c1)) * size_of::<T>()).div_ceil(64);
                            let calls = x_blocks * w_blocks;
                            let (call, total) = (xi * w_blocks + wi, rows * lines);
                            let (a, b) = (call * total / calls, (call + 1) * total / calls);
                            let (mut r, mut c) = (r0 + a / lines, a % lines);
                            for _ in a..b {
                                let p = w[r * k + c1..].as_ptr().cast::<u8>().wrapping_add(64 * c);
                                #[cfg(target_arch = "x86_64")]
                                crate::amx::prefetch(p);
                                #[cfg(not(target_arch = "x86_64"))]
                                let _ = p;
                                c += 1;
                                if c == lines {
                                    (r, c) = (r + 1, 0);
                                }
                            }
                        }
                        let ws: [&[T]; BLOCK_W] = std::array::from_fn(|j| {
                            let r = r0 + (wi * wb + j).min(rows - 1);
                            &w[r * k + c0..r * k + c1]
                        });
                        let a0 = (wi * x_blocks + xi) * per;
                        block(&ws[..wb], &xs[..xn], &mut acc[a0..a0 + xn * wb * lanes]);
                    }
                }
            }
            for wi in 0..w_blocks {
                for xi in 0..x_blocks {
                    let (i0, a0) = (xi * xb, (wi * x_blocks + xi) * per);
                    for i in 0..xb.min(m - i0) {
                        for j in 0..wb.min(rows - wi * wb) {
                            let v = &acc[a0 + (i * wb + j) * lanes..][..lanes];
                            o[(wi * wb + j) * m + i0 + i] = v.iter().sum();
                        }
                    }
                }
            }
        });
    transpose_scratch(&t, n, m, out);
}

/// `dst[i·dst_rs + j] = Σ_c lhs[i·k + c] · rhs[j·k + c]` for `i < m`, `j < n`: the
/// product with a row-major `rhs[n, k]`ᵀ (the `[k, n]` view of `rhs` has column
/// stride `k`), into an `[m, n]` window of `dst` with row stride `dst_rs ≥ n`.
#[allow(clippy::too_many_arguments)]
fn gemm_strided(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    rhs: &[f32],
    par: gemm::Parallelism,
) {
    gemm_f32(
        MatMut {
            data: dst,
            rows: m,
            cols: n,
            rs: dst_rs,
        },
        MatRef {
            data: lhs,
            rows: m,
            cols: k,
            rs: k,
            cs: 1,
        },
        MatRef {
            data: rhs,
            rows: k,
            cols: n,
            rs: 1,
            cs: k,
        },
        par,
    )
}

/// A strided f32 matrix: element `(i, j)` at `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

/// A row-major window of f32: element `(i, j)` at `data[i·rs + j]`, `rs ≥ cols`
/// (rows never overlap).
pub(crate) struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
}

/// `dst = a · b` (`a` `[m, k]`, `b` `[k, n]`, `dst` `[m, n]`) through `gemm::gemm`.
pub(crate) fn gemm_f32(dst: MatMut<'_>, a: MatRef<'_>, b: MatRef<'_>, par: gemm::Parallelism) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && dst.rows == m && dst.cols == n && dst.rs >= n);
    if m == 0 || n == 0 {
        return;
    }
    let last = |r: usize, c: usize, rs: usize, cs: usize| (r - 1) * rs + (c - 1) * cs;
    assert!(last(m, n, dst.rs, 1) < dst.data.len());
    if k > 0 {
        assert!(last(m, k, a.rs, a.cs) < a.data.len() && last(k, n, b.rs, b.cs) < b.data.len());
    }
    // SAFETY: every element the GEMM addresses (dst (i, j) at i·rs + j, a (i, c) at
    // i·a.rs + c·a.cs, b (c, j) at c·b.rs + j·b.cs, for i < m, j < n, c < k) is at
    // most the last index asserted above, inside its slice. Distinct (i, j) of dst
    // are distinct addresses (column stride 1, row stride ≥ n), so the GEMM's
    // threads never write the same element; `dst` is a unique borrow and the inputs
    // shared ones, so nothing aliases. `read_dst = false`: dst is only written
    // (alpha is then ignored).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            dst.rs as isize,
            false,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        )
    }
}

/// f16 bits to f32, element by element.
fn f16_to_f32(isa: Isa, src: &[u16], dst: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::selected()` returns an available set: AVX2, FMA and F16C were
        // detected (`Avx512Vnni` is only available where `Avx2` is).
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { x86::f16_to_f32_slice(src, dst) },
        _ => {
            for (o, &h) in dst.iter_mut().zip(src) {
                *o = half::f16::from_bits(h).to_f32();
            }
        }
    }
}

#[inline]
fn dot_f32(isa: Isa, w: &[f32], x: &[f32]) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot_f16`: AVX2, FMA and F16C were detected at run time.
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { x86::dot_f32(w, x) },
        _ => portable::dot_f32(w, x),
    }
}

#[inline]
fn quantize_act_block(isa: Isa, x: &[f32; QK], q: &mut [i8; QK]) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: callers assert `isa.is_available()`: AVX2, FMA and F16C were detected
        // (`Avx512Vnni` is only available where `Avx2` is).
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { x86::quantize_block_q8(x, q) },
        _ => Q8Activations::quantize_block_portable(x, q),
    }
}

#[inline]
fn dot_f16(isa: Isa, w: &[u16], x: &[f32]) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `matmul_with` asserted `isa.is_available()`, i.e. AVX2, FMA and F16C
        // were detected on this CPU, the features `x86::dot_f16` is compiled for
        // (`Avx512Vnni` is only available where `Avx2` is).
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { x86::dot_f16(w, x) },
        _ => portable::dot_f16(w, x),
    }
}

#[inline]
fn dot_q8_0(isa: Isa, w: &[BlockQ8_0], xq: &[[i8; QK]], xd: &[f32]) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot_f16`: AVX2, FMA and F16C were detected at run time.
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { x86::dot_q8_0(w, xq, xd) },
        _ => portable::dot_q8_0(w, xq, xd),
    }
}

/// One row of 8-bit activations as the interleaved kernels read it: codes, scales
/// and block sums (see [`Q8Activations`]).
#[derive(Clone, Copy)]
pub(crate) struct XRow<'a> {
    pub q: &'a [[i8; QK]],
    pub d: &'a [f32],
    pub sum: &'a [i32],
}

impl<'a> XRow<'a> {
    fn of(act: &'a Q8Activations, i: usize) -> Self {
        let (q, d) = act.row(i);
        XRow {
            q,
            d,
            sum: act.row_sums(i),
        }
    }
}

#[inline]
fn dot8_q8_0x8<const R: usize>(isa: Isa, w: &[BlockQ8_0x8], x: [XRow<'_>; R]) -> [[f32; 8]; R] {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot_f16`: AVX2, FMA and F16C were detected at run time.
        Isa::Avx2 => unsafe { x86::dot8_q8_0x8(w, x) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `matmul_with` asserted `isa.is_available()`: AVX2, FMA, F16C and
        // AVX-512 F/BW/VL/VNNI were detected at run time.
        Isa::Avx512Vnni => unsafe { x86::dot8_q8_0x8_vnni(w, x) },
        _ => std::array::from_fn(|i| {
            std::array::from_fn(|r| {
                let row: Vec<BlockQ8_0> = w.iter().map(|g| g.row(r)).collect();
                portable::dot_q8_0(&row, x[i].q, x[i].d)
            })
        }),
    }
}

#[inline]
fn dot8_q4_0x8<const R: usize>(isa: Isa, w: &[BlockQ4_0x8], x: [XRow<'_>; R]) -> [[f32; 8]; R] {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot_f16`: AVX2, FMA and F16C were detected at run time.
        Isa::Avx2 => unsafe { x86::dot8_q4_0x8(w, x) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `matmul_with` asserted `isa.is_available()`: AVX2, FMA, F16C and
        // AVX-512 F/BW/VL/VNNI were detected at run time.
        Isa::Avx512Vnni => unsafe { x86::dot8_q4_0x8_vnni(w, x) },
        _ => std::array::from_fn(|i| {
            std::array::from_fn(|r| {
                let row: Vec<BlockQ4_0> = w.iter().map(|g| g.row(r)).collect();
                portable::dot_q4_0(&row, x[i].q, x[i].d)
            })
        }),
    }
}

#[inline]
fn dot_q4_0(isa: Isa, w: &[BlockQ4_0], xq: &[[i8; QK]], xd: &[f32]) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot_f16`: AVX2, FMA and F16C were detected at run time.
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { x86::dot_q4_0(w, xq, xd) },
        _ => portable::dot_q4_0(w, xq, xd),
    }
}
