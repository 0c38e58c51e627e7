//! The HiFi-GAN generator on host f32 buffers, for the CPU device: the same network as
//! [`HifiGanGenerator::forward`](super::hifigan::HifiGanGenerator::forward) (fairseq
//! `hifigan.py::Generator.forward` with `ResBlock.forward`), with omni-kernels' direct
//! convolutions instead of burn-flex's im2col + GEMM. The leaky ReLUs are fused into
//! the convolutions' input copies and the ResBlock residuals into their stores.
//!
//! Built from the generator's loaded weights (a second, packed copy of them).

use burn::module::Param;
use burn::tensor::Tensor;
use omni_kernels::{Conv1d, ConvTranspose1d};
use rayon::prelude::*;

use super::hifigan::{
    Conv1dLayer, ConvTranspose1dLayer, HifiGanGenerator, LRELU_SLOPE, LRELU_SLOPE_POST,
};

fn host<const D: usize>(p: &Param<Tensor<D>>) -> (Vec<f32>, [usize; D]) {
    let t = p.val();
    let dims = t.dims();
    let v = t
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 weights read back");
    (v, dims)
}

fn conv(l: &Conv1dLayer) -> Conv1d {
    let (w, [c_out, c_in, k]) = host(&l.weight);
    let (b, _) = host(&l.bias);
    Conv1d::new(&w, &b, c_out, c_in, k, l.dilation, l.padding)
}

fn conv_t(l: &ConvTranspose1dLayer) -> ConvTranspose1d {
    let (w, [c_in, c_out, k]) = host(&l.weight);
    let (b, _) = host(&l.bias);
    ConvTranspose1d::new(&w, &b, c_in, c_out, k, l.stride, l.padding)
}

/// One ResBlock1: `(convs1[j], convs2[j])` pairs.
#[derive(Debug, Clone)]
struct HostResBlock {
    pairs: Vec<(Conv1d, Conv1d)>,
}

/// The generator's convolutions packed for omni-kernels.
#[derive(Debug, Clone)]
pub struct HostGenerator {
    conv_pre: Conv1d,
    ups: Vec<ConvTranspose1d>,
    /// Stage-major, `num_kernels` per stage.
    resblocks: Vec<HostResBlock>,
    conv_post: Conv1d,
    num_kernels: usize,
}

impl HostGenerator {
    /// Packs the weights of `g` (read back from its device).
    pub fn new(g: &HifiGanGenerator) -> Self {
        HostGenerator {
            conv_pre: conv(&g.conv_pre),
            ups: g.ups.iter().map(conv_t).collect(),
            resblocks: g
                .resblocks
                .iter()
                .map(|b| HostResBlock {
                    pairs: b
                        .convs1
                        .iter()
                        .zip(&b.convs2)
                        .map(|(c1, c2)| (conv(c1), conv(c2)))
                        .collect(),
                })
                .collect(),
            conv_post: conv(&g.conv_post),
            num_kernels: g.num_kernels,
        }
    }

    /// `x` `[model_in_dim, frames]` → `(samples, n_samples)`, as
    /// [`HifiGanGenerator::forward`] on a batch of one.
    pub fn forward(&self, x: &[f32], frames: usize) -> Vec<f32> {
        let slope = LRELU_SLOPE as f32;
        let mut t = frames;
        let mut x = self.conv_pre.forward(x, t, None, None);
        for (i, up) in self.ups.iter().enumerate() {
            // x = ups[i](leaky_relu(x, 0.1))
            x = up.forward(&x, t, Some(slope));
            t = up.out_len(t);
            // xs = Σ_j resblocks[i * num_kernels + j](x); x = xs / num_kernels
            let mut xs: Option<Vec<f32>> = None;
            for b in &self.resblocks[i * self.num_kernels..(i + 1) * self.num_kernels] {
                // ResBlock1.forward: xt = c2(lrelu(c1(lrelu(x)))); x = xt + x (the first
                // pair reads the stage's x in place).
                let mut y: Option<Vec<f32>> = None;
                for (c1, c2) in &b.pairs {
                    let cur = y.as_deref().unwrap_or(&x);
                    let h = c1.forward(cur, t, Some(slope), None);
                    y = Some(c2.forward(&h, t, Some(slope), Some(cur)));
                }
                let y = y.unwrap_or_else(|| x.clone());
                match xs.as_mut() {
                    None => xs = Some(y),
                    Some(s) => s
                        .par_chunks_mut(1 << 14)
                        .zip(y.par_chunks(1 << 14))
                        .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b)),
                }
            }
            if let Some(mut s) = xs {
                let n = self.num_kernels as f32;
                s.par_chunks_mut(1 << 14)
                    .for_each(|c| c.iter_mut().for_each(|v| *v /= n));
                x = s;
            }
        }
        // conv_post(leaky_relu(x, 0.01)), tanh
        let mut y = self
            .conv_post
            .forward(&x, t, Some(LRELU_SLOPE_POST as f32), None);
        y.iter_mut().for_each(|v| *v = v.tanh());
        y
    }
}

