//! Training (cargo feature `train`, burn's autodiff): the losses of LLaMA-Omni's
//! two training stages, computed on the runtime's own modules.
//!
//! - [`batch`]: one training example (prompt + answer ids, labels masked as the
//!   reference's `preprocess_llama_3` masks them, the frozen encoder's output,
//!   the answer's units).
//! - [`lm_loss`]: stage 1, response-only cross-entropy through the adaptor and
//!   the LLM (Whisper encoder frozen), on a right-padded batch.
//! - [`optim`]: AdamW (as `torch.optim.AdamW`), gradient accumulation, clipping.
//! - [`step`]: one optimizer step of each stage (which parameters train).
//! - [`schedule`]: cosine learning rate with linear warmup.
//! - [`checkpoint`]: sharded safetensors + index + config.json, optimizer state.
//! - [`params`]: parameters and gradients by their published names.
//! - [`data`]: training manifests (omni's JSONL, InstructS2S-200K's JSON), bad
//!   entries skipped with their line and reason, or an error (`strict`).
//! - [`dataset`]: tokenized examples, length-bucketed batches in a seeded order.
//! - [`model`]: the parts training loads (no vocoder); the frozen encoder's output.
//! - [`lora`]: LoRA on the LLM's projections for stage 1, merged on export.
//! - [`trainer`]: the loop's state: step, eval loss, resumable checkpoints.
//! - [`ctc_loss`]: stage 2, the CTC loss of the speech decoder on the LLM's
//!   hidden states (`SpeechGeneratorCTC.forward`), `zero_infinity`, summed and
//!   divided by the number of target units.
//!
//! Modules become trainable with burn's `Module::train()` (autodiff, parameters
//! requiring gradients); a frozen part stays a plain module, whose outputs are
//! constants to the trainable part. `loss.backward()` gives the gradients.

pub mod batch;
pub mod checkpoint;
pub mod ctc_loss;
pub mod data;
pub mod dataset;
pub mod lm_loss;
pub mod lora;
pub mod model;
pub mod optim;
pub mod params;
pub mod schedule;
pub mod step;
pub mod trainer;

pub use batch::{Example, IGNORE_INDEX};
pub use ctc_loss::{ctc_feasible, speech_decoder_loss, uniform_assignment, CtcLoss};
pub use data::{
    read_manifest, Manifest, ManifestFormat, ManifestOptions, Problem, Record, Skipped,
};
pub use dataset::{Dataset, Tokenized};
pub use lm_loss::{llm_inputs, lm_loss, LlmInputs};
pub use lora::{add_lora, merge_lora, LoraConfig};
pub use model::TrainModel;
pub use optim::{AdamW, AdamWConfig, GradAccumulator};
pub use params::{named_grads, named_values, NamedTensor};
pub use schedule::{CosineSchedule, StageDefaults, STAGE1_DEFAULTS, STAGE2_DEFAULTS};
pub use step::{stage1_step, stage2_step, StepConfig, StepStats};
pub use trainer::{Stage, StepReport, TrainConfig, Trainer};
