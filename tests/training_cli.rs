//! `omni train` through the example binary, on the tiny model: the log, the
//! checkpoints (the final one loads in `Omni::load`), skipped manifest lines
//! reported, an interrupt (Ctrl-C, and the deterministic test hook) saving a
//! checkpoint that `--resume` continues to the same weights as an
//! uninterrupted run.
//!
//! The binary must be built with the feature (cargo does not build examples for
//! `--test` runs): `cargo build --release --features train --example omni &&
//! cargo test --release --features train --test training_cli`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fixture;
use omni_core::burn::tensor::Device;
use omni_core::model::llama::{Llama, OmniConfig};
use omni_core::model::speech_decoder::{CtcDecoderConfig, SpeechGenerator};
use omni_core::train::named_values;
use omni_core::weights::{RunDType, WeightStore};
use omni_core::{Omni, OmniOptions};

/// The `omni` example binary cargo built next to this test (as tests/turns.rs).
fn omni_cli() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("examples").join("omni");
    assert!(
        p.is_file(),
        "{} not built: cargo build --release --features train --example omni",
        p.display()
    );
    p
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("omni-train-cli-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Three questions (plus one bad line when `bad`), units for stage 2.
fn manifest(dir: &Path, bad: bool) -> PathBuf {
    let mut lines: Vec<String> = ["Four.", "Red.", "Yes."]
        .iter()
        .enumerate()
        .map(|(i, a)| {
            format!(
                r#"{{"speech": "{}", "answer": "{a}", "units": [{}, 5, 9]}}"#,
                fixture(&format!("train_speech/q{}.wav", i + 1)).display(),
                i + 1
            )
        })
        .collect();
    if bad {
        lines.insert(
            1,
            r#"{"speech": "missing.wav", "answer": "x", "units": [1]}"#.into(),
        );
    }
    let p = dir.join("train.jsonl");
    std::fs::write(&p, lines.join("\n")).unwrap();
    p
}

fn train(args: &[&str], dir: &Path, env: Option<(&str, &str)>) -> Output {
    let mut c = Command::new(omni_cli());
    c.arg("train")
        .arg("--model")
        .arg(fixture("omni_tiny"))
        .arg("--quiet")
        .args(args)
        .current_dir(dir);
    if let Some((k, v)) = env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("needs the `train` feature"),
        "rebuild: cargo build --release --features train --example omni"
    );
    out
}

