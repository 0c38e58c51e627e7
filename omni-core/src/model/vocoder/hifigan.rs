//! The HiFi-GAN generator (fairseq `hifigan.py::Generator` with `ResBlock`, i.e. V1's
//! ResBlock1): `conv_pre` → per stage { leaky ReLU 0.1, `ConvTranspose1d`, mean of the
//! stage's ResBlocks } → leaky ReLU **0.01** → `conv_post` → tanh.
//!
//! On the CPU device the generator runs on host buffers with omni-kernels' direct
//! convolutions ([`super::host`]); on other devices (and with `OMNI_VOCODER_BURN=1`)
//! through burn's `conv1d` / `conv_transpose1d`.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::activation::{leaky_relu, tanh};
use burn::tensor::module::{conv1d, conv_transpose1d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Tensor, TensorData};

use super::config::VocoderConfig;
use super::host::HostGenerator;
use super::weight_norm::{bias, conv_weight};
use crate::weights::WeightStore;
use crate::Result;

/// Slope of the leaky ReLUs inside the generator (fairseq `LRELU_SLOPE`).
pub const LRELU_SLOPE: f64 = 0.1;
/// Slope of the leaky ReLU before `conv_post`: `F.leaky_relu`'s default.
pub const LRELU_SLOPE_POST: f64 = 0.01;

/// fairseq `get_padding`: `(k * d - d) / 2`.
pub fn get_padding(kernel: usize, dilation: usize) -> usize {
    (kernel * dilation - dilation) / 2
}

/// A `Conv1d` (stride 1) with its weight-norm already folded.
#[derive(Module, Debug)]
pub struct Conv1dLayer {
    pub weight: Param<Tensor<3>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub padding: usize,
    #[module(skip)]
    pub dilation: usize,
}

impl Conv1dLayer {
    /// Loads `{prefix}.weight` (or `weight_g`/`weight_v`) `[c_out, c_in, k]` and `{prefix}.bias`.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        store: &WeightStore,
        prefix: &str,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        dilation: usize,
        padding: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(Conv1dLayer {
            weight: Param::from_tensor(conv_weight(store, prefix, [c_out, c_in, kernel], device)?),
            bias: Param::from_tensor(bias(store, prefix, c_out, device)?),
            padding,
            dilation,
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        conv1d(
            x,
            self.weight.val(),
            Some(self.bias.val()),
            ConvOptions::new([1], [self.padding], [self.dilation], 1),
        )
    }
}

/// A `ConvTranspose1d` (weight `[c_in, c_out, k]`) with its weight-norm folded.
#[derive(Module, Debug)]
pub struct ConvTranspose1dLayer {
    pub weight: Param<Tensor<3>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub stride: usize,
    #[module(skip)]
    pub padding: usize,
}

impl ConvTranspose1dLayer {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        conv_transpose1d(
            x,
            self.weight.val(),
            Some(self.bias.val()),
            ConvTransposeOptions::new([self.stride], [self.padding], [0], [1], 1),
        )
    }
}

/// HiFi-GAN ResBlock1: three (dilated conv, conv) pairs with leaky ReLUs and residuals.
#[derive(Module, Debug)]
pub struct ResBlock1 {
    pub convs1: Vec<Conv1dLayer>,
    pub convs2: Vec<Conv1dLayer>,
}

impl ResBlock1 {
    fn load(
        store: &WeightStore,
        prefix: &str,
        ch: usize,
        k: usize,
        dilations: &[usize],
        device: &Device,
    ) -> Result<Self> {
        let mut convs1 = Vec::with_capacity(dilations.len());
        let mut convs2 = Vec::with_capacity(dilations.len());
        for (j, &d) in dilations.iter().enumerate() {
            convs1.push(Conv1dLayer::load(
                store,
                &format!("{prefix}.convs1.{j}"),
                ch,
                ch,
                k,
                d,
                get_padding(k, d),
                device,
            )?);
            convs2.push(Conv1dLayer::load(
                store,
                &format!("{prefix}.convs2.{j}"),
                ch,
                ch,
                k,
                1,
                get_padding(k, 1),
                device,
            )?);
        }
        Ok(ResBlock1 { convs1, convs2 })
    }

    pub fn forward(&self, mut x: Tensor<3>) -> Tensor<3> {
        for (c1, c2) in self.convs1.iter().zip(&self.convs2) {
            let xt = c1.forward(leaky_relu(x.clone(), LRELU_SLOPE));
            let xt = c2.forward(leaky_relu(xt, LRELU_SLOPE));
            x = xt + x;
        }
        x
    }
}

