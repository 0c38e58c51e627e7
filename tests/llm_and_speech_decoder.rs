//! Golden tests of the LLM (transformers 4.43.4 `LlamaForCausalLM`, GQA 4/2,
//! llama3 RoPE scaling, fp16 sharded checkpoint) and of the CTC speech decoder
//! (the reference `SpeechGeneratorCTC`, restated on transformers'
//! `LlamaDecoderLayer`) on the tiny Omni fixture (tests/reference/ref_omni.py).
//!
//! Tolerance: 1e-4 of the reference's max |value| in f32: both compute in f32
//! from the same fp16-rounded weights; only summation order differs.

mod common;

use common::{fixture, max_rel_err, read_arrays, Array};
use omni_core::burn::tensor::{DType, Tensor, TensorData};
use omni_core::model::llama::generate::{Generation, GenerationParams};
use omni_core::model::llama::sampling::SamplingParams;
use omni_core::model::llama::{KvCache, Llama, OmniConfig};
use omni_core::model::speech_decoder::{CtcDecoderConfig, SpeechGenerator, UnitStream};
use omni_core::weights::{RunDType, WeightStore};
use omni_core::Device;
use omni_core::Error;
use omni_core::Streaming;

const TOL: f32 = 1e-4;

fn dev() -> Device {
    common::test_device()
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.cast(DType::F32).into_data().try_to_vec::<f32>().unwrap()
}

fn t2(a: &Array) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(a.data.clone(), [a.shape[0], a.shape[1]]),
        &dev(),
    )
}

struct Tiny {
    cfg: OmniConfig,
    store: WeightStore,
    g: std::collections::HashMap<String, Array>,
}

fn tiny() -> Tiny {
    let dir = fixture("omni_tiny");
    let cfg = OmniConfig::from_file(&dir.join("config.json")).expect("config");
    let store = WeightStore::open_hf_dir(&dir).expect("shards");
    Tiny {
        cfg,
        store,
        g: read_arrays("omni_tiny/golden.safetensors"),
    }
}

/// Prompt embeddings with the reference's speech embeddings spliced in at -200.
fn prompt_embeds(llm: &Llama, g: &std::collections::HashMap<String, Array>) -> Tensor<3> {
    let ids: Vec<i64> = g["prompt_ids"].data.iter().map(|&x| x as i64).collect();
    llm.splice_speech(&ids, &[t2(&g["speech_embeds"])])
        .expect("splice")
}

fn load_llm(t: &Tiny, dtype: RunDType) -> Llama {
    Llama::load(&t.store, &t.cfg.llm, dtype, &dev(), None).expect("load llm")
}

#[test]
fn config_reads_llama3_rope_gqa_and_speech_fields() {
    let t = tiny();
    assert_eq!(t.cfg.llm.model_type, "omni_speech2s_llama");
    assert_eq!(
        (t.cfg.llm.num_attention_heads, t.cfg.llm.kv_heads()),
        (4, 2)
    );
    assert_eq!(t.cfg.llm.rope_scaling.as_ref().unwrap().rope_type, "llama3");
    assert_eq!(t.cfg.llm.eos_ids().len(), 3);
    let c = CtcDecoderConfig::from_omni(&t.cfg, &fixture("omni_tiny/config.json")).unwrap();
    assert_eq!(
        (
            c.n_layers,
            c.dim,
            c.n_heads,
            c.ffn,
            c.upsample_factor,
            c.unit_vocab_size
        ),
        (2, 64, 4, 160, 25, 1000)
    );
    assert_eq!(
        CtcDecoderConfig::parse_layers("(2,4096,32,11008)"),
        Some((2, 4096, 32, 11008))
    );
    assert_eq!(CtcDecoderConfig::parse_layers("2,4096"), None);
}

