//! The training loop's parts on the tiny Omni model: AdamW against
//! `torch.optim.AdamW` (tests/reference/ref_train.py), the cosine schedule,
//! clipping, checkpoints `omni` loads, exact resume, and stage 2 learning
//! (overfitting two examples until the decoded units are the targets).
//!
//! Build: `cargo test --release --features train --test training_loop`.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::train_tiny::{dev, load_adaptor, load_llm, tiny, Tiny};
use common::{fixture, max_abs_diff, max_rel_err, Array};
use omni_core::burn::module::Module;
use omni_core::burn::tensor::{Tensor, TensorData};
use omni_core::model::llama::{Llama, OmniConfig};
use omni_core::model::speech_decoder::{CtcDecoderConfig, SpeechGenerator};
use omni_core::train::checkpoint::{load_optimizer, save_model_dir, save_optimizer};
use omni_core::train::{
    llm_inputs, named_values, stage1_step, stage2_step, AdamW, AdamWConfig, CosineSchedule,
    Example, GradAccumulator, NamedTensor, StepConfig, IGNORE_INDEX,
};
use omni_core::weights::{RunDType, WeightStore};
use omni_core::{Omni, OmniOptions};

const PREFIX: &str = "speech_generator.";

fn load_generator(cfg: &OmniConfig, store: &WeightStore) -> SpeechGenerator {
    let c = CtcDecoderConfig::from_omni(cfg, &fixture("omni_tiny/config.json")).unwrap();
    SpeechGenerator::load(store, PREFIX, &cfg.llm, &c, RunDType::F32, &dev()).unwrap()
}

fn named(g: &HashMap<String, Array>, group: &str) -> Vec<NamedTensor> {
    let p = format!("adamw.{group}.");
    g.iter()
        .filter_map(|(k, a)| {
            k.strip_prefix(&p).map(|n| NamedTensor {
                name: n.into(),
                shape: a.shape.clone(),
                data: a.data.clone(),
            })
        })
        .collect()
}

#[test]
fn adamw_two_steps_match_torch() {
    let t = tiny();
    let mut gen = load_generator(&t.cfg, &t.store);
    let before = named_values(&gen, PREFIX);
    let mut opt = AdamW::new(AdamWConfig {
        weight_decay: 0.1,
        ..AdamWConfig::default()
    });
    for group in ["g1", "g2"] {
        let acc = GradAccumulator::from_named(&gen, PREFIX, &named(&t.g, group));
        assert_eq!(acc.sums.len(), 3);
        opt.begin_step();
        gen = opt.apply(gen, PREFIX, &acc, 1e-3);
    }
    let after = named_values(&gen, PREFIX);
    let expected = named(&t.g, "after");
    for (b, a) in before.iter().zip(&after) {
        match expected.iter().find(|e| e.name == a.name) {
            // Tolerance 1e-6 of the tensor's scale: the same f32 formula, rounding only.
            Some(e) => {
                let err = max_rel_err(&a.data, &e.data);
                assert!(
                    err < 1e-6,
                    "{}: rel err {err:e} after two AdamW steps",
                    a.name
                );
                // The steps moved the weights by far more than the tolerance.
                assert!(
                    max_rel_err(&b.data, &e.data) > 1e-4,
                    "{}: the update is too small to test",
                    a.name
                );
            }
            None => assert_eq!(a.data, b.data, "{}: no gradient, must not move", a.name),
        }
    }
}

#[test]
fn cosine_schedule_warms_up_then_decays_to_zero() {
    // transformers get_cosine_schedule_with_warmup: 3 warmup steps of 10.
    let s = CosineSchedule::with_warmup_ratio(2e-4, 0.3, 10);
    assert_eq!(s.warmup_steps, 3);
    assert_eq!(s.lr(0), 0.0);
    assert!((s.lr(1) - 2e-4 / 3.0).abs() < 1e-15);
    assert!((s.lr(3) - 2e-4).abs() < 1e-15);
    assert!((s.lr(3) - 2e-4).abs() < 1e-15);
    let mid = s.lr(3) * 0.5 * (1.0 + (std::f64::consts::PI * 2.0 / 7.0).cos());
    assert!((s.lr(5) - mid).abs() < 1e-15);
    assert!(s.lr(10).abs() < 1e-18);
    // warmup_ratio rounds up, as the HF Trainer's get_warmup_steps.
    assert_eq!(
        CosineSchedule::with_warmup_ratio(1.0, 0.03, 100).warmup_steps,
        3
    );
    assert_eq!(
        CosineSchedule::with_warmup_ratio(1.0, 0.03, 101).warmup_steps,
        4
    );
}

