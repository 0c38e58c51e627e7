//! One optimizer step of each training stage: micro-batches accumulated (each
//! loss divided by their number, as the HF `Trainer` does), global-norm
//! clipping, AdamW at the given learning rate. Which parameters train:
//!
//! - stage 1 ([`stage1_step`]): the adaptor (`model.speech_projector.*`) and the
//!   LLM (`model.*`, `lm_head`); the Whisper encoder is frozen (its outputs are
//!   the examples' `speech`); the speech decoder is not used.
//! - stage 2 ([`stage2_step`]): the speech decoder (`speech_generator.*`) only;
//!   adaptor and LLM are frozen (the reference's `tune_speech_generator_only`
//!   runs them under `torch.no_grad()`): pass them as plain modules.
//!
//! Trainable modules must be on autodiff (`Module::train()`); they are returned
//! updated.

use super::batch::Example;
use super::ctc_loss::speech_decoder_loss;
use super::lm_loss::{llm_inputs, lm_loss};
use super::optim::{AdamW, GradAccumulator};
use crate::model::adaptor::SpeechAdaptor;
use crate::model::llama::Llama;
use crate::model::speech_decoder::SpeechGenerator;
use crate::{Error, Result};

/// Per-step settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepConfig {
    pub lr: f64,
    /// `max_grad_norm` (the HF `Trainer`'s default is 1.0); `None`: no clipping.
    pub max_grad_norm: Option<f64>,
}

/// What a step reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Mean of the micro-batch losses.
    pub loss: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

fn scalar(t: burn::tensor::Tensor<1>) -> f32 {
    t.into_data()
        .try_to_vec::<f32>()
        .map(|v| v[0])
        .unwrap_or(f32::NAN)
}

fn finish(acc: &mut GradAccumulator, opt: &mut AdamW, cfg: &StepConfig) -> f64 {
    let grad_norm = match cfg.max_grad_norm {
        Some(m) => acc.clip_global_norm(m),
        None => acc.global_norm(),
    };
    opt.begin_step();
    grad_norm
}

/// Stage 1: response-only cross-entropy, adaptor + LLM trained.
pub fn stage1_step(
    adaptor: SpeechAdaptor,
    llm: Llama,
    micro_batches: &[Vec<Example>],
    opt: &mut AdamW,
    cfg: &StepConfig,
) -> Result<(SpeechAdaptor, Llama, StepStats)> {
    if micro_batches.is_empty() {
        return Err(Error::InvalidInput("no micro-batch".into()));
    }
    let scale = 1.0 / micro_batches.len() as f64;
    let mut acc = GradAccumulator::new();
    let mut loss_sum = 0.0;
    for mb in micro_batches {
        let inputs = llm_inputs(&adaptor, &llm, mb)?;
        let hidden = llm.forward(inputs.embeds, &mut llm.new_cache())?;
        let loss = lm_loss(&llm, hidden, &inputs.labels)?;
        let grads = loss.backward();
        loss_sum += scalar(loss);
        acc.add(&adaptor, "model.speech_projector.", &grads, scale);
        acc.add(&llm, "model.", &grads, scale);
    }
    let grad_norm = finish(&mut acc, opt, cfg);
    let adaptor = opt.apply(adaptor, "model.speech_projector.", &acc, cfg.lr);
    let llm = opt.apply(llm, "model.", &acc, cfg.lr);
    Ok((
        adaptor,
        llm,
        StepStats {
            loss: loss_sum * scale as f32,
            grad_norm,
        },
    ))
}

/// Stage 2: CTC of the speech decoder on the frozen LLM's hidden states.
pub fn stage2_step(
    generator: SpeechGenerator,
    adaptor: &SpeechAdaptor,
    llm: &Llama,
    micro_batches: &[Vec<Example>],
    opt: &mut AdamW,
    cfg: &StepConfig,
) -> Result<(SpeechGenerator, StepStats)> {
    if micro_batches.is_empty() {
        return Err(Error::InvalidInput("no micro-batch".into()));
    }
    let scale = 1.0 / micro_batches.len() as f64;
    let mut acc = GradAccumulator::new();
    let mut loss_sum = 0.0;
    for mb in micro_batches {
        let inputs = llm_inputs(adaptor, llm, mb)?;
        // A frozen (plain) LLM gives constants; detach in case it is on autodiff.
        let hidden = llm.forward(inputs.embeds, &mut llm.new_cache())?.detach();
        let units: Vec<Vec<u32>> = mb.iter().map(|e| e.units.clone()).collect();
        let out = speech_decoder_loss(&generator, hidden, &inputs.labels, &units)?;
        let grads = out.loss.backward();
        loss_sum += scalar(out.loss);
        acc.add(&generator, "speech_generator.", &grads, scale);
    }
    let grad_norm = finish(&mut acc, opt, cfg);
    let generator = opt.apply(generator, "speech_generator.", &acc, cfg.lr);
    Ok((
        generator,
        StepStats {
            loss: loss_sum * scale as f32,
            grad_norm,
        },
    ))
}