#[test]
fn prefill_logits_match_transformers() {
    let t = tiny();
    let llm = load_llm(&t, RunDType::F32);
    let x = prompt_embeds(&llm, &t.g);
    let n = x.dims()[1];
    let mut cache = llm.new_cache();
    let h = llm.forward(x, &mut cache).unwrap();
    assert_eq!(cache.len(), n);
    let logits = llm.logits(h.clone().slice([0..1, n - 16..n, 0..64]));
    let err = max_rel_err(&host(logits), &t.g["prefill_logits_last16"].data);
    assert!(err <= TOL, "prefill logits rel err {err}");
    let err = max_rel_err(
        &host(h.slice([0..1, n - 1..n, 0..64])),
        &t.g["prefill_hidden_last"].data,
    );
    assert!(err <= TOL, "last hidden rel err {err}");
}

#[test]
fn greedy_32_tokens_and_decoder_inputs_match_generate() {
    let t = tiny();
    let llm = load_llm(&t, RunDType::F32);
    let mut cache = llm.new_cache();
    let params = GenerationParams {
        max_new_tokens: 32,
        sampling: SamplingParams::default(),
        stop_ids: t.cfg.llm.eos_ids(),
    };
    let mut gen = Generation::start(&llm, &mut cache, prompt_embeds(&llm, &t.g), params).unwrap();
    let mut tokens = Vec::new();
    let mut hidden = Vec::new();
    while let Some(step) = gen.next_step().unwrap() {
        tokens.push(step.token as f32);
        hidden.extend(host(step.hidden));
    }
    assert_eq!(
        tokens, t.g["greedy_tokens"].data,
        "greedy tokens differ from transformers.generate"
    );
    let err = max_rel_err(&hidden, &t.g["speech_decoder_inputs"].data);
    assert!(err <= TOL, "speech decoder inputs rel err {err}");
}

#[test]
fn cached_prefill_plus_decode_equals_full_forward() {
    let t = tiny();
    let llm = load_llm(&t, RunDType::F32);
    let ids: Vec<u32> = (0..40u32).map(|i| (i * 37 + 11) % 512).collect();
    let mut full_cache = llm.new_cache();
    let full = host(
        llm.forward(llm.embed(&ids).unwrap(), &mut full_cache)
            .unwrap(),
    );
    // 25-token prefill, then one token at a time (cache grows past its first chunk).
    let mut cache = llm.new_cache();
    let mut inc = host(
        llm.forward(llm.embed(&ids[..25]).unwrap(), &mut cache)
            .unwrap(),
    );
    for &id in &ids[25..] {
        inc.extend(host(
            llm.forward(llm.embed(&[id]).unwrap(), &mut cache).unwrap(),
        ));
    }
    assert_eq!(cache.len(), 40);
    let err = max_rel_err(&inc, &full);
    assert!(err <= TOL, "cache vs no-cache rel err {err}");
    // Truncate back and replay: the same states again.
    cache.truncate(30);
    let again = host(
        llm.forward(llm.embed(&ids[30..32]).unwrap(), &mut cache)
            .unwrap(),
    );
    let err = max_rel_err(&again, &full[30 * 64..32 * 64]);
    assert!(err <= TOL, "after truncate rel err {err}");
}

/// A first chunk of at least 64 positions becomes the cache's buffers as they are
/// (no zeroed buffer and copy); decode then grows it (a copy into twice the
/// capacity), and truncating and replaying gives the same states: 70 positions
/// prefilled, 10 decoded one by one, then cut back to 66 and 2 replayed, against
/// one forward pass over all 80 (1e-4 relative: f32, other summation orders).
#[test]
fn long_first_prompt_becomes_the_cache_and_decode_and_truncate_continue() {
    let t = tiny();
    let llm = load_llm(&t, RunDType::F32);
    let ids: Vec<u32> = (0..80u32).map(|i| (i * 29 + 3) % 512).collect();
    let full = host(
        llm.forward(llm.embed(&ids).unwrap(), &mut llm.new_cache())
            .unwrap(),
    );
    let mut cache = llm.new_cache();
    let mut inc = host(
        llm.forward(llm.embed(&ids[..70]).unwrap(), &mut cache)
            .unwrap(),
    );
    for &id in &ids[70..] {
        inc.extend(host(
            llm.forward(llm.embed(&[id]).unwrap(), &mut cache).unwrap(),
        ));
    }
    assert_eq!(cache.len(), 80);
    let err = max_rel_err(&inc, &full);
    assert!(
        err <= TOL,
        "70 prefilled + 10 decoded vs one pass: rel err {err}"
    );
    cache.truncate(66);
    let again = host(
        llm.forward(llm.embed(&ids[66..68]).unwrap(), &mut cache)
            .unwrap(),
    );
    let err = max_rel_err(&again, &full[66 * 64..68 * 64]);
    assert!(err <= TOL, "after truncate rel err {err}");
}

