//! Golden tests of the unit HiFi-GAN vocoder against fairseq's own `CodeGenerator`
//! (fixtures: tests/reference/ref_vocoder.py), and of chunked streaming.
//!
//! Tolerance: max |ours - ref| / max |ref| ≤ 1e-4 in f32. Both sides run in f32 from
//! the same stored weights; the differences are summation order in the convolutions
//! (~1e-6 relative per op over ~50 conv layers) and the weight-norm fold (f64 here,
//! f32 in torch). The durations are integers and must be identical.

mod common;

use std::sync::Arc;

use common::{fixture, max_rel_err, read_arrays};
use omni_core::model::vocoder::{
    ChunkBoundary, CodeHiFiGan, OverlapParams, StreamConfig, VocoderConfig, VocoderStream,
};
use omni_core::weights::WeightStore;
use omni_core::Device;
use omni_core::Error;
use omni_core::Streaming;

const TOL_F32: f32 = 1e-4;

fn device() -> Device {
    common::test_device()
}

fn tiny() -> CodeHiFiGan {
    CodeHiFiGan::load(fixture("vocoder/tiny"), &device()).expect("load tiny vocoder")
}

fn ids(a: &common::Array) -> Vec<u32> {
    a.data.iter().map(|&x| x as u32).collect()
}

