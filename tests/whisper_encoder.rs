//! Golden tests of the Whisper encoder and the speech adaptor against
//! openai-whisper and the reference `EncoderProjectorConcat`
//! (fixtures: tests/reference/ref_whisper.py).
//!
//! Tolerance: max |ours - ref| / max |ref| ≤ 1e-4 in f32. Both sides compute in
//! f32 from the same stored weights; the difference is summation order in
//! GEMMs and attention (≈1e-6 relative per op over a handful of blocks).

mod common;

use common::{fixture, max_rel_err, mean_rel_err, read_arrays};
use omni_core::model::adaptor::{AdaptorConfig, SpeechAdaptor};
use omni_core::model::whisper::{WhisperConfig, WhisperEncoder};
use omni_core::weights::{RunDType, WeightStore};
use omni_core::Device;
use omni_core::Error;

const TOL_F32: f32 = 1e-4;

fn device() -> Device {
    common::test_device()
}

fn to_vec(t: omni_core::burn::tensor::Tensor<3>) -> Vec<f32> {
    t.cast(omni_core::burn::tensor::DType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 data")
}

fn load_openai(path: &str, dtype: RunDType) -> WhisperEncoder {
    let p = fixture(path);
    let cfg = WhisperConfig::from_openai_pt(&p).expect("dims");
    let store = WeightStore::open_pytorch(&p, Some("model_state_dict"))
        .expect("open .pt")
        .sub("encoder.");
    WhisperEncoder::load(&store, &cfg, dtype, &device()).expect("load encoder")
}

fn run(enc: &WhisperEncoder, mel: &common::Array) -> Vec<f32> {
    let x = enc
        .mel_tensor(&mel.data, mel.shape[0], mel.shape[1])
        .expect("mel tensor");
    to_vec(enc.forward(x).expect("forward"))
}

#[test]
fn tiny_openai_pt_matches_reference() {
    let io = read_arrays("whisper/tiny/io.safetensors");
    let enc = load_openai("whisper/tiny/tiny.pt", RunDType::F32);
    assert_eq!(
        enc.config,
        WhisperConfig {
            n_mels: 80,
            n_audio_ctx: 50,
            n_audio_state: 64,
            n_audio_head: 4,
            n_audio_layer: 2
        }
    );
    let out = run(&enc, &io["mel"]);
    let err = max_rel_err(&out, &io["encoder_out"].data);
    assert!(err <= TOL_F32, "tiny encoder rel err {err}");
}

#[test]
fn tiny_hf_safetensors_matches_reference() {
    let io = read_arrays("whisper/tiny_hf/../tiny/io.safetensors");
    let cfg =
        WhisperConfig::from_hf_config(&fixture("whisper/tiny_hf/config.json")).expect("config");
    let store = WeightStore::open_safetensors(fixture("whisper/tiny_hf/model.safetensors"))
        .expect("open")
        .sub("model.encoder.");
    let enc = WhisperEncoder::load(&store, &cfg, RunDType::F32, &device()).expect("load");
    let err = max_rel_err(&run(&enc, &io["mel"]), &io["encoder_out"].data);
    assert!(err <= TOL_F32, "HF-layout encoder rel err {err}");
}

#[test]
fn v3_layer_structure_30s_speech_and_adaptor_match_reference() {
    let io = read_arrays("whisper/v3layers/io.safetensors");
    let enc = load_openai("whisper/v3layers/encoder.pt", RunDType::F32);
    assert_eq!(enc.config.n_mels, 128);
    assert_eq!(enc.config.n_frames(), 3000);
    let mel = &io["mel"];
    assert_eq!(mel.shape, vec![128, 3000]);
    let x = enc.mel_tensor(&mel.data, 128, 3000).unwrap();
    let out = enc.forward(x).unwrap();
    assert_eq!(out.dims(), [1, 1500, 128]);
    let err = max_rel_err(&to_vec(out.clone()), &io["encoder_out"].data);
    assert!(err <= TOL_F32, "encoder rel err {err}");

    let omni_dir = fixture("whisper/v3layers/omni");
    let acfg = AdaptorConfig::from_config_json(&omni_dir.join("config.json")).unwrap();
    let store = WeightStore::open_safetensors(omni_dir.join("model.safetensors")).unwrap();
    let ad = SpeechAdaptor::load(
        &store,
        "model.speech_projector.",
        &acfg,
        RunDType::F32,
        &device(),
    )
    .unwrap();
    let y = ad.forward(out.clone()).unwrap();
    assert_eq!(y.dims(), [1, 300, 64]);
    let err = max_rel_err(&to_vec(y), &io["adaptor_out"].data);
    assert!(err <= TOL_F32, "adaptor rel err {err}");

    // 1499 frames: the reference drops the 4 trailing frames.
    let y = ad.forward(out.slice([0..1, 0..1499, 0..128])).unwrap();
    assert_eq!(y.dims(), [1, 299, 64]);
    let err = max_rel_err(&to_vec(y), &io["adaptor_out_1499"].data);
    assert!(err <= TOL_F32, "adaptor (1499 frames) rel err {err}");
}

#[test]
fn encoder_copy_inside_omni_shards_loads_with_inferred_dims() {
    // The LLaMA-Omni safetensors may carry the encoder as `model.speech_encoder.*`
    // (openai key names, no `dims`): the dimensions are inferred from shapes.
    let io = read_arrays("whisper/v3layers/io.safetensors");
    let store = WeightStore::open_safetensors(fixture("whisper/v3layers/omni/model.safetensors"))
        .unwrap()
        .sub("model.speech_encoder.");
    let layout = omni_core::model::whisper::WhisperKeyLayout::detect(&store).expect("layout");
    let cfg = layout.infer_config(&store).unwrap();
    assert_eq!(
        cfg,
        WhisperConfig {
            n_mels: 128,
            n_audio_ctx: 1500,
            n_audio_state: 128,
            n_audio_head: 2,
            n_audio_layer: 4
        }
    );
    let enc = WhisperEncoder::load(&store, &cfg, RunDType::F32, &device()).unwrap();
    let err = max_rel_err(&run(&enc, &io["mel"]), &io["encoder_out"].data);
    assert!(err <= TOL_F32, "rel err {err}");
}

#[test]
fn f16_weights_on_cpu_track_f32_reference() {
    // F16 run dtype: f16 weights; the activations in f16 on wgpu (LayerNorm
    // accumulated in f32, as the reference runs the encoder in fp16) and in f32 on the
    // CPU (`WeightStore::activations`, as the LLM). f16 has a 2^-11 ≈ 4.9e-4 unit
    // roundoff; over 4 blocks of 128-wide GEMMs we allow 2e-2 relative to the
    // output scale, and require a mean error 10x below that.
    let io = read_arrays("whisper/v3layers/io.safetensors");
    if !device().supports_dtype(omni_core::burn::tensor::DType::F16) {
        // A wgpu adapter without SHADER_F16 (lavapipe has it): F16 must be refused
        // at load with a device error, not panic later in a kernel.
        let p = fixture("whisper/v3layers/encoder.pt");
        let cfg = WhisperConfig::from_openai_pt(&p).unwrap();
        let store = WeightStore::open_pytorch(&p, Some("model_state_dict"))
            .unwrap()
            .sub("encoder.");
        match WhisperEncoder::load(&store, &cfg, RunDType::F16, &device()) {
            Err(Error::Device { reason, .. }) => assert!(reason.contains("F16"), "{reason}"),
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("F16 loaded on a device without F16"),
        }
        return;
    }
    let enc = load_openai("whisper/v3layers/encoder.pt", RunDType::F16);
    let out = run(&enc, &io["mel"]);
    let refv = &io["encoder_out"].data;
    let err = max_rel_err(&out, refv);
    let mean = mean_rel_err(&out, refv);
    assert!(err <= 2e-2, "f16 max rel err {err}");
    assert!(mean <= 2e-3, "f16 mean rel err {mean}");
}

#[test]
fn perturbed_reference_is_detected() {
    // The comparison is sharp enough to see a single changed value.
    let io = read_arrays("whisper/tiny/io.safetensors");
    let enc = load_openai("whisper/tiny/tiny.pt", RunDType::F32);
    let out = run(&enc, &io["mel"]);
    let mut refv = io["encoder_out"].data.clone();
    refv[17] += 1e-2 * refv.iter().fold(0f32, |m, x| m.max(x.abs()));
    assert!(max_rel_err(&out, &refv) > TOL_F32);
}

#[test]
fn missing_key_and_bad_shape_are_named() {
    let p = fixture("whisper/tiny/tiny.pt");
    let cfg = WhisperConfig::from_openai_pt(&p).unwrap();
    let store = WeightStore::open_pytorch(&p, Some("model_state_dict"))
        .unwrap()
        .sub("encoder.");
    // A config that disagrees with the weights: an error naming key and shapes.
    let wrong = WhisperConfig {
        n_audio_state: 96,
        n_audio_head: 4,
        ..cfg.clone()
    };
    match WhisperEncoder::load(&store, &wrong, RunDType::F32, &device()) {
        Err(Error::ShapeMismatch { key, found, .. }) => {
            assert!(
                key.contains("attn_ln.weight") || key.contains("conv1"),
                "{key}"
            );
            assert!(found.contains(&64));
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    // Too many layers: the missing block is named.
    let more = WhisperConfig {
        n_audio_layer: 3,
        ..cfg
    };
    match WhisperEncoder::load(&store, &more, RunDType::F32, &device()) {
        Err(Error::MissingKey { key, path }) => {
            assert!(key.starts_with("blocks.2."), "{key}");
            assert!(path.ends_with("tiny.pt"));
        }
        other => panic!("expected a missing-key error, got {other:?}"),
    }
}

#[test]
fn truncated_and_foreign_checkpoints_give_errors() {
    let dir = std::env::temp_dir().join(format!("omni-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A safetensors file cut in half.
    let bytes = std::fs::read(fixture("whisper/tiny_hf/model.safetensors")).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = WeightStore::open_safetensors(&cut).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("cut.safetensors") && msg.contains("truncated"),
        "{msg}"
    );
    // A .pt cut in half.
    let bytes = std::fs::read(fixture("whisper/tiny/tiny.pt")).unwrap();
    let cut = dir.join("cut.pt");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let r = WeightStore::open_pytorch(&cut, Some("model_state_dict"))
        .and_then(|s| s.sub("encoder.").read_f32("conv1.weight", &[64, 80, 3]));
    assert!(r.is_err(), "a truncated .pt must not load");
    assert!(r.unwrap_err().to_string().contains("cut.pt"));
    // Not a checkpoint at all.
    let junk = dir.join("junk.pt");
    std::fs::write(&junk, b"hello").unwrap();
    assert!(WeightStore::open_pytorch(&junk, None).is_err());
    assert!(WhisperConfig::from_openai_pt(&junk).is_err());
    // Missing file.
    match WeightStore::open_safetensors(dir.join("nope.safetensors")) {
        Err(Error::MissingFile { path, .. }) => assert!(path.ends_with("nope.safetensors")),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_mel_input_is_an_error() {
    let enc = load_openai("whisper/tiny/tiny.pt", RunDType::F32);
    assert!(enc.mel_tensor(&[0.0; 10], 80, 100).is_err());
    assert!(enc.mel_tensor(&vec![0.0; 128 * 100], 128, 100).is_err());
    let too_long = enc.mel_tensor(&vec![0.0; 80 * 102], 80, 102).unwrap();
    assert!(enc.forward(too_long).is_err());
}

/// On the CPU the encoder runs on host buffers (`whisper::host`: the convolution
/// stem as im2col GEMMs, LayerNorm, attention and the residual adds on reused
/// buffers); burn's step-by-step forward of the same module is its definition.
/// Both agree within 1e-5 of the output scale (the same f32 products in another
/// summation order: the convolutions as GEMMs of 3·c_in terms) for f32 and f16
/// weights, frame counts at the stem's edges (1, 2, an odd 7, an odd 99, the full
/// window) and a batch of two different inputs. Off the CPU there is no host path.
#[test]
fn cpu_host_path_matches_burn_forward_for_short_odd_and_batched_inputs() {
    use omni_core::burn::tensor::{Tensor, TensorData};
    for dtype in [RunDType::F32, RunDType::F16] {
        let enc = load_openai("whisper/v3layers/encoder.pt", dtype);
        if device() != Device::flex() {
            assert!(enc.host.is_none(), "host path off the CPU");
            return;
        }
        assert!(enc.host.is_some(), "{dtype:?}: no host path on the CPU");
        let mut burn_only = enc.clone();
        burn_only.host = None;
        let n_mels = enc.config.n_mels;
        for frames in [1usize, 2, 7, 99, enc.config.n_frames()] {
            let mel: Vec<f32> = (0..2 * n_mels * frames)
                .map(|i| ((i as f32 * 0.37).sin() + (i % 11) as f32 * 0.05) * 0.8)
                .collect();
            let x = Tensor::<3>::from_data(TensorData::new(mel, [2, n_mels, frames]), &device())
                .cast(enc.dtype.burn());
            let host = enc.forward(x.clone()).expect("host forward");
            let t = (frames - 1) / 2 + 1;
            assert_eq!(host.dims(), [2, t, enc.config.n_audio_state]);
            let (host, want) = (to_vec(host), to_vec(burn_only.forward(x).expect("burn")));
            let err = max_rel_err(&host, &want);
            assert!(err <= 1e-5, "{dtype:?}, {frames} frames: rel err {err}");
            let half = host.len() / 2;
            assert!(
                max_rel_err(&host[..half], &host[half..]) > 1e-3,
                "the batch's two inputs gave one output"
            );
        }
    }
}

/// A q8_0 / q4_0 run quantizes the LLM's and speech decoder's layers; on the CPU
/// the encoder keeps f16 weights (half the memory of f32; Whisper's published
/// weights are f16) with f32 activations, and tracks the f32 reference within the
/// f16 run's bounds (2e-2 of the output scale at most, 2e-3 on average). Off the
/// CPU it stays f32 (tight f32 tolerance).
#[test]
fn quantized_runs_keep_the_encoder_in_f16_on_the_cpu() {
    use omni_core::kernels::Format;
    let io = read_arrays("whisper/v3layers/io.safetensors");
    let refv = &io["encoder_out"].data;
    for dtype in [RunDType::Q8_0, RunDType::Q4_0] {
        let enc = load_openai("whisper/v3layers/encoder.pt", dtype);
        let format = enc.blocks[0].fc1.weight_matrix().map(|w| w.format());
        let out = run(&enc, &io["mel"]);
        let err = max_rel_err(&out, refv);
        if device() == Device::flex() {
            assert_eq!(format, Some(Format::F16), "{dtype:?}: encoder weights");
            let mean = mean_rel_err(&out, refv);
            assert!(
                err <= 2e-2 && mean <= 2e-3,
                "{dtype:?}: max {err}, mean {mean}"
            );
        } else {
            assert!(err <= TOL_F32, "{dtype:?} off the CPU: rel err {err}");
        }
    }
}
