//! [`Proj`]: the linear layers of the LLM and the speech decoder, whose weight is
//! either a burn tensor (bf16, training, or any dtype off the CPU) or an
//! [`omni_kernels::WeightMatrix`] on the CPU backend (f32, f16, q8_0, q4_0).
//!
//! Packed weights are kept in PyTorch's `[out, in]` layout. A call with up to
//! [`Proj::kernel_max_rows`] rows (q8_0/q4_0: 512, so decode, the speech decoder's
//! 25 frames per token and prompts of ordinary length; f32/f16: a few rows) runs
//! omni-kernels' GEMV/GEMM, which reads the blocks and multiplies in registers
//! (q8_0/q4_0 on 8-bit activations). A call with more rows runs a blocked GEMM,
//! `WeightMatrix::matmul_gemm`: omni-kernels' packed-panel GEMM (f16 converted and
//! q8_0/q4_0 dequantized while the weight is packed) up to 512 rows and for
//! q8_0/q4_0 beyond, the `gemm` crate's on the f32/f16 weight in place for longer
//! f32/f16 inputs. Everything runs on host buffers: the activations of a packed
//! layer are f32 in and out, cast back to the input dtype (f16 runs keep f16
//! activations between layers).

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{DType, Tensor, TensorData};
use omni_kernels::{Format, WeightMatrix};

/// Rows of `x` up to which an f16 packed layer uses the omni-kernels path (then the
/// packed-panel GEMM up to `omni_kernels::PANEL_GEMM_MAX_ROWS` rows, the `gemm`
/// crate beyond). `examples/gemm_probe.rs` (`PROBE_M`), one 4096 → 11008 layer,
/// Intel Xeon AVX-512, 2026-12-01, register-blocked kernels vs panel GEMM, ms: m = 4
/// 2.5 vs 6.7, m = 8 4.0 vs 7.0, m = 25 9.3 vs 9.4, m = 56 22.8 vs 15.2, m = 100
/// 41.1 vs 27.6. (Before the panel GEMM the crossover against f32 tiles into the
/// `gemm` crate was at ~100 rows.)
pub const KERNEL_MAX_ROWS_F16: usize = 32;

/// Rows of `x` up to which an f32 packed layer uses the omni-kernels path. Same
/// measurement: m = 4 4.9 vs 9.4, m = 8 6.9 vs 10.2, m = 25 11.8 vs 11.9, m = 56
/// 24.3 vs 18.7, m = 100 43.6 vs 31.2.
pub const KERNEL_MAX_ROWS_F32: usize = 32;

/// Rows of `x` up to which a q8_0/q4_0 packed layer uses the omni-kernels path
/// (8-bit activations, VNNI/AVX2 integer dot products) rather than the packed-panel
/// GEMM on dequantized weights. `examples/gemm_probe.rs`, Intel Xeon AVX-512 VNNI,
/// 2 threads, 2026-12-01, kernels vs panels, q8_0 ms: m = 25, 4096 → 11008 6.6 vs
/// 18.3; m = 340, 2048 → 8192 30.6 vs 33.1, 8192 → 2048 28.4 vs 37.6, 4096 →
/// 14336 96.0 vs 112.1, 14336 → 4096 92.4 vs 123.4; m = 1500, 1280 → 5120 59.2 vs
/// 55.4 (q4_0 alike).
pub const KERNEL_MAX_ROWS_QUANT: usize = 512;

/// An omni-kernels weight behind an `Arc` (modules are cloned by burn).
#[derive(Clone)]
pub struct Packed(pub Arc<WeightMatrix>);

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// `y = x·Wᵀ + b` over the last dimension.
#[derive(Module, Debug)]
pub struct Proj {
    /// A burn linear layer (`[in, out]` weight), when the weight is not packed.
    pub dense: Option<Linear>,
    /// Bias of a packed layer (f32).
    pub bias: Option<Param<Tensor<1>>>,
    #[module(skip)]
    pub packed: Option<Packed>,
    /// A low-rank update being trained (`train::lora`); `None` outside LoRA training.
    pub lora: Option<super::lora::Lora>,
}

impl Proj {
    /// A layer computed by burn.
    pub fn dense(linear: Linear) -> Self {
        Proj {
            dense: Some(linear),
            bias: None,
            packed: None,
            lora: None,
        }
    }

    /// A layer computed by omni-kernels (CPU backend only).
    pub fn packed(w: WeightMatrix, bias: Option<Tensor<1>>) -> Self {
        Proj {
            dense: None,
            bias: bias.map(Param::from_tensor),
            packed: Some(Packed(Arc::new(w))),
            lora: None,
        }
    }

    /// Most rows of `x` that take the omni-kernels path (0 for a dense layer).
    pub fn kernel_max_rows(&self) -> usize {
        match self.weight_matrix().map(|w| w.format()) {
            Some(f) => kernel_max_rows(f),
            None => 0,
        }
    }

