//! Rotary position embedding in the HF "rotate-half" layout, with the `llama3`
//! frequency scaling (Llama 3.1) or plain RoPE when `rope_scaling` is absent.

use burn::tensor::{Device, Tensor, TensorData};

use super::config::RopeScaling;

/// Inverse frequencies, computed in f32 as transformers 4.43 does
/// (`_compute_llama3_parameters` when `scaling` is llama3).
pub fn inv_freq(head_dim: usize, theta: f64, scaling: Option<&RopeScaling>) -> Vec<f32> {
    let base: Vec<f32> = (0..head_dim / 2)
        .map(|i| {
            let exponent = (2 * i) as f32 / head_dim as f32;
            1.0 / (theta as f32).powf(exponent)
        })
        .collect();
    let Some(s) = scaling.filter(|s| s.rope_type == "llama3") else {
        return base;
    };
    let old = s.original_max_position_embeddings as f64;
    let low_wavelen = old / s.low_freq_factor;
    let high_wavelen = old / s.high_freq_factor;
    base.into_iter()
        .map(|f| {
            let f64v = f as f64;
            let wavelen = 2.0 * std::f64::consts::PI / f64v;
            if wavelen < high_wavelen {
                f
            } else if wavelen > low_wavelen {
                (f64v / s.factor) as f32
            } else {
                let smooth =
                    (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                ((1.0 - smooth) * f64v / s.factor + smooth * f64v) as f32
            }
        })
        .collect()
}

/// cos/sin tables for a run of positions.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
    head_dim: usize,
}

impl Rope {
    pub fn new(head_dim: usize, theta: f64, scaling: Option<&RopeScaling>) -> Self {
        Rope {
            inv_freq: inv_freq(head_dim, theta, scaling),
            head_dim,
        }
    }

    /// `(cos, sin)`, each `[1, 1, n, head_dim]` for positions `start..start+n`
    /// (f32 angles as HF computes them), in `dtype`.
    pub fn tables(
        &self,
        start: usize,
        n: usize,
        dtype: burn::tensor::DType,
        device: &Device,
    ) -> (Tensor<4>, Tensor<4>) {
        let d = self.head_dim;
        let half = d / 2;
        let mut cos = vec![0f32; n * d];
        let mut sin = vec![0f32; n * d];
        for p in 0..n {
            let pos = (start + p) as f32;
            for (i, f) in self.inv_freq.iter().enumerate() {
                let a = pos * f;
                let (s, c) = (a as f64).sin_cos();
                cos[p * d + i] = c as f32;
                cos[p * d + half + i] = c as f32;
                sin[p * d + i] = s as f32;
                sin[p * d + half + i] = s as f32;
            }
        }
        let c = Tensor::<4>::from_data(TensorData::new(cos, [1, 1, n, d]), device).cast(dtype);
        let s = Tensor::<4>::from_data(TensorData::new(sin, [1, 1, n, d]), device).cast(dtype);
        (c, s)
    }
}

/// `x * cos + rotate_half(x) * sin` with `rotate_half(x) = [-x2, x1]`; `x` is `[b, h, s, d]`.
pub fn apply(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let [b, h, s, d] = x.dims();
    let half = d / 2;
    let x1 = x.clone().slice([0..b, 0..h, 0..s, 0..half]);
    let x2 = x.clone().slice([0..b, 0..h, 0..s, half..d]);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}