/// The HiFi-GAN generator: `[1, model_in_dim, frames]` → `[1, 1, frames · hop]`.
#[derive(Module, Debug)]
pub struct HifiGanGenerator {
    pub conv_pre: Conv1dLayer,
    pub ups: Vec<ConvTranspose1dLayer>,
    /// `num_kernels` blocks per stage, stage-major (fairseq's `resblocks[i * num_kernels + j]`).
    pub resblocks: Vec<ResBlock1>,
    pub conv_post: Conv1dLayer,
    #[module(skip)]
    pub num_kernels: usize,
    /// The packed host copy used on the CPU device (`None` elsewhere). Built from the
    /// weights at load: a generator whose parameters are changed afterwards must drop
    /// it (set `None`).
    #[module(skip)]
    pub host: Option<Arc<HostGenerator>>,
}

/// `OMNI_VOCODER_BURN=1`: keep burn's convolutions on the CPU device too (for benchmarks).
pub const BURN_ENV: &str = "OMNI_VOCODER_BURN";

impl HifiGanGenerator {
    /// Loads `conv_pre`, `ups.N`, `resblocks.N.convs{1,2}.M`, `conv_post`.
    pub fn load(store: &WeightStore, cfg: &VocoderConfig, device: &Device) -> Result<Self> {
        let c0 = cfg.upsample_initial_channel;
        let conv_pre = Conv1dLayer::load(store, "conv_pre", cfg.model_in_dim, c0, 7, 1, 3, device)?;
        let mut ups = Vec::with_capacity(cfg.num_upsamples());
        let mut resblocks = Vec::new();
        for (i, (&u, &k)) in cfg
            .upsample_rates
            .iter()
            .zip(&cfg.upsample_kernel_sizes)
            .enumerate()
        {
            let (cin, cout) = (c0 >> i, cfg.stage_channels(i));
            let prefix = format!("ups.{i}");
            ups.push(ConvTranspose1dLayer {
                weight: Param::from_tensor(conv_weight(store, &prefix, [cin, cout, k], device)?),
                bias: Param::from_tensor(bias(store, &prefix, cout, device)?),
                stride: u,
                padding: (k - u) / 2,
            });
            for (j, (&rk, rd)) in cfg
                .resblock_kernel_sizes
                .iter()
                .zip(&cfg.resblock_dilation_sizes)
                .enumerate()
            {
                let idx = i * cfg.resblock_kernel_sizes.len() + j;
                resblocks.push(ResBlock1::load(
                    store,
                    &format!("resblocks.{idx}"),
                    cout,
                    rk,
                    rd,
                    device,
                )?);
            }
        }
        let ch = cfg.stage_channels(cfg.num_upsamples() - 1);
        let conv_post = Conv1dLayer::load(store, "conv_post", ch, 1, 7, 1, 3, device)?;
        let mut g = HifiGanGenerator {
            conv_pre,
            ups,
            resblocks,
            conv_post,
            num_kernels: cfg.resblock_kernel_sizes.len(),
            host: None,
        };
        let burn_only = std::env::var(BURN_ENV).is_ok_and(|v| v.trim() == "1");
        if *device == Device::flex() && !burn_only {
            g.host = Some(Arc::new(HostGenerator::new(&g)));
        }
        Ok(g)
    }

    /// `[1, model_in_dim, frames]` → `[1, 1, samples]`, values in (-1, 1).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, _, t] = x.dims();
        if let (Some(host), 1) = (&self.host, b) {
            let device = x.device();
            let v = x
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 input read back");
            let y = host.forward(&v, t);
            let n = y.len();
            return Tensor::from_data(TensorData::new(y, [1, 1, n]), &device);
        }
        let mut x = self.conv_pre.forward(x);
        for (i, up) in self.ups.iter().enumerate() {
            x = up.forward(leaky_relu(x, LRELU_SLOPE));
            let blocks = &self.resblocks[i * self.num_kernels..(i + 1) * self.num_kernels];
            let mut xs: Option<Tensor<3>> = None;
            for b in blocks {
                let y = b.forward(x.clone());
                xs = Some(match xs {
                    None => y,
                    Some(s) => s + y,
                });
            }
            if let Some(s) = xs {
                x = s.div_scalar(self.num_kernels as f64);
            }
        }
        let x = self.conv_post.forward(leaky_relu(x, LRELU_SLOPE_POST));
        tanh(x)
    }
}
