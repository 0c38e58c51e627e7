//! The unit duration predictor (fairseq `fastspeech2.py::VariancePredictor`) and the
//! rounding `CodeGenerator` applies to its output.
//!
//! `conv1.0` (k3, pad 1) + ReLU → `ln1` → `conv2.0` (k3, pad 1) + ReLU → `ln2` →
//! `proj` (Linear → 1) gives a log-duration per unit; the duration in frames is
//! `max(1, round_half_even(exp(d) - 1))` (`torch.round` rounds half to even).
//! Dropout is off at inference.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use super::config::DurPredictorParams;
use crate::model::nn::norm::LayerNorm;
use crate::weights::{RunDType, WeightStore};
use crate::{Error, Result};

/// Longest duration accepted for one unit (frames; 20 s at 320 samples / 16 kHz).
/// Anything above means broken weights, and would only exhaust memory.
pub const MAX_UNIT_FRAMES: usize = 1000;

/// fairseq's `VariancePredictor` used as a duration predictor.
#[derive(Module, Debug)]
pub struct DurationPredictor {
    pub conv1_weight: Param<Tensor<3>>,
    pub conv1_bias: Param<Tensor<1>>,
    pub ln1: LayerNorm,
    pub conv2_weight: Param<Tensor<3>>,
    pub conv2_bias: Param<Tensor<1>>,
    pub ln2: LayerNorm,
    pub proj: Linear,
    #[module(skip)]
    pub kernel: usize,
}

fn f32_tensor<const D: usize>(
    store: &WeightStore,
    key: &str,
    shape: [usize; D],
    device: &Device,
) -> Result<Tensor<D>> {
    let v = store.read_f32(key, &shape)?;
    Ok(Tensor::from_data(TensorData::new(v, shape), device))
}

impl DurationPredictor {
    /// Loads `dur_predictor.{conv1.0, ln1, conv2.0, ln2, proj}`.
    pub fn load(store: &WeightStore, p: &DurPredictorParams, device: &Device) -> Result<Self> {
        let (e, h, k) = (
            p.encoder_embed_dim,
            p.var_pred_hidden_dim,
            p.var_pred_kernel_size,
        );
        let pre = "dur_predictor";
        Ok(DurationPredictor {
            conv1_weight: Param::from_tensor(f32_tensor(
                store,
                &format!("{pre}.conv1.0.weight"),
                [h, e, k],
                device,
            )?),
            conv1_bias: Param::from_tensor(f32_tensor(
                store,
                &format!("{pre}.conv1.0.bias"),
                [h],
                device,
            )?),
            ln1: LayerNorm::load(store, &format!("{pre}.ln1"), h, 1e-5, RunDType::F32, device)?,
            conv2_weight: Param::from_tensor(f32_tensor(
                store,
                &format!("{pre}.conv2.0.weight"),
                [h, h, k],
                device,
            )?),
            conv2_bias: Param::from_tensor(f32_tensor(
                store,
                &format!("{pre}.conv2.0.bias"),
                [h],
                device,
            )?),
            ln2: LayerNorm::load(store, &format!("{pre}.ln2"), h, 1e-5, RunDType::F32, device)?,
            proj: store.linear(&format!("{pre}.proj"), h, 1, true, RunDType::F32, device)?,
            kernel: k,
        })
    }

    /// Log-durations `[1, T]` of embeddings `[1, C, T]` (channels first).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        // conv1 pads (k - 1) / 2, conv2 pads 1 (fairseq); the config check keeps k = 3.
        let x = relu(conv1d(
            x,
            self.conv1_weight.val(),
            Some(self.conv1_bias.val()),
            ConvOptions::new([1], [(self.kernel - 1) / 2], [1], 1),
        ));
        let x = self.ln1.forward(x.swap_dims(1, 2)).swap_dims(1, 2);
        let x = relu(conv1d(
            x,
            self.conv2_weight.val(),
            Some(self.conv2_bias.val()),
            ConvOptions::new([1], [1], [1], 1),
        ));
        let x = self.ln2.forward(x.swap_dims(1, 2)); // [1, T, H]
        let y = self.proj.forward(x); // [1, T, 1]
        let [b, t, _] = y.dims();
        y.reshape([b, t])
    }
}

/// `CodeGenerator`'s rounding: `clamp(round(exp(d) - 1), min=1)` with round-half-even,
/// computed in f32 as torch does. A NaN or absurd value is an error.
pub fn round_durations(log_dur: &[f32]) -> Result<Vec<usize>> {
    log_dur
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            frames_of(d.exp() - 1.0).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "predicted duration of unit {i} is {} frames (log-duration {d}): the vocoder weights look broken",
                    d.exp() - 1.0
                ))
            })
        })
        .collect()
}

/// `max(1, round_half_even(x))`, `None` for NaN or above [`MAX_UNIT_FRAMES`].
fn frames_of(x: f32) -> Option<usize> {
    let r = x.round_ties_even();
    if r.is_nan() || r > MAX_UNIT_FRAMES as f32 {
        return None;
    }
    Some(if r >= 1.0 { r as usize } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::{frames_of, round_durations};

    #[test]
    fn rounds_half_to_even_and_clamps() {
        assert_eq!(frames_of(2.5), Some(2));
        assert_eq!(frames_of(3.5), Some(4));
        assert_eq!(frames_of(1.49), Some(1));
        assert_eq!(frames_of(0.2), Some(1));
        assert_eq!(frames_of(-0.9), Some(1));
        assert_eq!(frames_of(f32::NAN), None);
        assert_eq!(frames_of(f32::INFINITY), None);
        assert_eq!(round_durations(&[0.0, 2.0f32.ln() + 1.0]).unwrap()[0], 1);
        assert!(round_durations(&[100.0]).is_err());
    }
}