#[test]
fn clipping_scales_to_the_global_norm() {
    let mut acc = GradAccumulator::new();
    let t = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &dev());
    acc.sums.insert("a".into(), t(vec![3.0, 0.0]));
    acc.sums.insert("b".into(), t(vec![0.0, 4.0]));
    let norm = acc.clip_global_norm(1.0);
    assert!((norm - 5.0).abs() < 1e-6);
    let a = acc.sums["a"]
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!((a[0] - 0.6).abs() < 1e-6, "{a:?}");
    assert!((acc.global_norm() - 1.0).abs() < 1e-5);
    // Under the limit: unchanged.
    let before = acc.global_norm();
    acc.clip_global_norm(10.0);
    assert!((acc.global_norm() - before).abs() < 1e-9);
}

/// Examples `which` of the golden batch.
fn examples(t: &Tiny, which: &[usize]) -> Vec<Example> {
    let g = &t.g;
    let enc = &g["enc_outs"];
    let (t_max, c) = (enc.shape[1], enc.shape[2]);
    let s_max = g["units"].shape[1];
    which
        .iter()
        .map(|&i| {
            let frames = g["frames"].data[i] as usize;
            let rows = enc.data[i * t_max * c..(i * t_max + frames) * c].to_vec();
            let ids = |k: &str| {
                g[&format!("{k}.{i}")]
                    .data
                    .iter()
                    .map(|&x| x as i64)
                    .collect::<Vec<_>>()
            };
            let units = g["units"].data[i * s_max..(i + 1) * s_max]
                .iter()
                .filter(|&&x| x as i64 != IGNORE_INDEX);
            Example {
                ids: ids("ids"),
                labels: ids("labels"),
                speech: Tensor::from_data(TensorData::new(rows, [frames, c]), &dev()),
                units: units.map(|&x| x as u32).collect(),
            }
        })
        .collect()
}

/// One micro-batch per example (gradient accumulation over them), clipping at 1.
fn micro(ex: &[Example]) -> Vec<Vec<Example>> {
    ex.iter().map(|e| vec![e.clone()]).collect()
}

fn step_cfg(sched: &CosineSchedule, opt: &AdamW) -> StepConfig {
    StepConfig {
        lr: sched.lr(opt.step),
        max_grad_norm: Some(1.0),
    }
}

