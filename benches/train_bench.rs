//! One training step of each stage, the omni half of `scripts/bench_train.sh`
//! (the PyTorch half is `scripts/bench_train_torch.py`, which also writes the
//! model and the batch both sides read: `OMNI_TRAIN_BENCH_DIR`). Step = the
//! stage's loss forward + backward, global-norm clipping at 1, AdamW
//! (`stage1_step` / `stage2_step`), f32. One warm-up step, then
//! `OMNI_TRAIN_BENCH_RUNS` (default 3) timed; one JSON line per stage on stdout.
//! `OMNI_TRAIN_BENCH_STAGES` (default `1,2`); `OMNI_TRAIN_BENCH_DTYPE` (default
//! `f32`; `bf16`/`f16` load the trained modules in that dtype, to see whether
//! low-precision training runs on `flex`: a failure is reported as a JSON line).
//!
//! Alone: `cargo bench --features train --bench train_bench` with the folder made by
//! `python scripts/bench_train_torch.py make DIR`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use omni_core::burn::module::Module;
use omni_core::burn::tensor::{Tensor, TensorData};
use omni_core::model::adaptor::{AdaptorConfig, SpeechAdaptor};
use omni_core::model::llama::{Llama, OmniConfig};
use omni_core::model::speech_decoder::{CtcDecoderConfig, SpeechGenerator};
use omni_core::train::{stage1_step, stage2_step, AdamW, AdamWConfig, Example, StepConfig};
use omni_core::weights::{RunDType, WeightStore};
use omni_core::Device;
use serde_json::json;

fn read_batch(path: &PathBuf) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).expect("batch.safetensors");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            let raw = v.data();
            let data = match v.dtype() {
                safetensors::Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                safetensors::Dtype::I64 => raw
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                d => panic!("{name}: {d:?}"),
            };
            (name, (v.shape().to_vec(), data))
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let dir = PathBuf::from(
        std::env::var("OMNI_TRAIN_BENCH_DIR").unwrap_or("/tmp/omni_train_bench".into()),
    );
    let runs: usize = std::env::var("OMNI_TRAIN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let stages: Vec<u8> = std::env::var("OMNI_TRAIN_BENCH_STAGES")
        .unwrap_or("1,2".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let dtype_name = std::env::var("OMNI_TRAIN_BENCH_DTYPE").unwrap_or("f32".into());
    let dtype = RunDType::parse(&dtype_name).expect("OMNI_TRAIN_BENCH_DTYPE: f32, bf16 or f16");
    let dev = Device::flex();
    let model = dir.join("model");
    let cfg_path = model.join("config.json");
    let cfg = OmniConfig::from_file(&cfg_path).unwrap();
    let store = WeightStore::open_hf_dir(&model).unwrap().dense_only();
    let acfg = AdaptorConfig::from_config_json(&cfg_path).unwrap();
    let adaptor =
        SpeechAdaptor::load(&store, "model.speech_projector.", &acfg, dtype, &dev).unwrap();
    let llm = Llama::load(&store, &cfg.llm, dtype, &dev, None).unwrap();
    let ccfg = CtcDecoderConfig::from_omni(&cfg, &cfg_path).unwrap();
    let gen =
        SpeechGenerator::load(&store, "speech_generator.", &cfg.llm, &ccfg, dtype, &dev).unwrap();
    let b = read_batch(&dir.join("batch.safetensors"));
    let (shape, enc) = &b["enc_outs"];
    let (n, frames, c) = (shape[0], shape[1], shape[2]);
    let batch: Vec<Example> = (0..n)
        .map(|i| {
            let ints = |k: &str| -> Vec<i64> {
                b[&format!("{k}.{i}")].1.iter().map(|&x| x as i64).collect()
            };
            Example {
                ids: ints("ids"),
                labels: ints("labels"),
                speech: Tensor::from_data(
                    TensorData::new(
                        enc[i * frames * c..(i + 1) * frames * c].to_vec(),
                        [frames, c],
                    ),
                    &dev,
                ),
                units: ints("units").into_iter().map(|u| u as u32).collect(),
            }
        })
        .collect();
    let micro = vec![batch];
    let step = StepConfig {
        lr: 1e-5,
        max_grad_norm: Some(1.0),
    };
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_default();
    for stage in stages {
        let mut opt = AdamW::new(AdamWConfig::default());
        let (mut times, mut losses) = (Vec::new(), Vec::new());
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match stage {
            1 => {
                let (mut a, mut l) = (adaptor.clone().train(), llm.clone().train());
                for r in 0..=runs {
                    let t0 = Instant::now();
                    let (na, nl, s) =
                        stage1_step(a, l, &micro, &mut opt, &step).expect("stage 1 step");
                    (a, l) = (na, nl);
                    let dt = t0.elapsed().as_secs_f64();
                    losses.push(s.loss);
                    if r > 0 {
                        times.push(dt);
                    }
                }
            }
            _ => {
                let mut g = gen.clone().train();
                for r in 0..=runs {
                    let t0 = Instant::now();
                    let (ng, s) = stage2_step(g, &adaptor, &llm, &micro, &mut opt, &step)
                        .expect("stage 2 step");
                    g = ng;
                    let dt = t0.elapsed().as_secs_f64();
                    losses.push(s.loss);
                    if r > 0 {
                        times.push(dt);
                    }
                }
            }
        }));
        if let Err(e) = run {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            println!(
                "{}",
                json!({"side": "omni", "stage": stage, "dtype": dtype_name, "failed": why})
            );
            continue;
        }
        println!(
            "{}",
            json!({"side": "omni", "stage": stage, "runs": runs, "median_s": median(times.clone()),
                   "times_s": times, "first_loss": losses[0], "layers": cfg.llm.num_hidden_layers,
                   "threads": threads, "dtype": dtype_name})
        );
    }
}