fn as_str(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn log_lines(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("train_log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn stage1_logs_each_step_saves_checkpoints_and_omni_loads_the_result() {
    let d = tempdir("stage1");
    let data = manifest(&d, true);
    let out = d.join("out");
    let o = train(
        &[
            "--stage",
            "1",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--steps",
            "3",
            "--batch",
            "2",
            "--lr",
            "1e-3",
            "--warmup",
            "1",
            "--eval-every",
            "2",
            "--eval-data",
            data.to_str().unwrap(),
            "--save-every",
            "2",
        ],
        &d,
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "omni train failed: {err}");
    // The bad line is reported with its line number, not dropped silently.
    assert!(err.contains("skipped 1 of 4"), "{err}");
    assert!(err.contains("train.jsonl:2: speech file"), "{err}");

    let log = log_lines(&out);
    assert_eq!(log.len(), 3);
    for (i, l) in log.iter().enumerate() {
        assert_eq!(l["step"], i as u64 + 1);
        for k in ["loss", "lr", "grad_norm", "seconds"] {
            assert!(l[k].as_f64().unwrap().is_finite(), "{k}: {l}");
        }
        assert!(l["tokens"].as_u64().unwrap() > 0);
        // Eval every 2 steps only.
        assert_eq!(l.get("eval_loss").is_some(), i == 1, "{l}");
    }
    // Warmup 1 of 3: lr 0, then the peak, then the cosine's half way.
    let lr: Vec<f64> = log.iter().map(|l| l["lr"].as_f64().unwrap()).collect();
    assert_eq!(lr[0], 0.0);
    assert!(
        (lr[1] - 1e-3).abs() < 1e-12 && (lr[2] - 5e-4).abs() < 1e-12,
        "{lr:?}"
    );

    assert!(out
        .join("checkpoint-2/model.safetensors.index.json")
        .is_file());
    assert!(out.join("checkpoint-2/train_position.json").is_file());

    // The output is a model folder `omni` loads; the LLM moved, the speech decoder did not.
    let omni = Omni::load(&out, fixture("vocoder/tiny"), &OmniOptions::default(), None)
        .expect("omni loads the trained model");
    let cfg = OmniConfig::from_file(&fixture("omni_tiny/config.json")).unwrap();
    // Burn layers on both sides (`dense_only`), whose parameters `named_values` lists.
    let llm = |dir: &Path| {
        let store = WeightStore::open_hf_dir(dir).unwrap().dense_only();
        Llama::load(&store, &cfg.llm, RunDType::F32, omni.device(), None).unwrap()
    };
    let (before, after) = (llm(&fixture("omni_tiny")), llm(&out));
    let (a, b) = (
        named_values(&before, "model."),
        named_values(&after, "model."),
    );
    assert_eq!(a.len(), b.len());
    let moved = a.iter().zip(&b).filter(|(x, y)| x.data != y.data).count();
    assert_eq!(moved, a.len(), "every LLM tensor trains in stage 1");
    let (g0, g1) = (generator_of(&fixture("omni_tiny")), generator_of(&out));
    assert_eq!(g0.len(), g1.len());
    assert!(g0.iter().zip(&g1).all(|(x, y)| x.data == y.data));
    let _ = std::fs::remove_dir_all(&d);
}

/// The speech decoder's parameters in the model folder `dir`, through burn layers
/// (`dense_only`: omni's own CPU layers are omni-kernels matrices `named_values`
/// does not list), its projections included.
fn generator_of(dir: &Path) -> Vec<omni_core::train::NamedTensor> {
    let cfg_path = dir.join("config.json");
    let cfg = OmniConfig::from_file(&cfg_path).unwrap();
    let c = CtcDecoderConfig::from_omni(&cfg, &cfg_path).unwrap();
    let store = WeightStore::open_hf_dir(dir).unwrap().dense_only();
    let gen = SpeechGenerator::load(
        &store,
        "speech_generator.",
        &cfg.llm,
        &c,
        RunDType::F32,
        &Device::flex(),
    )
    .unwrap();
    let v = named_values(&gen, "speech_generator.");
    assert!(v.iter().any(|t| t.name.contains("input_proj")), "{dir:?}");
    v
}

#[test]
fn stage2_interrupted_then_resumed_ends_where_an_uninterrupted_run_ends() {
    let d = tempdir("resume");
    let data = manifest(&d, false);
    let args = |out: &Path| -> Vec<String> {
        [
            "--stage",
            "2",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--steps",
            "6",
            "--batch",
            "1",
            "--accum",
            "2",
            "--lr",
            "1e-2",
            "--seed",
            "5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };

    let straight = d.join("straight");
    let o = train(&as_str(&args(&straight)), &d, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Interrupted during step 2 (the Ctrl-C path, triggered by the test hook).
    let out = d.join("out");
    let o = train(
        &as_str(&args(&out)),
        &d,
        Some(("OMNI_TRAIN_STOP_AFTER", "2")),
    );
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(log_lines(&out).len(), 2);
    let pos: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("train_position.json")).unwrap())
            .unwrap();
    assert_eq!(pos["step"], 2);
    assert_eq!(pos["batches_done"], 4);

    let mut resume = args(&out);
    resume.extend(["--resume".to_string(), out.to_str().unwrap().to_string()]);
    let o = train(&as_str(&resume), &d, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = log_lines(&out);
    let steps: Vec<u64> = log.iter().map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5, 6]);
    // Same batches, same f32 operations: the same losses and weights as the straight run.
    let straight_log = log_lines(&straight);
    for (a, b) in log.iter().zip(&straight_log) {
        assert_eq!(a["loss"], b["loss"], "step {}", a["step"]);
    }
    let (a, b) = (generator_of(&straight), generator_of(&out));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.data, y.data, "{}", x.name);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn ctrl_c_saves_a_resumable_checkpoint_and_exits_130() {
    let d = tempdir("sigint");
    let data = manifest(&d, false);
    let out = d.join("out");
    let mut child = Command::new(omni_cli())
        .arg("train")
        .arg("--model")
        .arg(fixture("omni_tiny"))
        .args([
            "--quiet", "--stage", "2", "--steps", "100000", "--batch", "3", "--data",
        ])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first logged step, then SIGINT.
    let log = out.join("train_log.jsonl");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&log).map_or(true, |s| s.lines().count() == 0) {
        assert!(
            t0.elapsed().as_secs() < 120,
            "no step logged in 120 s (status {:?})",
            child.try_wait()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let pos: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("train_position.json")).unwrap())
            .unwrap();
    // The saved step is the last logged one.
    assert_eq!(pos["step"].as_u64().unwrap(), log_lines(&out).len() as u64);
    assert!(!generator_of(&out).is_empty());
    let _ = std::fs::remove_dir_all(&d);
}
