//! `omni train`: the two training stages from the command line (needs the
//! `train` feature: `cargo run --release --features train --example omni -- train ...`).
//!
//! Writes `OUT/train_log.jsonl` (one object per step: step, loss, lr,
//! grad_norm, tokens, seconds, and eval_loss on evaluation steps), a resumable
//! checkpoint in the published layout to `OUT/checkpoint-N` every
//! `--save-every` steps and to `OUT` at the end. Ctrl-C finishes the current
//! step, saves to `OUT` and exits with status 130; `--resume OUT` continues.
//! (`OMNI_TRAIN_STOP_AFTER=N` in the environment acts as a Ctrl-C during step
//! N: the tests' deterministic interrupt.)

use std::path::PathBuf;

/// Options of `omni train`.
#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    /// 1: adaptor + LLM (response cross-entropy); 2: speech decoder (CTC).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub stage: u8,
    /// Model folder in the published layout (config.json, shards, tokenizer).
    #[arg(long)]
    pub model: PathBuf,
    /// Training manifest: omni's JSONL or InstructS2S-200K's JSON (README "Training").
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder (checkpoints, train_log.jsonl).
    #[arg(long)]
    pub out: PathBuf,
    /// Optimizer steps (default: the paper's 3 epochs).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Examples per micro-batch (default: the paper's 32).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    pub accum: usize,
    /// Peak learning rate (default: the stage's, from the paper).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Warmup steps (default: 3% of the steps, rounded up).
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Evaluate on --eval-data every E steps (0: never).
    #[arg(long, default_value_t = 0)]
    pub eval_every: u64,
    /// Evaluation manifest (same layouts as --data).
    #[arg(long)]
    pub eval_data: Option<PathBuf>,
    /// Save OUT/checkpoint-N every S steps (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub save_every: u64,
    /// Continue the run saved in this folder (load it as the model).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// LoRA rank on the LLM's attention and MLP projections (stage 1): only the
    /// LoRA factors and the adaptor train; merged into the weights on save.
    #[arg(long)]
    pub lora: Option<usize>,
    /// LoRA alpha (scale alpha / rank; default 2 · rank).
    #[arg(long)]
    pub lora_alpha: Option<f64>,
    /// Seed of the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fail on the first bad manifest entry instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Gradient clipping (global L2 norm; 0: none).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Device: cpu, wgpu, cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Without the `train` feature: a clear error, status 2.
#[cfg(not(feature = "train"))]
pub fn cmd_train(_: &TrainArgs) -> i32 {
    eprintln!(
        "error: `omni train` needs the `train` feature (burn's autodiff); build with \
         `cargo run --release --features train --example omni -- train ...`"
    );
    2
}

#[cfg(feature = "train")]
pub use imp::cmd_train;

#[cfg(feature = "train")]
mod imp {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    use omni_core::train::{
        read_manifest, AdamWConfig, Dataset, LoraConfig, ManifestOptions, Stage, TrainConfig,
        TrainModel, Trainer, STAGE1_DEFAULTS, STAGE2_DEFAULTS,
    };
    use omni_core::OmniOptions;

    use super::TrainArgs;

    type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

    fn dataset(
        a: &TrainArgs,
        path: &std::path::Path,
        model: &TrainModel,
        batch: usize,
    ) -> AnyResult<Dataset> {
        let opts = ManifestOptions {
            unit_vocab_size: model.unit_vocab_size(),
            require_units: a.stage == 2,
            strict: a.strict,
        };
        let m = read_manifest(path, &opts)?;
        if !m.skipped.is_empty() {
            eprintln!(
                "{}: skipped {} of {} entries (--strict to fail instead):",
                path.display(),
                m.skipped.len(),
                m.skipped.len() + m.records.len()
            );
            for s in m.skipped.iter().take(10) {
                eprintln!("  {}", m.describe(s));
            }
            if m.skipped.len() > 10 {
                eprintln!("  … and {} more", m.skipped.len() - 10);
            }
        }
        Ok(Dataset::new(
            &m,
            &model.tokenizer,
            model.config.llm.vocab_size,
            batch,
        )?)
    }