    /// The packed weight, if any.
    pub fn weight_matrix(&self) -> Option<&WeightMatrix> {
        self.packed.as_ref().map(|p| p.0.as_ref())
    }

    /// `[in, out]`.
    pub fn dims(&self) -> [usize; 2] {
        match (&self.dense, &self.packed) {
            (Some(l), _) => l.weight.dims(),
            (None, Some(p)) => {
                let [o, i] = p.0.shape();
                [i, o]
            }
            (None, None) => unreachable!("Proj without weight"),
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward_with(x, None)
    }

    /// [`Proj::forward`] with the packed-weight path forced (`Some(true)`: omni-kernels
    /// GEMV/GEMM; `Some(false)`: the long-input path — `WeightMatrix::matmul_gemm`, the
    /// f32 product with the dequantized weight; `None`: by
    /// [`Proj::kernel_max_rows`]). For benchmarks and tests; dense layers ignore it.
    pub fn forward_with<const D: usize>(&self, x: Tensor<D>, kernels: Option<bool>) -> Tensor<D> {
        match (&self.dense, &self.packed) {
            (Some(l), _) => match &self.lora {
                Some(lora) => l.forward(x.clone()) + lora.delta(x),
                None => l.forward(x),
            },
            (None, Some(p)) => self.forward_packed(&p.0, x, kernels, false),
            (None, None) => unreachable!("Proj without weight"),
        }
    }

    /// `gelu(x·Wᵀ + b)` (the Whisper encoder's `fc1`, PyTorch's exact-erf GELU). A
    /// packed layer adds the bias and applies the GELU to its output buffer in one
    /// vectorized pass (`omni_kernels::bias_gelu`) before it becomes a tensor; a
    /// dense one calls burn's `gelu`.
    pub fn forward_gelu<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match (&self.dense, &self.packed) {
            (None, Some(p)) if self.lora.is_none() => self.forward_packed(&p.0, x, None, true),
            _ => burn::tensor::activation::gelu(self.forward(x)),
        }
    }

    /// `silu(gate(x)) · up(x)`, Llama's SwiGLU before `down_proj` (transformers'
    /// `LlamaMLP.forward`). When both layers are packed (no bias, no LoRA) and the
    /// rows take a host path, both products run on one host copy of x and the gate
    /// becomes `silu(g)·u` in one vectorized pass (`omni_kernels::silu_mul`); else
    /// burn's `silu` and product.
    pub fn swiglu<const D: usize>(gate: &Proj, up: &Proj, x: Tensor<D>) -> Tensor<D> {
        let dims = x.dims();
        let m: usize = dims[..D - 1].iter().product();
        let (Some(gw), Some(uw)) = (gate.host_weight(), up.host_weight()) else {
            return burn::tensor::activation::silu(gate.forward(x.clone())) * up.forward(x);
        };
        let ([n, k], in_dtype, device) = (gw.shape(), x.dtype(), x.device());
        assert!(
            uw.shape() == [n, k] && dims[D - 1] == k,
            "SwiGLU of {dims:?}"
        );
        let data = x.cast(DType::F32).into_data();
        let xv = data.as_slice::<f32>().expect("f32 activations");
        let (mut g, mut u) = (vec![0.0f32; m * n], vec![0.0f32; m * n]);
        Proj::host_matmul(gw, xv, m, m <= gate.kernel_max_rows(), &mut g);
        Proj::host_matmul(uw, xv, m, m <= up.kernel_max_rows(), &mut u);
        omni_kernels::silu_mul(&mut g, &u);
        host_output(g, dims, n, &device, in_dtype)
    }

    /// `[a(x), b(x), …]` for layers that read the same input (Llama's q/k/v
    /// projections): when every layer is packed (no bias, no LoRA), x is copied to a
    /// host buffer once for all of them (a prompt's x is 2.8 MB at the 1B shape);
    /// else each layer's own [`Proj::forward`].
    pub fn forward_shared<const D: usize, const N: usize>(
        layers: [&Proj; N],
        x: Tensor<D>,
    ) -> [Tensor<D>; N] {
        let dims = x.dims();
        let m: usize = dims[..D - 1].iter().product();
        let weights: Option<Vec<&WeightMatrix>> = layers.iter().map(|l| l.host_weight()).collect();
        let Some(weights) = weights.filter(|w| w.iter().all(|w| w.shape()[1] == dims[D - 1]))
        else {
            return layers.map(|l| l.forward(x.clone()));
        };
        let (in_dtype, device) = (x.dtype(), x.device());
        let data = x.cast(DType::F32).into_data();
        let xv = data.as_slice::<f32>().expect("f32 activations");
        std::array::from_fn(|i| {
            let (w, n) = (weights[i], weights[i].shape()[0]);
            let mut out = vec![0.0f32; m * n];
            Proj::host_matmul(w, xv, m, m <= layers[i].kernel_max_rows(), &mut out);
            host_output(out, dims, n, &device, in_dtype)
        })
    }

