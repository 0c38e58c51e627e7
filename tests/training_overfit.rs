//! Both stages learn, end to end from a manifest: three espeak-ng questions
//! (tests/fixtures/train_speech, made by its make.sh) at three sample rates,
//! the tiny model. Stage 1 trains adaptor + LLM until each question's greedy
//! answer is its target answer's tokens (`<|eot_id|>` included); stage 2 then
//! trains the speech decoder on the stage-1 LLM until the units decoded from
//! each answer's states are its target units.
//!
//! Build: `cargo test --release --features train --test training_overfit`.

mod common;

use std::path::PathBuf;

use common::fixture;
use omni_core::burn::module::Module;
use omni_core::burn::tensor::{Int, Tensor, TensorData};
use omni_core::model::llama::generate::{Generation, GenerationParams};
use omni_core::model::llama::prompt::SPEECH_TOKEN_INDEX;
use omni_core::train::{
    llm_inputs, read_manifest, AdamWConfig, Dataset, ManifestOptions, Stage, TrainConfig,
    TrainModel, Trainer, IGNORE_INDEX,
};
use omni_core::OmniOptions;

const ANSWERS: [&str; 3] = ["Four.", "Red.", "Yes."];

fn manifest() -> PathBuf {
    let d = std::env::temp_dir().join(format!("omni-train-overfit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    // One distinct unit per answer token (see stage 2 below), none repeated.
    let lines: Vec<String> = ANSWERS
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let wav = fixture(&format!("train_speech/q{}.wav", i + 1));
            format!(
                r#"{{"speech": "{}", "answer": "{a}", "units": []}}"#,
                wav.display()
            )
        })
        .collect();
    let p = d.join("train.jsonl");
    std::fs::write(&p, lines.join("\n")).unwrap();
    p
}

fn config(stage: Stage, steps: u64, lr: f64) -> TrainConfig {
    TrainConfig {
        stage,
        steps,
        batch_size: 3,
        accum: 1,
        peak_lr: lr,
        warmup_steps: 0,
        max_grad_norm: Some(1.0),
        adamw: AdamWConfig::default(),
        seed: 0,
        lora: None,
    }
}

/// Greedy answers of every item (tokens up to and including the stop token).
fn greedy(t: &Trainer) -> Vec<Vec<u32>> {
    let m = &t.model;
    let (adaptor, llm) = (m.adaptor.valid(), m.llm.valid());
    let params = GenerationParams {
        max_new_tokens: 8,
        sampling: Default::default(),
        stop_ids: m.config.llm.eos_ids(),
    };
    (0..t.data.items.len())
        .map(|i| {
            let ex = t.data.examples(m, &[i]).unwrap().remove(0);
            let prompt: Vec<i64> = ex.ids[..t.data.items[i].prompt.len()].to_vec();
            assert!(prompt.contains(&SPEECH_TOKEN_INDEX));
            let speech = adaptor.forward(ex.speech.unsqueeze::<3>()).unwrap();
            let [_, n, h] = speech.dims();
            let embeds = llm
                .splice_speech(&prompt, &[speech.reshape([n, h])])
                .unwrap();
            let mut cache = llm.new_cache();
            let mut g = Generation::start(&llm, &mut cache, embeds, params.clone()).unwrap();
            let mut out = Vec::new();
            while let Some(s) = g.next_step().unwrap() {
                out.push(s.token);
            }
            out
        })
        .collect()
}

#[test]
fn stage1_then_stage2_overfit_three_spoken_questions() {
    let path = manifest();
    let model = TrainModel::load(&fixture("omni_tiny"), &OmniOptions::default()).unwrap();
    let opts = ManifestOptions {
        unit_vocab_size: model.unit_vocab_size(),
        require_units: false,
        strict: true,
    };
    let m = read_manifest(&path, &opts).unwrap();
    let data = Dataset::new(&m, &model.tokenizer, model.config.llm.vocab_size, 3).unwrap();
    let targets: Vec<Vec<u32>> = data.items.iter().map(|t| t.answer.clone()).collect();

    // Stage 1: chunks of 10 steps until every greedy answer is its target.
    let max_steps = 300;
    let mut t = Trainer::new(model, data, config(Stage::One, max_steps, 3e-3)).unwrap();
    assert_ne!(greedy(&t), targets, "the untrained model already answers");
    let mut first = None;
    let mut last = f32::NAN;
    let mut answered = false;
    while t.step_count() < max_steps {
        for _ in 0..10 {
            let r = t.step().unwrap();
            first.get_or_insert(r.loss);
            last = r.loss;
        }
        if greedy(&t) == targets {
            answered = true;
            break;
        }
    }
    let steps1 = t.step_count();
    eprintln!(
        "stage 1: loss {} → {last} in {steps1} steps",
        first.unwrap()
    );
    assert!(answered, "greedy answers {:?} ≠ {targets:?}", greedy(&t));

    // Stage 2 on the stage-1 model: one unit per answer position.
    let mut model = t.model;
    model.adaptor = model.adaptor.valid();
    model.llm = model.llm.valid();
    let mut data = t.data;
    for (i, it) in data.items.iter_mut().enumerate() {
        it.record.units = (0..it.answer.len() as u32)
            .map(|j| 100 * i as u32 + 7 * j + 1)
            .collect();
    }
    let targets2: Vec<Vec<u32>> = data
        .items
        .iter()
        .map(|it| it.record.units.clone())
        .collect();
    // Chunks of 10 steps until every decoded unit sequence is its target.
    let max_steps2 = 400;
    let mut t = Trainer::new(model, data, config(Stage::Two, max_steps2, 1e-2)).unwrap();
    assert_ne!(
        decoded_units(&t),
        targets2,
        "the untrained decoder already speaks"
    );
    let mut losses = Vec::new();
    let mut spoken = false;
    while t.step_count() < max_steps2 {
        for _ in 0..10 {
            losses.push(t.step().unwrap().loss);
        }
        if decoded_units(&t) == targets2 {
            spoken = true;
            break;
        }
    }
    eprintln!(
        "stage 2: CTC loss {} → {} in {} steps",
        losses[0],
        losses[losses.len() - 1],
        t.step_count()
    );
    assert!(
        spoken,
        "decoded units {:?} ≠ {targets2:?}",
        decoded_units(&t)
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// The units the speech decoder reads from each item's answer states (the
/// training positions: labels that are not IGNORE_INDEX), CTC-collapsed.
fn decoded_units(t: &Trainer) -> Vec<Vec<u32>> {
    let m = &t.model;
    let gen = m.speech_generator.valid();
    (0..t.data.items.len())
        .map(|i| {
            let ex = t.data.examples(m, &[i]).unwrap();
            let inputs = llm_inputs(&m.adaptor, &m.llm, &ex).unwrap();
            let hidden = m
                .llm
                .forward(inputs.embeds, &mut m.llm.new_cache())
                .unwrap();
            let [_, len, h] = hidden.dims();
            let pos: Vec<i64> = (0..len)
                .filter(|&p| inputs.labels[0][p] != IGNORE_INDEX)
                .map(|p| p as i64)
                .collect();
            let idx =
                Tensor::<1, Int>::from_data(TensorData::new(pos.clone(), [pos.len()]), &m.device);
            gen.predict(hidden.reshape([len, h]).select(0, idx))
                .unwrap()
                .1
        })
        .collect()
}