fn sizes(a: &common::Array) -> Vec<usize> {
    a.data.iter().map(|&x| x as usize).collect()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("omni-vocoder-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn config_reads_published_format() {
    let cfg = VocoderConfig::from_json_file(&fixture("vocoder/tiny/config.json")).unwrap();
    assert_eq!(cfg.upsample_rates, vec![5, 4, 4, 2, 2]);
    assert_eq!(cfg.upsample_kernel_sizes, vec![11, 8, 8, 4, 4]);
    assert_eq!(cfg.resblock_kernel_sizes, vec![3, 7, 11]);
    assert_eq!(cfg.num_embeddings, 1000);
    assert_eq!(cfg.samples_per_frame(), Some(320));
    assert_eq!(cfg.sampling_rate, 16000);
    assert_eq!(
        cfg.dur_predictor_params
            .as_ref()
            .unwrap()
            .var_pred_kernel_size,
        3
    );
}

#[test]
fn durations_match_fairseq() {
    let io = read_arrays("vocoder/tiny/io.safetensors");
    let voc = tiny();
    let d = voc.durations(&ids(&io["units"])).unwrap();
    assert_eq!(d, sizes(&io["durations"]));
    assert!(
        d.contains(&1) && d.iter().any(|&x| x >= 3),
        "fixture durations should vary: {d:?}"
    );
    let d = voc.durations(&ids(&io["units_long"])).unwrap();
    assert_eq!(d, sizes(&io["durations_long"]));
    let log_dur = voc.log_durations(&ids(&io["units"])).unwrap();
    let err = max_rel_err(&log_dur, &io["log_dur"].data);
    assert!(err <= TOL_F32, "log-duration rel err {err}");
}

#[test]
fn waveform_matches_fairseq() {
    let io = read_arrays("vocoder/tiny/io.safetensors");
    let voc = tiny();
    let wav = voc.synthesize(&ids(&io["units"])).unwrap();
    let expected = &io["wav"].data;
    let total: usize = sizes(&io["durations"]).iter().sum();
    assert_eq!(wav.len(), total * 320);
    assert_eq!(wav.len(), expected.len());
    let err = max_rel_err(&wav, expected);
    println!("vocoder waveform max rel err vs fairseq: {err:.3e}");
    assert!(err <= TOL_F32, "waveform rel err {err}");
}

#[test]
fn folded_checkpoint_and_explicit_paths_load_too() {
    let io = read_arrays("vocoder/tiny/io.safetensors");
    let units = ids(&io["units"]);
    // Weights already folded by `remove_weight_norm()` (plain `weight` keys).
    let folded = CodeHiFiGan::load(fixture("vocoder/tiny_folded"), &device()).unwrap();
    let err = max_rel_err(&folded.synthesize(&units).unwrap(), &io["wav"].data);
    assert!(err <= TOL_F32, "folded checkpoint rel err {err}");
    // The checkpoint file itself, and explicit checkpoint + config paths.
    let by_file = CodeHiFiGan::load(fixture("vocoder/tiny/g_00500000"), &device()).unwrap();
    assert_eq!(by_file.durations(&units).unwrap(), sizes(&io["durations"]));
    let explicit = CodeHiFiGan::load_files(
        &fixture("vocoder/tiny/g_00500000"),
        &fixture("vocoder/tiny_folded/config.json"),
        &device(),
    )
    .unwrap();
    let err = max_rel_err(
        &explicit.synthesize(&units[..5]).unwrap(),
        &by_file.synthesize(&units[..5]).unwrap(),
    );
    assert!(err <= 1e-6, "{err}");
}

#[test]
fn reference_chunk_mode_reproduces_reference() {
    let io = read_arrays("vocoder/tiny/io.safetensors");
    let units = ids(&io["units"]);
    let chunk = sizes(&io["chunk_sizes"]);
    assert_eq!(chunk, vec![12, 12, 6]);
    let voc = tiny();
    let mut s = VocoderStream::new(&voc, StreamConfig::reference(12)).unwrap();
    let mut out = Vec::new();
    let a = s.push(&units[..12]).unwrap();
    assert!(!a.is_empty(), "a full chunk is vocoded at once");
    out.extend(a);
    out.extend(s.push(&units[12..24]).unwrap());
    assert!(s.push(&units[24..]).unwrap().is_empty(), "6 < Ω units wait");
    out.extend(s.flush().unwrap());
    assert_eq!(out.len(), io["wav_chunks"].data.len());
    let err = max_rel_err(&out, &io["wav_chunks"].data);
    assert!(err <= TOL_F32, "reference chunk mode rel err {err}");
    assert_eq!(s.samples_emitted(), out.len());
    assert_eq!(s.units_pushed(), 30);
}

#[test]
fn first_chunk_has_its_own_size_then_omega() {
    let io = read_arrays("vocoder/tiny/io.safetensors");
    let units = ids(&io["units"]);
    let voc = tiny();
    // Reference joins (no look-ahead) make the gate visible unit by unit.
    let cfg = StreamConfig::reference(12).with_first_chunk(4);
    let mut s = VocoderStream::new(&voc, cfg).unwrap();
    let mut sizes = Vec::new();
    for (i, u) in units.iter().enumerate() {
        if !s.push(std::slice::from_ref(u)).unwrap().is_empty() {
            sizes.push(i + 1);
        }
    }
    // Audio after unit 4, then after every 12 more.
    assert_eq!(sizes, vec![4, 16, 28], "chunk ends");
    // The independent chunks are [0..4], [4..16], [16..28], [28..30]: the same audio
    // as vocoding those chunks alone.
    let mut whole = Vec::new();
    for r in [0..4, 4..16, 16..28, 28..30] {
        whole.extend(voc.synthesize(&units[r]).unwrap());
    }
    s.reset();
    let mut out = Vec::new();
    for u in &units {
        out.extend(s.push(std::slice::from_ref(u)).unwrap());
    }
    out.extend(s.flush().unwrap());
    assert_eq!(out.len(), whole.len());
    let err = max_rel_err(&out, &whole);
    assert!(
        err <= TOL_F32,
        "first-chunk stream vs chunks alone: rel err {err}"
    );
    assert!(VocoderStream::new(&voc, cfg.with_first_chunk(0)).is_err());
}

#[test]
fn reset_forgets_the_utterance_and_flush_starts_a_new_one() {
    let io = read_arrays("vocoder/tiny/io.safetensors");
    let units = ids(&io["units"]);
    let voc = tiny();
    let run = |s: &mut VocoderStream<&CodeHiFiGan>| {
        let mut out = s.push(&units[..20]).unwrap();
        out.extend(s.push(&units[20..]).unwrap());
        out.extend(s.flush().unwrap());
        out
    };
    let mut fresh = VocoderStream::new(&voc, StreamConfig::smooth(8)).unwrap();
    let want = run(&mut fresh);
    // Reset in the middle of an utterance: pending units, context and counters gone.
    let mut s = VocoderStream::new(&voc, StreamConfig::smooth(8)).unwrap();
    s.push(&units[..13]).unwrap();
    assert!(s.units_pushed() > 0);
    s.reset();
    assert_eq!((s.units_pushed(), s.samples_emitted()), (0, 0));
    assert!(s.unit_ends().is_empty());
    // (Same computation on the same device: equal up to the backend's run-to-run
    // summation order, far below the golden tolerance.)
    let after_reset = run(&mut s);
    assert_eq!(after_reset.len(), want.len());
    let err = max_rel_err(&after_reset, &want);
    assert!(
        err <= TOL_F32,
        "after reset vs a fresh stream: rel err {err}"
    );
    // After a flush the next utterance starts without the old one's context (same
    // audio as a fresh stream); the counters keep adding up until reset.
    let again = run(&mut s);
    assert_eq!(again.len(), want.len());
    let err = max_rel_err(&again, &want);
    assert!(
        err <= TOL_F32,
        "after flush vs a fresh utterance: rel err {err}"
    );
    assert_eq!(s.units_pushed(), 2 * units.len());
    assert_eq!(s.samples_emitted(), 2 * want.len());
}

#[test]
fn bad_units_are_errors() {
    let voc = tiny();
    for r in [voc.synthesize(&[]), voc.synthesize(&[3, 1000, 4])] {
        match r {
            Err(Error::InvalidInput(msg)) => {
                assert!(msg.contains("empty") || msg.contains("1000"), "{msg}")
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
    assert!(matches!(
        voc.durations(&[u32::MAX]),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        voc.synthesize_with_durations(&[1, 2], &[1]),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        voc.synthesize_parts(&[1, 2], &[0]),
        Err(Error::InvalidInput(_))
    ));
    for cfg in [StreamConfig::reference(4), StreamConfig::smooth(4)] {
        let mut s = VocoderStream::new(&voc, cfg).unwrap();
        assert!(matches!(s.push(&[]), Err(Error::InvalidInput(_))));
        assert!(matches!(s.push(&[1, 2, 5000]), Err(Error::InvalidInput(_))));
        // A rejected chunk leaves the stream untouched.
        assert_eq!(s.units_pushed(), 0);
        assert!(s.flush().unwrap().is_empty());
    }
    assert!(VocoderStream::new(&voc, StreamConfig::reference(0)).is_err());
    let bad_fade = OverlapParams {
        holdback_samples: 10,
        crossfade_samples: 20,
        ..OverlapParams::default()
    };
    assert!(VocoderStream::new(
        &voc,
        StreamConfig {
            first_chunk_units: 4,
            chunk_units: 4,
            boundary: ChunkBoundary::Overlap(bad_fade)
        }
    )
    .is_err());
}

/// Copies every tensor of the tiny checkpoint but `drop` into a safetensors file.
fn safetensors_without(drop: &str, path: &std::path::Path) {
    let store =
        WeightStore::open_pytorch(fixture("vocoder/tiny/g_00500000"), Some("generator")).unwrap();
    let mut bufs = Vec::new();
    for k in store.keys() {
        if k == drop {
            continue;
        }
        let shape = store.info(&k).unwrap().shape.clone();
        let v = store.read_f32(&k, &shape).unwrap();
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        bufs.push((k, shape, bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = bufs
        .iter()
        .map(|(k, s, b)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn missing_key_is_named() {
    let dir = temp_dir("missing");
    let cfg = VocoderConfig::from_json_file(&fixture("vocoder/tiny/config.json")).unwrap();
    for key in [
        "conv_post.weight_v",
        "ups.3.weight_g",
        "dict.weight",
        "dur_predictor.ln2.bias",
        "resblocks.14.convs2.2.bias",
    ] {
        let p = dir.join("cut.safetensors");
        safetensors_without(key, &p);
        let store = WeightStore::open_safetensors(&p).unwrap();
        match CodeHiFiGan::from_store(&store, cfg.clone(), &device()) {
            Err(e @ Error::MissingKey { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(key) && msg.contains("cut.safetensors"),
                    "{msg}"
                );
            }
            other => panic!("expected MissingKey for {key}, got {other:?}"),
        }
    }
    // The complete copy loads and agrees with the pickle.
    let p = dir.join("full.safetensors");
    safetensors_without("", &p);
    let voc = CodeHiFiGan::from_store(
        &WeightStore::open_safetensors(&p).unwrap(),
        cfg.clone(),
        &device(),
    )
    .unwrap();
    let err = max_rel_err(
        &voc.synthesize(&[1, 2, 3]).unwrap(),
        &tiny().synthesize(&[1, 2, 3]).unwrap(),
    );
    assert!(err <= 1e-6, "{err}");
    // A config that disagrees with the weights names the tensor and both shapes.
    let wide = VocoderConfig {
        upsample_initial_channel: 64,
        ..cfg
    };
    match CodeHiFiGan::from_store(&WeightStore::open_safetensors(&p).unwrap(), wide, &device()) {
        Err(Error::ShapeMismatch { key, .. }) => assert!(key.starts_with("conv_pre."), "{key}"),
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn missing_files_truncated_checkpoint_and_bad_configs_give_errors() {
    let dir = temp_dir("files");
    // Empty folder: names the checkpoint.
    match CodeHiFiGan::load(&dir, &device()) {
        Err(Error::MissingFile { path, .. }) => assert!(path.ends_with("g_00500000"), "{path:?}"),
        other => panic!("{other:?}"),
    }
    // Checkpoint without config.json: names the config.
    let bytes = std::fs::read(fixture("vocoder/tiny/g_00500000")).unwrap();
    std::fs::write(dir.join("g_00500000"), &bytes).unwrap();
    match CodeHiFiGan::load(&dir, &device()) {
        Err(Error::MissingFile { path, .. }) => assert!(path.ends_with("config.json"), "{path:?}"),
        other => panic!("{other:?}"),
    }
    // Truncated checkpoint.
    std::fs::copy(fixture("vocoder/tiny/config.json"), dir.join("config.json")).unwrap();
    std::fs::write(dir.join("g_00500000"), &bytes[..bytes.len() / 2]).unwrap();
    let e = CodeHiFiGan::load(&dir, &device()).unwrap_err();
    assert!(e.to_string().contains("g_00500000"), "{e}");
    // Not a checkpoint at all.
    std::fs::write(dir.join("g_00500000"), b"not a pickle").unwrap();
    assert!(CodeHiFiGan::load(&dir, &device()).is_err());
    // Nonexistent path.
    assert!(matches!(
        CodeHiFiGan::load(dir.join("nope"), &device()),
        Err(Error::MissingFile { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();

    // Unsupported configs are named.
    let text = std::fs::read_to_string(fixture("vocoder/tiny/config.json")).unwrap();
    let p = std::path::Path::new("config.json");
    for (from, to, needle) in [
        ("\"resblock\": \"1\"", "\"resblock\": \"2\"", "resblock"),
        ("\"f0\": false", "\"f0\": true", "f0"),
        (
            "\"f0\": false",
            "\"f0\": false, \"multispkr\": true",
            "multispkr",
        ),
        (
            "\"var_pred_kernel_size\": 3",
            "\"var_pred_kernel_size\": 5",
            "var_pred_kernel_size",
        ),
        ("\"num_embeddings\": 1000,", "", "num_embeddings"),
    ] {
        let bad = text.replacen(from, to, 1);
        assert_ne!(bad, text, "{from}");
        match VocoderConfig::from_json_str(&bad, p) {
            Err(e @ Error::Config { .. }) => assert!(e.to_string().contains(needle), "{e}"),
            other => panic!("expected a config error about {needle}, got {other:?}"),
        }
    }
}

/// max |a - b|, mean |a - b| and SNR (dB) of `x` against `reference`, over the common length.
fn compare(x: &[f32], reference: &[f32]) -> (f32, f32, f64) {
    let n = x.len().min(reference.len());
    let (mut max, mut sum, mut sig, mut noise) = (0f32, 0f64, 0f64, 0f64);
    for (a, b) in x[..n].iter().zip(&reference[..n]) {
        let d = a - b;
        max = max.max(d.abs());
        sum += d.abs() as f64;
        sig += (*b as f64) * (*b as f64);
        noise += (d as f64) * (d as f64);
    }
    (
        max,
        (sum / n as f64) as f32,
        10.0 * (sig / noise.max(1e-30)).log10(),
    )
}

fn stream_all(voc: &CodeHiFiGan, cfg: StreamConfig, units: &[u32], step: usize) -> Vec<f32> {
    let mut s = VocoderStream::new(voc, cfg).unwrap();
    let mut out = Vec::new();
    for c in units.chunks(step) {
        out.extend(s.push(c).unwrap());
    }
    out.extend(s.flush().unwrap());
    out
}

#[test]
fn overlap_streaming_beats_independent_chunks() {
    // 240 random units (tiny random-weight generator with the published structure):
    // each mode's output against omni's whole-utterance synthesis, itself checked
    // against fairseq above.
    let io = read_arrays("vocoder/tiny/io.safetensors");
    let units = ids(&io["units_long"]);
    let voc = tiny();
    let whole = voc.synthesize(&units).unwrap();
    let durs = voc.durations(&units).unwrap();
    assert_eq!(durs, sizes(&io["durations_long"]));
    println!(
        "streaming vs whole-utterance synthesis: {} units, {} samples",
        units.len(),
        whole.len()
    );
    println!("| Ω | mode | max abs diff | mean abs diff | SNR (dB) | samples |");
    println!("|---|------|-------------:|--------------:|---------:|--------:|");
    let row = |omega: usize, name: &str, out: &[f32]| {
        let (m, a, s) = compare(out, &whole);
        println!(
            "| {omega} | {name} | {m:.4} | {a:.5} | {s:.1} | {} |",
            out.len()
        );
        (m, a, s)
    };
    for omega in [10usize, 20, 40] {
        let reference = stream_all(&voc, StreamConfig::reference(omega), &units, omega);
        // How many chunk durations differ from the whole-utterance ones.
        let mut changed = 0;
        for (i, c) in units.chunks(omega).enumerate() {
            let d = voc.durations(c).unwrap();
            changed += d
                .iter()
                .zip(&durs[i * omega..])
                .filter(|(a, b)| a != b)
                .count();
        }
        let (rmax, rmean, rsnr) = row(
            omega,
            &format!("reference: independent chunks ({changed} durations differ)"),
            &reference,
        );
        // Not a mode: independent chunks forced to the whole-utterance durations,
        // to show the generator's edge effect alone.
        let mut fixed = Vec::new();
        for (i, c) in units.chunks(omega).enumerate() {
            fixed.extend(
                voc.synthesize_with_durations(c, &durs[i * omega..i * omega + c.len()])
                    .unwrap(),
            );
        }
        row(
            omega,
            "(independent chunks, whole-utterance durations)",
            &fixed,
        );
        let overlap = |p: OverlapParams| {
            stream_all(
                &voc,
                StreamConfig {
                    first_chunk_units: omega,
                    chunk_units: omega,
                    boundary: ChunkBoundary::Overlap(p),
                },
                &units,
                omega,
            )
        };
        let low = overlap(OverlapParams::low_latency());
        let (lmax, lmean, lsnr) = row(omega, "omni overlap, low_latency (C8 L2 H20ms)", &low);
        let ours = stream_all(&voc, StreamConfig::smooth(omega), &units, omega);
        let (omax, omean, osnr) = row(omega, "omni overlap, default (C12 L2 H120ms)", &ours);
        let hq = overlap(OverlapParams::high_quality());
        let (_, _, hsnr) = row(omega, "omni overlap, high_quality (C16 L2 H200ms)", &hq);
        // Durations are exact with L = 2, C ≥ 2: same length as the whole utterance.
        for o in [&low, &ours, &hq] {
            assert_eq!(o.len(), whole.len(), "Ω={omega}");
        }
        assert!(
            osnr > rsnr + 20.0,
            "Ω={omega}: overlap SNR {osnr:.1} dB vs independent {rsnr:.1} dB"
        );
        assert!(omean < rmean / 10.0 && omax < rmax, "Ω={omega}");
        assert!(
            lsnr > rsnr + 10.0 && lmean < rmean && lmax <= rmax,
            "Ω={omega}"
        );
        assert!(
            osnr >= 35.0 && hsnr > osnr,
            "Ω={omega}: default {osnr:.1} dB, high quality {hsnr:.1} dB"
        );
    }
}

#[test]
fn overlap_stream_handles_any_chunking_and_parameters() {
    // Irregular pushes, tiny Ω, and degenerate parameters: no panic, the right length,
    // and flush returns the stream to a clean state for a new utterance.
    let io = read_arrays("vocoder/tiny/io.safetensors");
    let units = ids(&io["units"]);
    let voc = Arc::new(tiny());
    let total: usize = sizes(&io["durations"]).iter().sum::<usize>() * 320;
    let params = [
        OverlapParams::default(),
        OverlapParams {
            left_context_units: 0,
            lookahead_units: 0,
            holdback_samples: 0,
            crossfade_samples: 0,
        },
        OverlapParams {
            left_context_units: 0,
            lookahead_units: 2,
            holdback_samples: 640,
            crossfade_samples: 320,
        },
        OverlapParams {
            left_context_units: 1,
            lookahead_units: 0,
            holdback_samples: 2000,
            crossfade_samples: 1000,
        },
        OverlapParams {
            left_context_units: 3,
            lookahead_units: 5,
            holdback_samples: 100,
            crossfade_samples: 50,
        },
    ];
    for p in params {
        for omega in [1usize, 3, 7] {
            let cfg = StreamConfig {
                first_chunk_units: omega,
                chunk_units: omega,
                boundary: ChunkBoundary::Overlap(p),
            };
            let mut s = VocoderStream::new(Arc::clone(&voc), cfg).unwrap();
            for round in 0..2 {
                let mut out = Vec::new();
                let mut i = 0;
                let mut step = 1;
                while i < units.len() {
                    let j = (i + step).min(units.len());
                    out.extend(s.push(&units[i..j]).unwrap());
                    i = j;
                    step = step % 5 + 1;
                }
                out.extend(s.flush().unwrap());
                assert!(out.iter().all(|x| x.is_finite()));
                if p.left_context_units >= 2 && p.lookahead_units >= 2 {
                    assert_eq!(out.len(), total, "{p:?} Ω={omega} round {round}");
                } else {
                    // Durations at chunk edges may differ, but every unit is played.
                    assert!(out.len() >= units.len() * 320, "{p:?} Ω={omega}");
                }
            }
        }
    }
}

/// Parameter sweep behind the defaults of `OverlapParams` and the numbers in the
/// README (`cargo test --release --test vocoder -- --ignored --nocapture`).
#[test]
#[ignore]
fn overlap_parameter_sweep() {
    let io = read_arrays("vocoder/tiny/io.safetensors");
    let units = ids(&io["units_long"]);
    let voc = tiny();
    let whole = voc.synthesize(&units).unwrap();
    let durs = voc.durations(&units).unwrap();
    for omega in [10usize, 20, 40] {
        // Independent chunks but with the whole-utterance durations: the generator's
        // edge effect alone, without the timing shift.
        let mut fixed = Vec::new();
        let mut i = 0;
        while i < units.len() {
            let j = (i + omega).min(units.len());
            fixed.extend(
                voc.synthesize_with_durations(&units[i..j], &durs[i..j])
                    .unwrap(),
            );
            i = j;
        }
        let (m, a, s) = compare(&fixed, &whole);
        println!("Ω={omega} independent, exact durations: max {m:.4} mean {a:.5} SNR {s:.1}");
        for c in [0usize, 4, 8, 12, 16] {
            for l in [0usize, 2, 3] {
                for (h, x) in [
                    (0usize, 0usize),
                    (320, 320),
                    (640, 320),
                    (1280, 320),
                    (1920, 320),
                    (2560, 320),
                    (3200, 320),
                    (3200, 640),
                ] {
                    let p = OverlapParams {
                        left_context_units: c,
                        lookahead_units: l,
                        holdback_samples: h,
                        crossfade_samples: x,
                    };
                    let cfg = StreamConfig {
                        first_chunk_units: omega,
                        chunk_units: omega,
                        boundary: ChunkBoundary::Overlap(p),
                    };
                    let out = stream_all(&voc, cfg, &units, omega);
                    let (m, a, s) = compare(&out, &whole);
                    println!("Ω={omega} C={c} L={l} H={h} X={x}: max {m:.4} mean {a:.5} SNR {s:.1} len {}", out.len());
                }
            }
        }
    }
}

/// The published widths (512 channels, 128-dim units) with random weights, against
/// fairseq, and the time per second of audio. Needs a folder written by
/// `python tests/reference/ref_vocoder.py --full DIR` (~55 MB, not committed):
/// `OMNI_VOCODER_FULL=DIR cargo test --release --test vocoder -- --ignored --nocapture full_size`.
#[test]
#[ignore]
fn full_size_vocoder_matches_fairseq() {
    let Ok(dir) = std::env::var("OMNI_VOCODER_FULL") else {
        println!("OMNI_VOCODER_FULL is not set: skipped");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let io = read_arrays(dir.join("io.safetensors").to_str().unwrap());
    let t = std::time::Instant::now();
    let voc = CodeHiFiGan::load(&dir, &device()).unwrap();
    println!("load: {:.2} s", t.elapsed().as_secs_f64());
    let units = ids(&io["units"]);
    assert_eq!(voc.durations(&units).unwrap(), sizes(&io["durations"]));
    let wav = voc.synthesize(&units).unwrap();
    let err = max_rel_err(&wav, &io["wav"].data);
    println!("full-size waveform max rel err vs fairseq: {err:.3e}");
    assert!(err <= TOL_F32, "{err}");
    let reps = 3;
    let t = std::time::Instant::now();
    for _ in 0..reps {
        voc.synthesize(&units).unwrap();
    }
    let dt = t.elapsed().as_secs_f64() / reps as f64;
    let secs = wav.len() as f64 / 16000.0;
    println!(
        "full-size: {} units -> {secs:.2} s audio in {:.0} ms (RTF {:.3})",
        units.len(),
        dt * 1e3,
        dt / secs
    );
    for omega in [10usize, 40] {
        let t = std::time::Instant::now();
        let out = stream_all(&voc, StreamConfig::smooth(omega), &units, omega);
        let dt = t.elapsed().as_secs_f64();
        let (_, _, snr) = compare(&out, &wav);
        println!(
            "  smooth stream Ω={omega}: {:.0} ms (RTF {:.3}), SNR vs whole {snr:.1} dB",
            dt * 1e3,
            dt / secs
        );
    }
}