    /// The packed weight, when nothing else (bias, LoRA) is added to its product.
    fn host_weight(&self) -> Option<&WeightMatrix> {
        let w = self.weight_matrix()?;
        (self.bias.is_none() && self.lora.is_none() && self.dense.is_none()).then_some(w)
    }

    /// `out = x·Wᵀ` on host buffers: the omni-kernels path with `kernel_path`, else
    /// the GEMM on the stored weight (`WeightMatrix::matmul_gemm`).
    fn host_matmul(w: &WeightMatrix, xv: &[f32], m: usize, kernel_path: bool, out: &mut [f32]) {
        if kernel_path {
            w.matmul(xv, m, out);
        } else {
            w.matmul_gemm(xv, m, out);
        }
    }

    fn forward_packed<const D: usize>(
        &self,
        w: &WeightMatrix,
        x: Tensor<D>,
        kernels: Option<bool>,
        gelu: bool,
    ) -> Tensor<D> {
        let dims = x.dims();
        let in_dtype = x.dtype();
        let device = x.device();
        let [n, k] = w.shape();
        assert_eq!(
            dims[D - 1],
            k,
            "linear layer of input width {k} got {dims:?}"
        );
        let m: usize = dims[..D - 1].iter().product();
        let x = x.cast(DType::F32);
        let kernel_path = kernels.unwrap_or(m <= self.kernel_max_rows());
        let data = x.into_data();
        let xv = data.as_slice::<f32>().expect("f32 activations");
        let mut out = vec![0.0f32; m * n];
        Proj::host_matmul(w, xv, m, kernel_path, &mut out);
        self.add_bias(&mut out, n, gelu);
        host_output(out, dims, n, &device, in_dtype)
    }

    /// `out = x·Wᵀ + b` (`gelu`: `gelu(x·Wᵀ + b)`) on host buffers, `x` `[m, in]`
    /// and `out` `[m, out]` row-major f32, by the path [`Proj::forward`] takes for
    /// `m` rows: for a packed layer without LoRA (the Whisper encoder's host path).
    /// Returns `false`, writing nothing, for other layers.
    pub fn forward_host(&self, x: &[f32], m: usize, out: &mut [f32], gelu: bool) -> bool {
        let Some(w) = self.weight_matrix().filter(|_| self.lora.is_none()) else {
            return false;
        };
        Proj::host_matmul(w, x, m, m <= self.kernel_max_rows(), out);
        self.add_bias(out, w.shape()[0], gelu);
        true
    }

    /// `out += b` row by row (`gelu`: then GELU, in the same pass), for a packed layer.
    fn add_bias(&self, out: &mut [f32], n: usize, gelu: bool) {
        let bias = self
            .bias
            .as_ref()
            .map(|b| super::host::to_host_f32(b.val()));
        if gelu {
            omni_kernels::bias_gelu(out, bias.as_deref(), n);
        } else if let Some(b) = &bias {
            for row in out.chunks_exact_mut(n) {
                row.iter_mut().zip(b).for_each(|(o, &b)| *o += b);
            }
        }
    }
}

/// A layer's host output `out` (`[m, n]` f32, `m` the product of the input's leading
/// dims) as a tensor of the input's dims with the last one `n`, cast to `dtype`.
fn host_output<const D: usize>(
    out: Vec<f32>,
    dims: [usize; D],
    n: usize,
    device: &burn::tensor::Device,
    dtype: DType,
) -> Tensor<D> {
    let m = out.len() / n.max(1);
    let mut out_dims = dims;
    out_dims[D - 1] = n;
    Tensor::<2>::from_data(TensorData::new(out, [m, n]), (device, DType::F32))
        .reshape(out_dims)
        .cast(dtype)
}