#[cfg(test)]
mod tests {
    //! The direct convolutions against burn's `conv1d` / `conv_transpose1d` on the CPU
    //! device. Tolerance: max |ours − burn| ≤ 1e-5 · max(1, max |burn|): both sum the
    //! same ≤ c_in·k ≤ 352 products in f32, in different orders (rounding ~n·2⁻²⁴ ≈ 2e-5
    //! of the sum of |terms| at worst, far less in practice).

    use burn::tensor::module::{conv1d, conv_transpose1d};
    use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
    use burn::tensor::{Device, Tensor, TensorData};
    use omni_kernels::{Conv1d, ConvTranspose1d, Isa};

    use crate::test_util::rand_vec;

    fn t3(v: &[f32], s: [usize; 3]) -> Tensor<3> {
        Tensor::from_data(TensorData::new(v.to_vec(), s), &Device::flex())
    }

    fn check(ours: &[f32], burn: Tensor<3>, what: &str) {
        let b = burn.into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(ours.len(), b.len(), "{what}: length");
        let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
        let err = ours
            .iter()
            .zip(&b)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= 1e-5 * scale,
            "{what}: max err {err:e} (scale {scale})"
        );
    }

    fn leaky(v: &[f32], a: f32) -> Vec<f32> {
        v.iter()
            .map(|&x| if x >= 0.0 { x } else { a * x })
            .collect()
    }

    #[test]
    fn direct_conv1d_matches_burn() {
        // (c_in, c_out, k, dilation, t): HiFi-GAN's kernels/dilations, odd lengths,
        // channel counts not a multiple of the 4-channel tile, conv_post's c_out = 1.
        let cases = [
            (16, 16, 3, 1, 101),
            (16, 16, 7, 3, 257),
            (32, 20, 11, 5, 1001),
            (8, 1, 7, 1, 333),
            (5, 7, 3, 3, 29),
            (64, 64, 11, 1, 400),
            (3, 6, 11, 5, 13),
        ];
        for (n, &(c_in, c_out, k, d, t)) in cases.iter().enumerate() {
            let pad = (k * d - d) / 2;
            let x = rand_vec(c_in * t, 1 + n as u64);
            let w = rand_vec(c_out * c_in * k, 100 + n as u64);
            let b = rand_vec(c_out, 200 + n as u64);
            let r = rand_vec(c_out * t, 300 + n as u64);
            let expect = conv1d(
                t3(&leaky(&x, 0.1), [1, c_in, t]),
                t3(&w, [c_out, c_in, k]),
                Some(Tensor::from_data(
                    TensorData::new(b.clone(), [c_out]),
                    &Device::flex(),
                )),
                ConvOptions::new([1], [pad], [d], 1),
            ) + t3(&r, [1, c_out, t]);
            let conv = Conv1d::new(&w, &b, c_out, c_in, k, d, pad);
            assert_eq!(conv.out_len(t), t);
            for isa in Isa::available() {
                let ours = conv.forward_with(isa, &x, t, Some(0.1), Some(&r));
                check(&ours, expect.clone(), &format!("conv1d case {n} {isa:?}"));
            }
        }
    }

    #[test]
    fn direct_conv_transpose1d_matches_burn() {
        // (c_in, c_out, k, stride, t): the upsampling stages (k, u) = (11, 5), (8, 4),
        // (4, 2) with fairseq's padding (k − u) / 2, odd lengths, a length of 1.
        let cases = [
            (16, 8, 11, 5, 7),
            (12, 6, 8, 4, 33),
            (8, 4, 4, 2, 101),
            (20, 9, 4, 2, 1),
            (6, 5, 11, 5, 50),
            (64, 32, 8, 4, 81),
        ];
        for (n, &(c_in, c_out, k, s, t)) in cases.iter().enumerate() {
            let pad = (k - s) / 2;
            let x = rand_vec(c_in * t, 11 + n as u64);
            let w = rand_vec(c_in * c_out * k, 110 + n as u64);
            let b = rand_vec(c_out, 210 + n as u64);
            let expect = conv_transpose1d(
                t3(&leaky(&x, 0.1), [1, c_in, t]),
                t3(&w, [c_in, c_out, k]),
                Some(Tensor::from_data(
                    TensorData::new(b.clone(), [c_out]),
                    &Device::flex(),
                )),
                ConvTransposeOptions::new([s], [pad], [0], [1], 1),
            );
            let conv = ConvTranspose1d::new(&w, &b, c_in, c_out, k, s, pad);
            assert_eq!(conv.out_len(t), expect.dims()[2], "case {n} length");
            for isa in Isa::available() {
                let ours = conv.forward_with(isa, &x, t, Some(0.1));
                check(
                    &ours,
                    expect.clone(),
                    &format!("conv_transpose1d case {n} {isa:?}"),
                );
            }
        }
    }
}
