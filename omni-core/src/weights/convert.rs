//! Byte-level dtype conversion of checkpoint tensors into burn `TensorData`.

use burn::tensor::{bf16, f16, DType, TensorData};

use super::store::StoredDType;

/// The dtype the model runs in. F32 works on every backend; F16 on the CPU
/// backend and on wgpu adapters with `SHADER_F16` (lavapipe has it); BF16 on the CPU
/// backend (10-20x slower there, so cast) but not on wgpu. Loading a weight checks
/// `device.supports_dtype` and refuses a dtype the device cannot compute in.
///
/// `Q8_0` / `Q4_0` are weight formats (llama.cpp's blocks, quantized at load from
/// the f16/bf16/f32 checkpoint): they apply to the Linear weights of the LLM
/// (q/k/v/o, gate/up/down, `lm_head`) and of the speech decoder (`input_proj`, its
/// layers' projections, `output_proj`). Everything else (embeddings, norms, biases,
/// the adaptor, the vocoder) and all activations run in f32, except the Whisper
/// encoder's weights, which stay f16 on the CPU (half the memory; f32 elsewhere).
/// On a non-CPU device (wgpu) the quantized weights are dequantized at load to f32:
/// the same numbers, f32 memory and speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunDType {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
}

impl RunDType {
    /// The burn dtype of activations and of the weights that are not quantized.
    pub fn burn(self) -> DType {
        self.float().burn_float()
    }

    fn burn_float(self) -> DType {
        match self {
            RunDType::F16 => DType::F16,
            RunDType::BF16 => DType::BF16,
            _ => DType::F32,
        }
    }

    /// The float run dtype: itself, or F32 for the quantized formats.
    pub fn float(self) -> RunDType {
        match self {
            RunDType::Q8_0 | RunDType::Q4_0 => RunDType::F32,
            d => d,
        }
    }

    /// The omni-kernels weight format of a quantized run dtype.
    pub fn quantized(self) -> Option<omni_kernels::Format> {
        match self {
            RunDType::Q8_0 => Some(omni_kernels::Format::Q8_0),
            RunDType::Q4_0 => Some(omni_kernels::Format::Q4_0),
            _ => None,
        }
    }

    /// Canonical name (`f32`, `f16`, `bf16`, `q8_0`, `q4_0`).
    pub fn name(self) -> &'static str {
        match self {
            RunDType::F32 => "f32",
            RunDType::F16 => "f16",
            RunDType::BF16 => "bf16",
            RunDType::Q8_0 => "q8_0",
            RunDType::Q4_0 => "q4_0",
        }
    }

    /// Parses `f32`, `f16`, `bf16`, `q8_0`, `q4_0` (case-insensitive; `q8`, `q4` too).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" | "fp32" => Some(RunDType::F32),
            "f16" | "float16" | "fp16" | "half" => Some(RunDType::F16),
            "bf16" | "bfloat16" => Some(RunDType::BF16),
            "q8_0" | "q8" => Some(RunDType::Q8_0),
            "q4_0" | "q4" => Some(RunDType::Q4_0),
            _ => None,
        }
    }
}

fn le_u16(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]))
}

/// Decodes little-endian stored bytes to f32.
pub(crate) fn to_f32(bytes: &[u8], dtype: StoredDType) -> Vec<f32> {
    match dtype {
        StoredDType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        StoredDType::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        StoredDType::F16 => le_u16(bytes).map(|u| f16::from_bits(u).to_f32()).collect(),
        StoredDType::BF16 => le_u16(bytes).map(|u| bf16::from_bits(u).to_f32()).collect(),
        StoredDType::Unsupported => Vec::new(),
    }
}

/// Transposes a row-major `[rows, cols]` matrix (cache-blocked).
pub(crate) fn transpose<T: Copy + Default>(src: &[T], rows: usize, cols: usize) -> Vec<T> {
    const B: usize = 32;
    let mut out = vec![T::default(); src.len()];
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    out[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
    out
}

/// Builds `TensorData` of the run dtype from stored bytes, converting once on
/// the host. With `transpose_2d`, a `[rows, cols]` matrix is stored as
/// `[cols, rows]` (PyTorch's `[out, in]` linear weights become the `[in, out]`
/// contiguous layout burn's matmul reads fastest: a strided weight made
/// single-token decode 13x slower on the CPU backend).
pub(crate) fn to_data(
    bytes: &[u8],
    dtype: StoredDType,
    shape: &[usize],
    run: RunDType,
    transpose_2d: bool,
) -> TensorData {
    let run = run.float();
    let (shape, t) = match (transpose_2d, shape) {
        (true, [r, c]) => (vec![*c, *r], Some((*r, *c))),
        _ => (shape.to_vec(), None),
    };
    fn finish<T: Copy + Default + burn::tensor::Element>(
        v: Vec<T>,
        t: Option<(usize, usize)>,
        shape: Vec<usize>,
    ) -> TensorData {
        let v = match t {
            Some((r, c)) => transpose(&v, r, c),
            None => v,
        };
        TensorData::new(v, shape)
    }
    match (dtype, run) {
        (StoredDType::F16, RunDType::F16) => {
            finish(le_u16(bytes).map(f16::from_bits).collect(), t, shape)
        }
        (StoredDType::BF16, RunDType::BF16) => {
            finish(le_u16(bytes).map(bf16::from_bits).collect(), t, shape)
        }
        (_, RunDType::F32) => finish(to_f32(bytes, dtype), t, shape),
        (_, RunDType::F16) => finish(
            to_f32(bytes, dtype)
                .into_iter()
                .map(f16::from_f32)
                .collect(),
            t,
            shape,
        ),
        (_, RunDType::BF16) => finish(
            to_f32(bytes, dtype)
                .into_iter()
                .map(bf16::from_f32)
                .collect(),
            t,
            shape,
        ),
        (_, RunDType::Q8_0 | RunDType::Q4_0) => unreachable!("run.float() is a float dtype"),
    }
}
