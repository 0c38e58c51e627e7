//! The training loop's state: model, optimizer, schedule, data position. One
//! [`Trainer::step`] is one optimizer step over `accum` micro-batches of the
//! seeded batch order ([`super::dataset::Dataset::batch`]); [`Trainer::save`]
//! writes a checkpoint in the published layout that is also resumable
//! (optimizer moments, step, data position); [`Trainer::resume`] continues from
//! one exactly where it stopped. What trains per stage: see [`super::step`].

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use serde_json::json;

use super::checkpoint::{load_optimizer, save_model_dir, save_optimizer};
use super::ctc_loss::speech_decoder_loss;
use super::dataset::Dataset;
use super::lm_loss::{llm_inputs, lm_loss};
use super::lora::{add_lora, merge_lora, LoraConfig};
use super::model::TrainModel;
use super::optim::{AdamW, AdamWConfig};
use super::params::{named_values, NamedTensor};
use super::schedule::CosineSchedule;
use super::step::{stage1_step, stage2_step, StepConfig};
use crate::weights::RunDType;
use crate::{Error, Result};

/// Which stage trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Adaptor + LLM, response-only cross-entropy.
    One,
    /// Speech decoder, CTC on the frozen LLM's hidden states.
    Two,
}

impl Stage {
    pub fn number(self) -> u8 {
        match self {
            Stage::One => 1,
            Stage::Two => 2,
        }
    }
}

/// Loop settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    pub stage: Stage,
    /// Optimizer steps in all.
    pub steps: u64,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub accum: usize,
    pub peak_lr: f64,
    pub warmup_steps: u64,
    pub max_grad_norm: Option<f64>,
    pub adamw: AdamWConfig,
    /// Seed of the batch order.
    pub seed: u64,
    /// Stage 1 with LoRA on the LLM's projections (adaptor and LoRA factors train).
    pub lora: Option<LoraConfig>,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Optimizer steps done, this one included.
    pub step: u64,
    pub loss: f32,
    pub lr: f64,
    pub grad_norm: f64,
    /// LLM input positions of the step's examples (prompt, speech, answer).
    pub tokens: usize,
    pub seconds: f64,
}

/// Model, optimizer and position.
pub struct Trainer {
    pub model: TrainModel,
    pub opt: AdamW,
    pub schedule: CosineSchedule,
    pub config: TrainConfig,
    pub data: Dataset,
    /// Micro-batches consumed so far (the data position).
    pub batches_done: u64,
}

/// The file beside the checkpoint that holds the data position and loop settings.
pub const POSITION_FILE: &str = "train_position.json";

impl Trainer {
    /// A fresh run: the trained parts are made trainable (`Module::train()`).
    pub fn new(mut model: TrainModel, data: Dataset, config: TrainConfig) -> Result<Self> {
        if config.accum == 0 || config.steps == 0 {
            return Err(Error::InvalidInput("steps and accum must be ≥ 1".into()));
        }
        if config.lora.is_some() && config.stage != Stage::One {
            return Err(Error::InvalidInput("LoRA is for stage 1".into()));
        }
        match config.stage {
            Stage::One => {
                model.adaptor = model.adaptor.train();
                if let Some(l) = &config.lora {
                    model.llm = add_lora(model.llm, l)?;
                }
                model.llm = model.llm.train();
            }
            Stage::Two => model.speech_generator = model.speech_generator.train(),
        }
        Ok(Trainer {
            model,
            opt: AdamW::new(config.adamw),
            schedule: CosineSchedule {
                peak_lr: config.peak_lr,
                warmup_steps: config.warmup_steps,
                total_steps: config.steps,
            },
            config,
            data,
            batches_done: 0,
        })
    }

    /// Continues the run saved in `dir` by [`Trainer::save`]: `model` must have
    /// been loaded from `dir`. The stage, batch size and accumulation must be
    /// the saved ones (the data position counts their batches).
    pub fn resume(
        model: TrainModel,
        data: Dataset,
        config: TrainConfig,
        dir: &Path,
    ) -> Result<Self> {
        let p = dir.join(POSITION_FILE);
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let field = |k: &str| {
            v[k].as_u64().ok_or_else(|| Error::Config {
                path: p.clone(),
                reason: format!("no `{k}`"),
            })
        };
        if config.lora.is_some() {
            return Err(Error::InvalidInput(format!(
                "{}: resuming a LoRA run is not supported (the checkpoint holds the merged weights)",
                dir.display()
            )));
        }
        let saved = (field("stage")?, field("batch_size")?, field("accum")?);
        let now = (
            config.stage.number() as u64,
            config.batch_size as u64,
            config.accum as u64,
        );
        if saved != now {
            return Err(Error::InvalidInput(format!(
                "{}: saved (stage, batch, accum) = {saved:?}, this run has {now:?}",
                p.display()
            )));
        }
        let config = TrainConfig {
            seed: field("seed")?,
            ..config
        };
        let mut t = Trainer::new(model, data, config)?;
        t.opt = load_optimizer(dir, &t.model.device)?;
        t.batches_done = field("batches_done")?;
        Ok(t)
    }

