//! Stage 2: the CTC loss of the speech decoder, as the reference's
//! `SpeechGeneratorCTC.forward` (omni_speech/model/speech_generator/speech_generator.py).
//!
//! - Its input is the LLM's last hidden states (after the final norm) **at the
//!   answer's label positions** (`tgt_rep[label != IGNORE_INDEX]`): in training
//!   each answer token's own position, one position later than inference, which
//!   reads the state that predicted the token (see reference.md).
//! - `upsample`: n states become `max(λ·n, units)` frames by `_uniform_assignment`
//!   (frame t reads state ⌊t / (frames / n)⌋ in f32, as torch computes it); the
//!   batch is right-padded with zero frames.
//! - `F.ctc_loss(log_softmax(logits), blank = unit_vocab_size, reduction = "sum",
//!   zero_infinity = True) / Σ target lengths`.
//!
//! `zero_infinity`: the loss of an example is infinite exactly when its target
//! cannot be aligned to its frames (fewer frames than units plus adjacent
//! repeats, each repeat needing a blank between). Such examples are left out of
//! burn's CTC (loss and gradient 0, as torch's `zero_infinity` gives) but still
//! count in the divisor, as in the reference.

use burn::tensor::activation::log_softmax;
use burn::tensor::module::ctc_loss;
use burn::tensor::{DType, Int, Tensor, TensorData};

use super::batch::IGNORE_INDEX;
use crate::model::speech_decoder::SpeechGenerator;
use crate::{Error, Result};

/// The CTC loss of a batch.
#[derive(Debug, Clone)]
pub struct CtcLoss {
    /// Σ per-example losses / Σ target lengths (one element).
    pub loss: Tensor<1>,
    /// Frames of each example (`max(λ·n, units)`).
    pub frames: Vec<usize>,
    /// Whether each example's target fits its frames (the others count 0).
    pub feasible: Vec<bool>,
}

/// Whether `units` can be aligned to `frames` CTC frames: each unit takes a
/// frame, and two equal adjacent units need a blank frame between them.
pub fn ctc_feasible(units: &[u32], frames: usize) -> bool {
    let repeats = units.windows(2).filter(|w| w[0] == w[1]).count();
    frames >= units.len() + repeats
}

/// `_uniform_assignment` for one example: the state each of `frames` frames
/// reads, `(t / (frames / n)).long()` with torch's f32 arithmetic.
pub fn uniform_assignment(n: usize, frames: usize) -> Vec<usize> {
    let ratio = frames as f32 / n as f32;
    (0..frames)
        .map(|t| ((t as f32 / ratio) as usize).min(n.saturating_sub(1)))
        .collect()
}

/// `SpeechGeneratorCTC.forward`: `hidden` `[batch, len, llm_hidden]` (the LLM's
/// normed last hidden states), `labels` the padded labels aligned with them
/// (as [`super::llm_inputs`] returns), `units` the targets.
pub fn speech_decoder_loss(
    generator: &SpeechGenerator,
    hidden: Tensor<3>,
    labels: &[Vec<i64>],
    units: &[Vec<u32>],
) -> Result<CtcLoss> {
    let [b, len, h] = hidden.dims();
    if labels.len() != b || units.len() != b || labels.iter().any(|l| l.len() != len) {
        return Err(Error::InvalidInput(format!(
            "labels/units do not match hidden states [{b}, {len}, {h}]"
        )));
    }
    let cfg = generator.config;
    let blank = cfg.unit_vocab_size;
    if let Some(bad) = units.iter().flatten().find(|&&u| u as usize >= blank) {
        return Err(Error::InvalidInput(format!(
            "unit {bad} ≥ unit_vocab_size {blank}"
        )));
    }
    // Frame → row of the flattened hidden states, per example.
    let mut rows = Vec::with_capacity(b);
    let mut frames = Vec::with_capacity(b);
    for (i, (lab, u)) in labels.iter().zip(units).enumerate() {
        let pos: Vec<usize> = lab
            .iter()
            .enumerate()
            .filter(|(_, &l)| l != IGNORE_INDEX)
            .map(|(p, _)| p)
            .collect();
        if pos.is_empty() {
            return Err(Error::InvalidInput(format!(
                "example {i} has no answer position"
            )));
        }
        let n_frames = (pos.len() * cfg.upsample_factor).max(u.len());
        rows.push(
            uniform_assignment(pos.len(), n_frames)
                .into_iter()
                .map(|s| (i * len + pos[s]) as i64)
                .collect::<Vec<_>>(),
        );
        frames.push(n_frames);
    }
    let max_frames = frames.iter().copied().max().unwrap_or(0);
    let device = hidden.device();
    let flat = hidden.reshape([b * len, h]);
    let x: Vec<Tensor<3>> = rows
        .iter()
        .map(|r| {
            let idx = Tensor::<1, Int>::from_data(TensorData::new(r.clone(), [r.len()]), &device);
            let x = flat.clone().select(0, idx);
            let x = if r.len() < max_frames {
                let pad = Tensor::<2>::zeros([max_frames - r.len(), h], &device).cast(x.dtype());
                Tensor::cat(vec![x, pad], 0)
            } else {
                x
            };
            x.unsqueeze::<3>()
        })
        .collect();
    let logits = generator.forward_frames(Tensor::cat(x, 0), &mut generator.new_cache());
    let classes = logits.dims()[2];
    let lprobs = log_softmax(logits.cast(DType::F32), 2);

    let feasible: Vec<bool> = units
        .iter()
        .zip(&frames)
        .map(|(u, &f)| ctc_feasible(u, f))
        .collect();
    let keep: Vec<usize> = (0..b).filter(|&i| feasible[i]).collect();
    let total_units: usize = units.iter().map(|u| u.len()).sum();
    let loss = if keep.is_empty() {
        // Every loss is infinite: zero_infinity gives 0 and zero gradients.
        lprobs.sum().mul_scalar(0.0)
    } else {
        let kb = keep.len();
        let max_units = keep
            .iter()
            .map(|&i| units[i].len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut targets = vec![0i64; kb * max_units];
        for (j, &i) in keep.iter().enumerate() {
            for (s, &u) in units[i].iter().enumerate() {
                targets[j * max_units + s] = u as i64;
            }
        }
        let int =
            |v: Vec<i64>, n: usize| Tensor::<1, Int>::from_data(TensorData::new(v, [n]), &device);
        let sel = int(keep.iter().map(|&i| i as i64).collect(), kb);
        // [batch, frames, classes] → [frames, kept, classes], as F.ctc_loss reads it.
        // The forward recursion runs in f64 where the device has it: in f32 its
        // log-space sums over hundreds of frames (losses of hundreds of nats) put
        // the gradients ~2e-4 off the exact ones (the reference's f32 CTC is off
        // by as much); in f64 they are exact to ~1e-6 (tests/training.rs).
        let lp = lprobs.select(0, sel).swap_dims(0, 1);
        let lp = if device.supports_dtype(DType::F64) {
            lp.cast(DType::F64)
        } else {
            lp
        };
        debug_assert_eq!(lp.dims()[2], classes);
        let per = ctc_loss(
            lp,
            Tensor::<2, Int>::from_data(TensorData::new(targets, [kb, max_units]), &device),
            int(keep.iter().map(|&i| frames[i] as i64).collect(), kb),
            int(keep.iter().map(|&i| units[i].len() as i64).collect(), kb),
            blank,
        );
        per.sum().cast(DType::F32)
    };
    let loss = if total_units > 0 {
        loss.div_scalar(total_units as f32)
    } else {
        loss
    };
    Ok(CtcLoss {
        loss,
        frames,
        feasible,
    })
}