#[test]
fn bf16_checkpoint_is_cast_at_load() {
    let dir = fixture("omni_tiny_bf16");
    let cfg = OmniConfig::from_file(&dir.join("config.json")).unwrap();
    assert_eq!(cfg.llm.model_type, "llama");
    let store = WeightStore::open_hf_dir(&dir).unwrap();
    assert_eq!(
        store.info("lm_head.weight").unwrap().dtype,
        omni_core::weights::StoredDType::BF16
    );
    let llm = Llama::load(&store, &cfg.llm, RunDType::F32, &dev(), None).unwrap();
    let g = read_arrays("omni_tiny/golden.safetensors");
    // The reference ran these bf16-rounded weights in f32 on the same embeddings
    // (rounded to bf16 too, since embed_tokens is bf16 here).
    let x = prompt_embeds(&llm, &g);
    let speech_bf: Vec<f32> = host(x.clone())
        .iter()
        .map(|v| omni_core::burn::tensor::bf16::from_f32(*v).to_f32())
        .collect();
    let n = x.dims()[1];
    let x = Tensor::<3>::from_data(TensorData::new(speech_bf, [1, n, 64]), &dev());
    let h = llm.forward(x, &mut llm.new_cache()).unwrap();
    let logits = host(llm.logits(h.slice([0..1, n - 4..n, 0..64])));
    let err = max_rel_err(&logits, &g["bf16_logits_last4"].data);
    assert!(err <= TOL, "bf16 checkpoint rel err {err}");
}

#[test]
fn f16_run_tracks_f32_reference() {
    // f16 activations (unit roundoff 4.9e-4) through 2 layers of width 64:
    // allow 1e-2 of the logit scale, and the same greedy first token.
    let t = tiny();
    if !dev().supports_dtype(DType::F16) {
        // A wgpu adapter without SHADER_F16 (lavapipe has it): refused at load.
        match Llama::load(&t.store, &t.cfg.llm, RunDType::F16, &dev(), None) {
            Err(Error::Device { reason, .. }) => assert!(reason.contains("F16"), "{reason}"),
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("F16 loaded on a device without F16"),
        }
        return;
    }
    let llm = load_llm(&t, RunDType::F16);
    let x = prompt_embeds(&llm, &t.g);
    let n = x.dims()[1];
    let h = llm.forward(x, &mut llm.new_cache()).unwrap();
    let logits = host(llm.logits(h.slice([0..1, n - 16..n, 0..64])));
    let err = max_rel_err(&logits, &t.g["prefill_logits_last16"].data);
    assert!(err <= 1e-2, "f16 rel err {err}");
    let last = &logits[15 * 512..];
    assert_eq!(
        omni_core::model::llama::sampling::argmax(last) as f32,
        t.g["greedy_tokens"].data[0]
    );
}

