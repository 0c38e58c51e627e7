//! LoRA for stage 1 on the tiny model and the golden batch (tests/fixtures/train_tiny):
//! with `B = 0` the model is the base model (same loss); after steps only the
//! LoRA factors and the adaptor have moved; the merged export (published
//! names, no LoRA tensors) computes the LoRA model's logits.
//!
//! Build: `cargo test --release --features train --test training_lora`.

mod common;

use std::collections::HashMap;

use common::max_rel_err;
use common::train_tiny::{dev, load_adaptor, load_llm, tiny, Tiny};
use omni_core::burn::module::Module;
use omni_core::burn::tensor::{Tensor, TensorData};
use omni_core::model::adaptor::SpeechAdaptor;
use omni_core::model::llama::Llama;
use omni_core::train::{
    add_lora, llm_inputs, lm_loss, merge_lora, named_values, stage1_step, AdamW, AdamWConfig,
    Example, LoraConfig, StepConfig,
};

/// The golden batch's examples (as tests/training_loop.rs reads them).
fn examples(t: &Tiny) -> Vec<Example> {
    let g = &t.g;
    let enc = &g["enc_outs"];
    let (b, t_max, c) = (enc.shape[0], enc.shape[1], enc.shape[2]);
    (0..b)
        .map(|i| {
            let frames = g["frames"].data[i] as usize;
            let rows = enc.data[i * t_max * c..(i * t_max + frames) * c].to_vec();
            let ids = |k: &str| -> Vec<i64> {
                g[&format!("{k}.{i}")]
                    .data
                    .iter()
                    .map(|&x| x as i64)
                    .collect()
            };
            Example {
                ids: ids("ids"),
                labels: ids("labels"),
                speech: Tensor::from_data(TensorData::new(rows, [frames, c]), &dev()),
                units: Vec::new(),
            }
        })
        .collect()
}

fn scalar(x: Tensor<1>) -> f32 {
    x.into_data().try_to_vec::<f32>().unwrap()[0]
}

fn loss(a: &SpeechAdaptor, l: &Llama, ex: &[Example]) -> f32 {
    let inputs = llm_inputs(a, l, ex).unwrap();
    let h = l.forward(inputs.embeds, &mut l.new_cache()).unwrap();
    scalar(lm_loss(l, h, &inputs.labels).unwrap())
}

fn logits(a: &SpeechAdaptor, l: &Llama, ex: &[Example]) -> Vec<f32> {
    let inputs = llm_inputs(a, l, ex).unwrap();
    let h = l.forward(inputs.embeds, &mut l.new_cache()).unwrap();
    l.logits(h).into_data().try_to_vec::<f32>().unwrap()
}

const LORA: LoraConfig = LoraConfig {
    rank: 4,
    alpha: 8.0,
};

#[test]
fn lora_starts_as_the_base_model_trains_only_its_factors_and_merges_exactly() {
    let t = tiny();
    let ex = examples(&t);
    let (a0, base) = (load_adaptor(&t), load_llm(&t));
    let with = add_lora(load_llm(&t), &LORA).unwrap();
    // B = 0: the same function, so the same loss.
    let (l0, l1) = (loss(&a0, &base, &ex), loss(&a0, &with, &ex));
    assert!((l0 - l1).abs() <= 1e-6 * l0.abs(), "{l0} vs {l1}");
    let names: Vec<String> = named_values(&with, "model.")
        .into_iter()
        .map(|n| n.name)
        .collect();
    // 7 projections per layer, A and B each.
    let n_lora = names.iter().filter(|n| n.contains(".lora.")).count();
    assert_eq!(n_lora, 2 * 7 * t.cfg.llm.num_hidden_layers, "{names:?}");

    // Steps: only the LoRA factors (of the LLM) and the adaptor move.
    let (mut a, mut l) = (a0.clone().train(), with.train());
    let mut opt = AdamW::new(AdamWConfig::default());
    let cfg = StepConfig {
        lr: 1e-2,
        max_grad_norm: Some(1.0),
    };
    let data = vec![ex[..2].to_vec(), ex[2..].to_vec()];
    let mut losses = Vec::new();
    for _ in 0..4 {
        let (na, nl, s) = stage1_step(a, l, &data, &mut opt, &cfg).unwrap();
        (a, l) = (na, nl);
        losses.push(s.loss);
    }
    assert!(
        losses[3] < losses[0],
        "LoRA training lowers the loss: {losses:?}"
    );
    let before: HashMap<String, Vec<f32>> = named_values(&base, "model.")
        .into_iter()
        .map(|n| (n.name, n.data))
        .collect();
    for n in named_values(&l, "model.") {
        match before.get(&n.name) {
            Some(b) => assert_eq!(&n.data, b, "{}: a base weight moved", n.name),
            None if n.name.ends_with(".lora.b") => {
                assert!(n.data.iter().any(|&x| x != 0.0), "{}: B stayed 0", n.name)
            }
            None => assert!(n.name.ends_with(".lora.a"), "{}", n.name),
        }
    }
    let (ab, aa) = (named_values(&a0, "m."), named_values(&a, "m."));
    assert!(
        ab.iter().zip(&aa).all(|(x, y)| x.data != y.data),
        "adaptor trains"
    );

    // The merged model: the published names only, and the LoRA model's logits.
    let merged = merge_lora(&l);
    let merged_names: Vec<String> = named_values(&merged, "model.")
        .into_iter()
        .map(|n| n.name)
        .collect();
    let base_names: Vec<String> = named_values(&base, "model.")
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(merged_names, base_names);
    let (a, l) = (a.valid(), l.valid());
    let (x, y) = (logits(&a, &l, &ex), logits(&a, &merged, &ex));
    let err = max_rel_err(&y, &x);
    assert!(err < 1e-4, "merged logits differ: {err:e}");
    // And the merge changed the weights (the comparison is not trivially the base model).
    let z = logits(&a, &base, &ex);
    assert!(max_rel_err(&z, &x) > 1e-3, "LoRA changed nothing");
}