    fn run(a: &TrainArgs, stop: &AtomicBool) -> AnyResult<bool> {
        let stage = if a.stage == 1 { Stage::One } else { Stage::Two };
        let defaults = if a.stage == 1 {
            STAGE1_DEFAULTS
        } else {
            STAGE2_DEFAULTS
        };
        let source = a.resume.clone().unwrap_or_else(|| a.model.clone());
        let opt = OmniOptions {
            device: a.device.clone(),
            ..OmniOptions::default()
        };
        let model = TrainModel::load(&source, &opt)?;
        let batch = a.batch.unwrap_or(defaults.batch_size);
        let data = dataset(a, &a.data, &model, batch)?;
        let eval = match &a.eval_data {
            Some(p) => Some(dataset(a, p, &model, batch)?),
            None => None,
        };
        let steps = a.steps.unwrap_or_else(|| {
            let per_epoch = data.batches_per_epoch().div_ceil(a.accum) as u64;
            per_epoch * defaults.epochs as u64
        });
        let warmup = a
            .warmup
            .unwrap_or_else(|| (steps as f64 * defaults.warmup_ratio).ceil() as u64);
        let cfg = TrainConfig {
            stage,
            steps,
            batch_size: batch,
            accum: a.accum,
            peak_lr: a.lr.unwrap_or(defaults.peak_lr),
            warmup_steps: warmup,
            max_grad_norm: (a.max_grad_norm > 0.0).then_some(a.max_grad_norm),
            adamw: AdamWConfig {
                weight_decay: a.weight_decay,
                ..AdamWConfig::default()
            },
            seed: a.seed,
            lora: a.lora.map(|rank| LoraConfig {
                rank,
                alpha: a.lora_alpha.unwrap_or(2.0 * rank as f64),
            }),
        };
        let mut t = match &a.resume {
            Some(dir) => Trainer::resume(model, data, cfg, dir)?,
            None => Trainer::new(model, data, cfg)?,
        };
        std::fs::create_dir_all(&a.out)?;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(a.out.join("train_log.jsonl"))?;
        let bar = ProgressBar::new(steps);
        bar.set_style(
            ProgressStyle::with_template("stage {prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        if a.quiet {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_prefix(a.stage.to_string());
        bar.set_position(t.step_count());
        eprintln!(
            "stage {}: {} examples, {} batches of ≤ {batch} per epoch, steps {}..{steps}, peak lr {:e}, warmup {warmup}",
            a.stage,
            t.data.items.len(),
            t.data.batches_per_epoch(),
            t.step_count(),
            cfg.peak_lr
        );
        // Test hook: `OMNI_TRAIN_STOP_AFTER=N` acts as a Ctrl-C during step N.
        let stop_after: Option<u64> = std::env::var("OMNI_TRAIN_STOP_AFTER")
            .ok()
            .and_then(|v| v.parse().ok());
        let t0 = Instant::now();
        while t.step_count() < steps {
            let r = t.step()?;
            let mut line = serde_json::json!({
                "step": r.step, "loss": r.loss, "lr": r.lr, "grad_norm": r.grad_norm,
                "tokens": r.tokens, "seconds": r.seconds,
            });
            if let (Some(ev), true) = (&eval, a.eval_every > 0 && r.step % a.eval_every == 0) {
                line["eval_loss"] = serde_json::json!(t.eval_loss(ev)?);
            }
            writeln!(log, "{line}")?;
            log.flush()?;
            bar.set_position(r.step);
            bar.set_message(format!(
                "loss {:.4} {:.0} tok/s",
                r.loss,
                r.tokens as f64 / r.seconds.max(1e-9)
            ));
            if a.save_every > 0 && r.step % a.save_every == 0 && r.step < steps {
                t.save(&a.out.join(format!("checkpoint-{}", r.step)))?;
            }
            if stop_after == Some(r.step) {
                stop.store(true, Ordering::SeqCst);
            }
            if stop.load(Ordering::SeqCst) && r.step < steps {
                t.save(&a.out)?;
                bar.abandon();
                eprintln!(
                    "interrupted after step {}: saved to {} (continue with --resume {})",
                    r.step,
                    a.out.display(),
                    a.out.display()
                );
                return Ok(false);
            }
        }
        t.save(&a.out)?;
        bar.finish();
        eprintln!(
            "saved {} after {} steps ({:.1} s)",
            a.out.display(),
            t.step_count(),
            t0.elapsed().as_secs_f64()
        );
        Ok(true)
    }

    /// Runs `omni train`; the process status (0, 1 on error, 130 when interrupted).
    pub fn cmd_train(a: &TrainArgs) -> i32 {
        // Ctrl-C sets a flag (signal-hook's handler does one atomic store, which is
        // async-signal-safe); the loop reads it after each step, saves and exits.
        let stop = Arc::new(AtomicBool::new(false));
        if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))
        {
            eprintln!("warning: no Ctrl-C handler ({e}): Ctrl-C will not save");
        }
        match run(a, &stop) {
            Ok(true) => 0,
            Ok(false) => 130,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        }
    }
}