#[test]
fn checkpoint_resume_gives_the_same_weights() {
    let t = tiny();
    let data = micro(&examples(&t, &[0, 1]));
    let (adaptor, llm) = (load_adaptor(&t), load_llm(&t));
    let sched = CosineSchedule::with_warmup_ratio(1e-3, 0.25, 4);
    let cfg = AdamWConfig {
        weight_decay: 0.01,
        ..AdamWConfig::default()
    };

    // 4 steps straight.
    let mut gen = load_generator(&t.cfg, &t.store).train();
    let mut opt = AdamW::new(cfg);
    for _ in 0..4 {
        gen = {
            let c = step_cfg(&sched, &opt);
            stage2_step(gen, &adaptor, &llm, &data, &mut opt, &c)
        }
        .unwrap()
        .0;
    }
    let straight = named_values(&gen, PREFIX);

    // 2 steps, checkpoint (sharded f32), a fresh process's load, 2 steps.
    let dir = std::env::temp_dir().join(format!("omni-train-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut gen = load_generator(&t.cfg, &t.store).train();
    let mut opt = AdamW::new(cfg);
    for _ in 0..2 {
        gen = {
            let c = step_cfg(&sched, &opt);
            stage2_step(gen, &adaptor, &llm, &data, &mut opt, &c)
        }
        .unwrap()
        .0;
    }
    save_model_dir(
        &dir,
        &fixture("omni_tiny"),
        &named_values(&gen, PREFIX),
        RunDType::F32,
        200_000,
    )
    .unwrap();
    save_optimizer(&dir, &opt).unwrap();
    drop((gen, opt));
    let shards = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("model-")
        })
        .count();
    assert!(shards > 1, "200 kB shards: the tiny model spans several");
    let store = WeightStore::open_hf_dir(&dir).unwrap().dense_only();
    let mut gen = load_generator(&t.cfg, &store).train();
    let mut opt = load_optimizer(&dir, &dev()).unwrap();
    assert_eq!(opt.step, 2);
    for _ in 0..2 {
        gen = {
            let c = step_cfg(&sched, &opt);
            stage2_step(gen, &adaptor, &llm, &data, &mut opt, &c)
        }
        .unwrap()
        .0;
    }
    let resumed = named_values(&gen, PREFIX);
    assert_eq!(straight.len(), resumed.len());
    let original = named_values(&load_generator(&t.cfg, &t.store), PREFIX);
    for ((a, b), o) in straight.iter().zip(&resumed).zip(&original) {
        assert_eq!(a.name, b.name);
        // Same inputs, same f32 operations in the same order: bit-identical.
        assert_eq!(
            max_abs_diff(&a.data, &b.data),
            0.0,
            "{}: resumed weights differ",
            a.name
        );
        assert!(
            max_abs_diff(&a.data, &o.data) > 0.0,
            "{}: training did not move it",
            a.name
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn checkpoint_in_published_layout_loads_in_omni() {
    let t = tiny();
    let gen = load_generator(&t.cfg, &t.store);
    // A recognisable change: every trained tensor + 1/8 (exact in f16).
    let trained: Vec<NamedTensor> = named_values(&gen, PREFIX)
        .into_iter()
        .map(|mut n| {
            n.data.iter_mut().for_each(|x| *x += 0.125);
            n
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("omni-train-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    save_model_dir(
        &dir,
        &fixture("omni_tiny"),
        &trained,
        RunDType::F16,
        1 << 20,
    )
    .unwrap();
    for f in [
        "config.json",
        "model.safetensors.index.json",
        "tokenizer.json",
    ] {
        assert!(Path::new(&dir.join(f)).exists(), "{f}");
    }
    Omni::load(&dir, fixture("vocoder/tiny"), &OmniOptions::default(), None)
        .expect("omni loads the checkpoint");
    // Its values, through burn layers (`dense_only`), whose parameters `named_values`
    // lists (omni's own CPU layers are omni-kernels matrices).
    let saved = WeightStore::open_hf_dir(&dir).unwrap().dense_only();
    let loaded = named_values(&load_generator(&t.cfg, &saved), PREFIX);
    assert_eq!(loaded.len(), trained.len());
    for (a, b) in loaded.iter().zip(&trained) {
        assert_eq!(a.name, b.name);
        // f16 storage: the rounding of values of magnitude < 4 is ≤ 2^-11 · 4.
        assert!(max_abs_diff(&a.data, &b.data) <= 2e-3, "{}", a.name);
    }
    // Untouched parts are copied as they were.
    let llm_then = named_values(
        &Llama::load(&t.store, &t.cfg.llm, RunDType::F32, &dev(), None).unwrap(),
        "model.",
    );
    let llm_now = named_values(
        &Llama::load(&saved, &t.cfg.llm, RunDType::F32, &dev(), None).unwrap(),
        "model.",
    );
    assert_eq!(llm_then.len(), llm_now.len());
    for (a, b) in llm_then.iter().zip(&llm_now) {
        assert_eq!(a.data, b.data, "{}", a.name);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stage2_overfits_two_examples_until_units_decode_exactly() {
    let t = tiny();
    // Examples 0 (5 answer tokens, 125 frames) and 1 (3 tokens, 75 frames), their
    // targets cut to 2 units per token. Not more: the λ frames of one state are
    // identical inputs, and in the first block they attend only to each other,
    // so all 25 give the same label (one unit at most): the reference's decoder
    // cannot emit an arbitrary number of units per state.
    let mut ex = examples(&t, &[0, 1]);
    ex[0].units.truncate(10);
    ex[1].units.truncate(6);
    let data = micro(&ex);
    let (adaptor, llm) = (load_adaptor(&t), load_llm(&t));
    // The runtime's predict on each example's training-aligned states (its answer
    // positions): the units it decodes.
    let inputs = llm_inputs(&adaptor, &llm, &ex).unwrap();
    let hidden = llm.forward(inputs.embeds, &mut llm.new_cache()).unwrap();
    let [b, len, h] = hidden.dims();
    let decode = |gen: &SpeechGenerator| -> Vec<Vec<u32>> {
        (0..ex.len())
            .map(|i| {
                let pos: Vec<i64> = (0..len)
                    .filter(|&p| inputs.labels[i][p] != IGNORE_INDEX)
                    .map(|p| (i * len + p) as i64)
                    .collect();
                let idx = Tensor::<1, omni_core::burn::tensor::Int>::from_data(
                    TensorData::new(pos.clone(), [pos.len()]),
                    &dev(),
                );
                let reps = hidden.clone().reshape([b * len, h]).select(0, idx);
                gen.predict(reps).unwrap().1
            })
            .collect()
    };
    let targets: Vec<Vec<u32>> = ex.iter().map(|e| e.units.clone()).collect();
    // Train until the decoded units are the targets, checked every 25 steps, within
    // a budget (the number of steps needed depends on the CPU's f32 rounding: 150
    // on the AMD machines, more on the AVX-512 ones, where burn-flex's GEMM sums in
    // another order).
    let (chunk, budget) = (25, 600);
    let sched = CosineSchedule::with_warmup_ratio(1e-2, 0.03, budget);
    let mut gen = load_generator(&t.cfg, &t.store).train();
    let mut opt = AdamW::new(AdamWConfig::default());
    let (mut first, mut last, mut steps) = (None, 0.0, 0);
    let mut decoded = Vec::new();
    while steps < budget {
        for _ in 0..chunk {
            let (g, stats) = {
                let c = step_cfg(&sched, &opt);
                stage2_step(gen, &adaptor, &llm, &data, &mut opt, &c)
            }
            .unwrap();
            gen = g;
            first.get_or_insert(stats.loss);
            last = stats.loss;
        }
        steps += chunk;
        decoded = decode(&gen.clone().valid());
        if decoded == targets {
            break;
        }
    }
    let first = first.unwrap();
    eprintln!("stage 2 overfit: CTC loss {first} → {last} in {steps} steps");
    assert_eq!(decoded, targets, "decoded units after {steps} steps");
    assert!(last < first * 1e-2, "CTC loss {first} → {last}");
}

#[test]
fn stage1_steps_lower_the_response_loss() {
    let t = tiny();
    let ex = examples(&t, &[0, 1, 2]);
    let data = vec![ex[..2].to_vec(), ex[2..].to_vec()];
    let (mut adaptor, mut llm) = (load_adaptor(&t).train(), load_llm(&t).train());
    let before_adaptor = named_values(&adaptor, "model.speech_projector.");
    let mut opt = AdamW::new(AdamWConfig::default());
    let cfg = StepConfig {
        lr: 1e-3,
        max_grad_norm: Some(1.0),
    };
    let mut losses = Vec::new();
    for _ in 0..5 {
        let (a, l, stats) = stage1_step(adaptor, llm, &data, &mut opt, &cfg).unwrap();
        (adaptor, llm) = (a, l);
        assert!(stats.grad_norm.is_finite() && stats.grad_norm > 0.0);
        losses.push(stats.loss);
    }
    // The first step's loss is the golden batch's mean over its two micro-batches.
    assert!(losses[4] < losses[0] * 0.9, "stage-1 losses {losses:?}");
    // The adaptor trains too (stage 1 trains adaptor + LLM).
    let after = named_values(&adaptor, "model.speech_projector.");
    assert!(
        before_adaptor
            .iter()
            .zip(&after)
            .all(|(a, b)| a.data != b.data),
        "adaptor moved"
    );
}