/// Most rows of `x` that take the omni-kernels path, by weight format.
pub fn kernel_max_rows(f: Format) -> usize {
    match f {
        Format::F32 => KERNEL_MAX_ROWS_F32,
        Format::F16 => KERNEL_MAX_ROWS_F16,
        Format::Q8_0 | Format::Q4_0 => KERNEL_MAX_ROWS_QUANT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use burn::tensor::Device;

    use crate::test_util::rand_vec;

    /// Every value of `got` within `tol` absolute + `tol` relative of `want`'s.
    fn assert_close(got: Tensor<2>, want: Tensor<2>, tol: f32, what: &str) {
        let to_vec = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().expect("f32");
        let (got, want) = (to_vec(got), to_vec(want));
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= tol + tol * b.abs(),
                "{what} {i}: {a} vs {b}"
            );
        }
    }

    /// Both paths of a packed layer against their definitions: the kernel path is
    /// `WeightMatrix::matmul` (8-bit activations for q8_0/q4_0), the long-input path
    /// the f32 product with the dequantized weight (1e-4 of Σ|w·x|: f32 sums of 96
    /// terms). Rows of x span a tile boundary of neither path specially: m = 40.
    #[test]
    fn packed_layer_paths_match_their_definitions_and_the_row_limit_picks_by_format() {
        let dev = Device::flex();
        let (n, k, m) = (24usize, 96usize, 40usize);
        let w = rand_vec(n * k, 3);
        let x = rand_vec(m * k, 4);
        for f in [Format::F32, Format::F16, Format::Q8_0, Format::Q4_0] {
            let wm = WeightMatrix::from_f32(f, n, k, &w);
            let wd = wm.dequantize();
            let mut want_kernels = vec![0.0f32; m * n];
            wm.matmul(&x, m, &mut want_kernels);
            let p = Proj::packed(wm, None);
            let xt = Tensor::<2>::from_data(TensorData::new(x.clone(), [m, k]), &dev);
            let run = |kern: bool| -> Vec<f32> {
                p.forward_with(xt.clone(), Some(kern))
                    .into_data()
                    .try_to_vec::<f32>()
                    .expect("f32")
            };
            assert_eq!(run(true), want_kernels, "{f:?} kernel path");
            let tiles = run(false);
            for i in 0..m {
                for r in 0..n {
                    let (mut y, mut mag) = (0.0f64, 0.0f64);
                    for c in 0..k {
                        let t = wd[r * k + c] as f64 * x[i * k + c] as f64;
                        y += t;
                        mag += t.abs();
                    }
                    let got = tiles[i * n + r] as f64;
                    assert!(
                        (got - y).abs() <= 1e-4 * mag,
                        "{f:?} long-input path [{i}, {r}]: {got} vs {y}"
                    );
                }
            }
            let limit = match f {
                Format::F32 => KERNEL_MAX_ROWS_F32,
                Format::F16 => KERNEL_MAX_ROWS_F16,
                _ => KERNEL_MAX_ROWS_QUANT,
            };
            assert_eq!(p.kernel_max_rows(), limit);
        }
    }

    /// The fused bias + GELU of a packed layer (host buffer, vectorized erf) equals
    /// burn's `gelu` of the plain layer's output within 1e-6 absolute + 1e-6
    /// relative (A&S erf within 1.5e-7, f32 rounding), on both paths of every
    /// float format; a dense layer's `forward_gelu` is burn's `gelu` exactly.
    #[test]
    fn forward_gelu_matches_gelu_of_forward_with_the_bias() {
        use burn::tensor::activation::gelu;
        let dev = Device::flex();
        let (n, k, m) = (40usize, 64usize, 37usize);
        let w = rand_vec(n * k, 7);
        let x = Tensor::<2>::from_data(TensorData::new(rand_vec(m * k, 8), [m, k]), &dev)
            .mul_scalar(3.0);
        let bias = Tensor::<1>::from_data(TensorData::new(rand_vec(n, 9), [n]), &dev);
        for f in [Format::F32, Format::F16] {
            let p = Proj::packed(WeightMatrix::from_f32(f, n, k, &w), Some(bias.clone()));
            let (got, want) = (p.forward_gelu(x.clone()), gelu(p.forward(x.clone())));
            assert_close(got, want, 1e-6, &format!("{f:?}"));
        }
    }

    /// The fused SwiGLU of two packed layers equals burn's `silu(gate(x)) · up(x)`
    /// within 1e-5 absolute + 1e-5 relative (the vectorized `exp` vs flex's, f32
    /// rounding), for f32 and f16 weights, on the kernel path (4 rows) and the GEMM
    /// path (37 rows).
    #[test]
    fn swiglu_of_packed_layers_matches_silu_gate_times_up() {
        use burn::tensor::activation::silu;
        let dev = Device::flex();
        let (n, k) = (40usize, 64usize);
        for m in [4usize, 37] {
            let x = Tensor::<2>::from_data(TensorData::new(rand_vec(m * k, 8), [m, k]), &dev)
                .mul_scalar(3.0);
            for f in [Format::F32, Format::F16] {
                let g = Proj::packed(WeightMatrix::from_f32(f, n, k, &rand_vec(n * k, 1)), None);
                let u = Proj::packed(WeightMatrix::from_f32(f, n, k, &rand_vec(n * k, 2)), None);
                let got = Proj::swiglu(&g, &u, x.clone());
                let want = silu(g.forward(x.clone())) * u.forward(x.clone());
                assert_close(got, want, 1e-5, &format!("{f:?} m={m}"));
            }
        }
    }
}