    /// Optimizer steps done.
    pub fn step_count(&self) -> u64 {
        self.opt.step
    }

    /// One optimizer step.
    pub fn step(&mut self) -> Result<StepReport> {
        let t0 = Instant::now();
        let mut micro = Vec::with_capacity(self.config.accum);
        let mut tokens = 0;
        for _ in 0..self.config.accum {
            let (_, items) = self.data.batch(self.config.seed, self.batches_done);
            let items = items.to_vec();
            self.batches_done += 1;
            tokens += items
                .iter()
                .map(|&i| self.data.items[i].prompt.len() + self.data.items[i].answer.len())
                .sum::<usize>();
            micro.push(self.data.examples(&self.model, &items)?);
        }
        // The speech block's positions: frames / k per example.
        let k = self.model.adaptor.k.max(1);
        tokens += micro
            .iter()
            .flatten()
            .map(|e| e.speech.dims()[0] / k)
            .sum::<usize>();
        let lr = self.schedule.lr(self.opt.step);
        let cfg = StepConfig {
            lr,
            max_grad_norm: self.config.max_grad_norm,
        };
        let m = &mut self.model;
        let stats = match self.config.stage {
            Stage::One => {
                let (a, l, s) = stage1_step(
                    m.adaptor.clone(),
                    m.llm.clone(),
                    &micro,
                    &mut self.opt,
                    &cfg,
                )?;
                (m.adaptor, m.llm) = (a, l);
                s
            }
            Stage::Two => {
                let (g, s) = stage2_step(
                    m.speech_generator.clone(),
                    &m.adaptor,
                    &m.llm,
                    &micro,
                    &mut self.opt,
                    &cfg,
                )?;
                m.speech_generator = g;
                s
            }
        };
        Ok(StepReport {
            step: self.opt.step,
            loss: stats.loss,
            lr,
            grad_norm: stats.grad_norm,
            tokens,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// The mean loss of the stage over every batch of `data` (no gradients).
    pub fn eval_loss(&self, data: &Dataset) -> Result<f32> {
        let adaptor = self.model.adaptor.valid();
        let llm = self.model.llm.valid();
        let mut sum = 0.0;
        for items in &data.buckets {
            let ex = data.examples(&self.model, items)?;
            let inputs = llm_inputs(&adaptor, &llm, &ex)?;
            let hidden = llm.forward(inputs.embeds, &mut llm.new_cache())?;
            let loss = match self.config.stage {
                Stage::One => lm_loss(&llm, hidden, &inputs.labels)?,
                Stage::Two => {
                    let units: Vec<Vec<u32>> = ex.iter().map(|e| e.units.clone()).collect();
                    let g = self.model.speech_generator.valid();
                    speech_decoder_loss(&g, hidden, &inputs.labels, &units)?.loss
                }
            };
            sum += loss
                .into_data()
                .try_to_vec::<f32>()
                .map(|v| v[0])
                .unwrap_or(f32::NAN);
        }
        Ok(sum / data.buckets.len().max(1) as f32)
    }

    /// The trained tensors by published name.
    pub fn trained_tensors(&self) -> Vec<NamedTensor> {
        match self.config.stage {
            Stage::One => {
                let mut v = named_values(&self.model.adaptor, "model.speech_projector.");
                match self.config.lora {
                    Some(_) => v.extend(named_values(&merge_lora(&self.model.llm), "model.")),
                    None => v.extend(named_values(&self.model.llm, "model.")),
                }
                v
            }
            Stage::Two => named_values(&self.model.speech_generator, "speech_generator."),
        }
    }

    /// Writes a model folder in the published layout (f32, 5 GB shards, the
    /// untrained tensors and other files copied from the folder the model was
    /// loaded from) plus the optimizer state and data position.
    pub fn save(&self, dir: &Path) -> Result<()> {
        save_model_dir(
            dir,
            &self.model.model_dir,
            &self.trained_tensors(),
            RunDType::F32,
            5_000_000_000,
        )?;
        save_optimizer(dir, &self.opt)?;
        let c = &self.config;
        let pos = json!({
            "stage": c.stage.number(),
            "step": self.opt.step,
            "batches_done": self.batches_done,
            "seed": c.seed,
            "batch_size": c.batch_size,
            "accum": c.accum,
            "steps": c.steps,
            "peak_lr": c.peak_lr,
            "warmup_steps": c.warmup_steps,
        });
        let p = dir.join(POSITION_FILE);
        std::fs::write(&p, serde_json::to_vec_pretty(&pos).unwrap_or_default())
            .map_err(|e| Error::io(&p, e))
    }
}