#[test]
fn bf16_run_dtype_is_used_or_refused_per_device() {
    // BF16 compute exists on the CPU backend, not on wgpu (WGSL has no bf16): there the
    // load must fail with a device error naming the dtype, not panic in the first matmul.
    let t = tiny();
    let d = dev();
    match Llama::load(&t.store, &t.cfg.llm, RunDType::BF16, &d, None) {
        Ok(llm) => {
            assert!(d.supports_dtype(DType::BF16));
            let x = prompt_embeds(&llm, &t.g);
            let n = x.dims()[1];
            let h = llm.forward(x, &mut llm.new_cache()).unwrap();
            let logits = host(llm.logits(h.slice([0..1, n - 16..n, 0..64])));
            // bf16 unit roundoff 2^-8 = 3.9e-3, ~8x f16's: 8x the f16 test's bound.
            let err = max_rel_err(&logits, &t.g["prefill_logits_last16"].data);
            assert!(err <= 8e-2, "bf16 rel err {err}");
        }
        Err(Error::Device { reason, .. }) => {
            assert!(!d.supports_dtype(DType::BF16));
            assert!(reason.contains("BF16"), "{reason}");
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[test]
fn sampling_is_reproducible_per_seed() {
    let t = tiny();
    let llm = load_llm(&t, RunDType::F32);
    let run = |seed: u64| {
        let mut cache = llm.new_cache();
        let params = GenerationParams {
            max_new_tokens: 12,
            sampling: SamplingParams {
                temperature: 1.0,
                top_p: 0.95,
                seed,
            },
            stop_ids: vec![],
        };
        let mut g = Generation::start(&llm, &mut cache, prompt_embeds(&llm, &t.g), params).unwrap();
        let mut v = vec![];
        while let Some(s) = g.next_step().unwrap() {
            v.push(s.token);
        }
        v
    };
    let a = run(7);
    assert_eq!(a.len(), 12);
    assert_eq!(a, run(7), "same seed, same tokens");
    assert_ne!(a, run(8), "another seed, other tokens");
}

fn load_generator(t: &Tiny) -> SpeechGenerator {
    let c = CtcDecoderConfig::from_omni(&t.cfg, &fixture("omni_tiny/config.json")).unwrap();
    SpeechGenerator::load(
        &t.store,
        "speech_generator.",
        &t.cfg.llm,
        &c,
        RunDType::F32,
        &dev(),
    )
    .unwrap()
}

#[test]
fn speech_decoder_units_match_reference_predict() {
    let t = tiny();
    let gen = load_generator(&t);
    let reps = t2(&t.g["speech_decoder_inputs"]);
    let mut cache = gen.new_cache();
    let logits = gen.frame_logits(reps.clone(), &mut cache).unwrap();
    let err = max_rel_err(
        &host(logits.slice([0..50, 0..1001])),
        &t.g["ctc_logits_first50"].data,
    );
    assert!(err <= TOL, "ctc logits rel err {err}");
    let (frames, units) = gen.predict(reps).unwrap();
    let want: Vec<u32> = t.g["ctc_pred"].data.iter().map(|&x| x as u32).collect();
    assert_eq!(frames, want, "frame labels");
    let want: Vec<u32> = t.g["units"].data.iter().map(|&x| x as u32).collect();
    assert!(!want.is_empty());
    assert_eq!(units, want, "units");
}

#[test]
fn incremental_unit_stream_equals_whole_sequence() {
    let t = tiny();
    let gen = load_generator(&t);
    let reps = t2(&t.g["speech_decoder_inputs"]);
    let n = reps.dims()[0];
    // The reference's prediction on the first 7 states is a prefix of the whole.
    let (f7, _) = gen.predict(reps.clone().slice([0..7, 0..64])).unwrap();
    let want7: Vec<u32> = t.g["ctc_pred_7"].data.iter().map(|&x| x as u32).collect();
    assert_eq!(f7, want7);
    for len in [1usize, 2, 7, 13, n] {
        let part = reps.clone().slice([0..len, 0..64]);
        let (_, whole) = gen.predict(part.clone()).unwrap();
        let mut stream = UnitStream::new(&gen);
        let mut inc = Vec::new();
        for i in 0..len {
            inc.extend(stream.push(part.clone().slice([i..i + 1, 0..64])).unwrap());
        }
        assert_eq!(inc, whole, "length {len}");
        assert_eq!(stream.states(), len);
    }
}

#[test]
fn unit_stream_flush_and_reset_start_a_new_utterance() {
    let t = tiny();
    let gen = load_generator(&t);
    let reps = t2(&t.g["speech_decoder_inputs"]);
    let n = reps.dims()[0];
    let (_, whole) = gen.predict(reps.clone()).unwrap();
    let feed = |stream: &mut UnitStream<_>| {
        let mut units = Vec::new();
        for i in 0..n {
            units.extend(stream.push(reps.clone().slice([i..i + 1, 0..64])).unwrap());
        }
        units.extend(stream.flush().unwrap());
        units
    };
    // An Arc-owned generator works like a borrowed one.
    let mut stream = UnitStream::new(std::sync::Arc::new(gen.clone()));
    assert_eq!(feed(&mut stream), whole);
    // After flush: the same units again (no cache or CTC state carried over).
    assert_eq!(feed(&mut stream), whole, "after flush");
    assert_eq!(stream.states(), 2 * n, "states count until reset");
    // Reset in the middle of an utterance.
    stream.push(reps.clone().slice([0..5, 0..64])).unwrap();
    stream.reset();
    assert_eq!(stream.states(), 0);
    assert_eq!(feed(&mut stream), whole, "after reset");
}

#[test]
fn speech_path_from_whisper_pt_and_shards_matches() {
    // mel → encoder (config.speech_encoder = speech_encoder.pt) → adaptor (shards).
    let t = tiny();
    let pt = fixture("omni_tiny").join(t.cfg.speech_encoder.as_deref().unwrap());
    let wcfg = omni_core::model::whisper::WhisperConfig::from_openai_pt(&pt).unwrap();
    let ws = WeightStore::open_pytorch(&pt, Some("model_state_dict"))
        .unwrap()
        .sub("encoder.");
    let enc =
        omni_core::model::whisper::WhisperEncoder::load(&ws, &wcfg, RunDType::F32, &dev()).unwrap();
    let mel = &t.g["mel"];
    let e = enc
        .forward(
            enc.mel_tensor(&mel.data, mel.shape[0], mel.shape[1])
                .unwrap(),
        )
        .unwrap();
    let err = max_rel_err(&host(e.clone()), &t.g["encoder_out"].data);
    assert!(err <= TOL, "encoder rel err {err}");
    let acfg = omni_core::model::adaptor::AdaptorConfig::from_config_json(&fixture(
        "omni_tiny/config.json",
    ))
    .unwrap();
    let ad = omni_core::model::adaptor::SpeechAdaptor::load(
        &t.store,
        "model.speech_projector.",
        &acfg,
        RunDType::F32,
        &dev(),
    )
    .unwrap();
    let err = max_rel_err(&host(ad.forward(e).unwrap()), &t.g["speech_embeds"].data);
    assert!(err <= TOL, "adaptor rel err {err}");
}

fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn missing_or_truncated_shard_is_named() {
    let tmp = std::env::temp_dir().join(format!("omni-shards-{}", std::process::id()));
    copy_dir(&fixture("omni_tiny"), &tmp);
    let shard = tmp.join("model-00002-of-00002.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 100]).unwrap();
    let e = WeightStore::open_hf_dir(&tmp).unwrap_err();
    assert!(matches!(e, Error::Checkpoint { .. }), "{e:?}");
    assert!(
        e.to_string().contains("model-00002-of-00002.safetensors"),
        "{e}"
    );
    std::fs::remove_file(&shard).unwrap();
    match WeightStore::open_hf_dir(&tmp) {
        Err(Error::MissingFile { path, .. }) => {
            assert!(path.ends_with("model-00002-of-00002.safetensors"))
        }
        other => panic!("expected a missing shard error, got {other:?}"),
    }
    std::fs::remove_dir_all(&tmp).ok();
    // A missing key in a complete checkpoint is named too.
    let t = tiny();
    let mut cfg = t.cfg.llm.clone();
    cfg.num_hidden_layers = 3;
    match Llama::load(&t.store, &cfg, RunDType::F32, &dev(), None) {
        Err(Error::MissingKey { key, .. }) => {
            assert_eq!(key, "model.layers.2.input_layernorm.weight")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_token_ids_and_inputs_are_errors() {
    let t = tiny();
    let llm = load_llm(&t, RunDType::F32);
    assert!(llm.embed(&[600]).is_err());
    let mut cache = KvCache::new(1);
    let x = llm.embed(&[1, 2]).unwrap();
    assert!(
        llm.forward(x, &mut cache).is_err(),
        "cache of another model"
    );
    let gen = load_generator(&t);
    let bad = Tensor::<2>::zeros([1, 32], &dev());
    assert!(gen.frame_logits(bad, &mut gen.new_cache()).is_err());
}

/// On the CPU the decoder layers run on host buffers (`llama::host`: RMSNorm, RoPE,
/// the cache append, attention and the residuals without tensors between the steps,
/// the keys and values kept in the cache's host buffers); `DecoderLayer::forward_burn`
/// is the same layer in burn's ops. For f32 and f16 weights, every layer of the tiny
/// model agrees within 1e-5 of its output's scale (the same f32 products, the norms
/// summed in another order) on a fresh cache (5 positions), continuing after them
/// (multi-turn: keys and values come back from the cache), and over 262 single-token
/// decode steps after that (past the host buffers' first regrowth at 261 positions).
/// A cache then fed by the other path moves its positions over: a burn step on the
/// host cache and a host step after it still agree. Off the CPU nothing is taken.
#[test]
fn decoder_layers_on_host_buffers_match_the_burn_layers() {
    use omni_core::model::llama::host;
    let t = tiny();
    let on_cpu = dev() == Device::flex();
    for dtype in [RunDType::F32, RunDType::F16] {
        if !dev().supports_dtype(DType::F16) && dtype == RunDType::F16 {
            continue;
        }
        let llm = load_llm(&t, dtype);
        let ids: Vec<u32> = (0..14u32).map(|i| (i * 53 + 7) % 512).collect();
        let mut chunks = vec![(llm.embed(&ids[..5]).unwrap(), 0usize)];
        chunks.push((llm.embed(&ids[5..]).unwrap(), 5));
        for p in 14..276usize {
            chunks.push((llm.embed(&[(p as u32 * 31) % 512]).unwrap(), p));
        }
        for (li, layer) in llm.layers.iter().enumerate() {
            let (mut host_cache, mut burn_cache) = (llm.new_cache(), llm.new_cache());
            let (hc, bc) = (&mut host_cache.layers[li], &mut burn_cache.layers[li]);
            let step = |x: &Tensor<3>, start: usize, hc: &mut _, bc: &mut _, burn_both: bool| {
                let (cos, sin) = llm.rope.tables(start, x.dims()[1], x.dtype(), &x.device());
                let got = if burn_both {
                    layer.forward_burn(x.clone(), &cos, &sin, hc)
                } else {
                    layer.forward(x.clone(), &cos, &sin, hc)
                };
                let want = layer.forward_burn(x.clone(), &cos, &sin, bc);
                let err = max_rel_err(&host(got), &host(want));
                assert!(
                    err <= 1e-5,
                    "{dtype:?} layer {li} at {start} (burn on both: {burn_both}): rel err {err}"
                );
            };
            for (x, start) in &chunks {
                assert_eq!(host::takes(layer, x), on_cpu, "layer {li}: host path taken");
                step(x, *start, hc, bc, false);
            }
            assert_eq!(
                hc.on_host(),
                on_cpu,
                "layer {li}: keys and values on the host"
            );
            assert_eq!((hc.len(), bc.len()), (276, 276));
            // The other path on the same cache: host → tensors, then back.
            let x = llm.embed(&[9]).unwrap();
            step(&x, 276, hc, bc, true);
            assert!(!hc.on_host(), "a burn step keeps its keys as tensors");
            step(&x, 277, hc, bc, false);
            assert_eq!(hc.on_host(), on_cpu);
            // A truncated host cache (a cancelled turn) continues from its new end.
            hc.truncate(100);
            bc.truncate(100);
            step(&x, 100, hc, bc, false);
        }
    }
}
