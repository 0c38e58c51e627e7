//! Learning-rate schedule of the HF `Trainer` with `lr_scheduler_type="cosine"`
//! (transformers `get_cosine_schedule_with_warmup`, one half cosine): linear
//! warmup from 0, then cosine decay to 0.

/// Cosine schedule with linear warmup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineSchedule {
    pub peak_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl CosineSchedule {
    /// Warmup as a ratio of the total steps (`warmup_ratio`, rounded up as the
    /// HF `TrainingArguments.get_warmup_steps` does).
    pub fn with_warmup_ratio(peak_lr: f64, warmup_ratio: f64, total_steps: u64) -> Self {
        let warmup_steps = (total_steps as f64 * warmup_ratio).ceil() as u64;
        CosineSchedule {
            peak_lr,
            warmup_steps,
            total_steps,
        }
    }

    /// The learning rate of optimizer step `step` (0-based: the first step uses
    /// `lr(0)`, as the scheduler is stepped after each optimizer step).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak_lr * step as f64 / self.warmup_steps.max(1) as f64;
        }
        let progress = (step - self.warmup_steps) as f64
            / self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        self.peak_lr * (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
    }
}

/// The paper's per-stage settings (LLaMA-Omni, arXiv 2409.06666, §4 "Training"):
/// batch size 32, 3 epochs, cosine schedule with 3% warmup, peak learning rate
/// 2e-5 for stage 1 and 2e-4 for stage 2. These are recalled from the paper and
/// not re-checked against the PDF here (the reference repository ships no
/// training code, issue #14): treat them as a starting point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageDefaults {
    pub peak_lr: f64,
    pub warmup_ratio: f64,
    pub epochs: u32,
    pub batch_size: usize,
}

pub const STAGE1_DEFAULTS: StageDefaults = StageDefaults {
    peak_lr: 2e-5,
    warmup_ratio: 0.03,
    epochs: 3,
    batch_size: 32,
};
pub const STAGE2_DEFAULTS: StageDefaults = StageDefaults {
    peak_lr: 2e-4,
    warmup_ratio: 0.03,
    epochs: 3,
    batch_size: 32,
};
