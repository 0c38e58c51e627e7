//! omni vs PyTorch CPU: the omni half. Run by `scripts/bench.sh`, which also runs
//! the PyTorch peer (`scripts/bench_torch.py`) on the same shapes and the same
//! random-weight checkpoints (written here, under `OMNI_BENCH_DIR`) and prints the
//! table. Alone: `cargo bench --bench omni_bench` (`OMNI_BENCH_ROWS=mel,whisper,...`
//! picks row groups; `OMNI_BENCH_OUT` is the JSON-lines result file).
//!
//! Row groups: `mel`, `whisper`, `llm`, `llm8b`, `sd` (speech decoder), `vocoder`.
//! Other knobs: `OMNI_BENCH_DIR` (checkpoints, default /tmp/omni_bench),
//! `OMNI_BENCH_PREFILL_RUNS` / `OMNI_BENCH_SD_FULL_RUNS` (default 3),
//! `OMNI_BENCH_WHISPER_DTYPES` (encoder rows, default `f32`), `OMNI_BENCH_LLM_DTYPES` (1B rows, default `f32,f16burn,f16,q8_0,q4_0`; `f16burn` is f16
//! through burn's matmul, `OMNI_F16_KERNELS=0`), `OMNI_BENCH_LLM8B_DTYPES` (one-8B-layer
//! rows, default `f16burn,f16,q8_0,q4_0`), `OMNI_BENCH_PROFILE=1` (per-operation
//! times of one decode layer and per-stage times of a few decode steps, on stderr).

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{ms, time_n, token_ids, Checkpoint, Init, Results, Rng, St};
use omni_core::audio::MelFrontend;
use omni_core::burn::tensor::{DType, Device, Tensor, TensorData};
use omni_core::model::llama::generate::host_logits;
use omni_core::model::llama::sampling::argmax;
use omni_core::model::llama::{KvCache, Llama, LlamaConfig};
use omni_core::model::speech_decoder::{CtcDecoderConfig, SpeechGenerator};
use omni_core::model::vocoder::{CodeHiFiGan, VocoderConfig};
use omni_core::model::whisper::{WhisperConfig, WhisperEncoder};
use omni_core::weights::{RunDType, WeightStore};
use serde_json::json;

/// Prompt length of the LLM prefill rows.
const PREFILL: usize = 340;
/// Decode steps timed after the prefill.
const DECODE_STEPS: usize = 16;

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

fn to_host(t: Tensor<3>) -> Vec<f32> {
    t.cast(DType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .expect("readback")
}

// ---------------------------------------------------------------- log-mel

fn bench_mel(res: &mut Results) {
    eprintln!("[mel]");
    let audio = common::test_audio(30 * 16000);
    let fe = MelFrontend::new(128).expect("mel frontend");
    let t = time_n(2, 10, || {
        let m = fe.log_mel_30s(&audio).expect("log-mel");
        assert_eq!(m.n_frames, 3000);
    });
    res.row("mel", &t, json!({}));
}

// ---------------------------------------------------------------- whisper

fn whisper_checkpoint(cfg: &WhisperConfig) -> Checkpoint {
    let c = cfg.n_audio_state;
    let mut ck = Checkpoint::default();
    let a1 = 1.0 / ((cfg.n_mels * 3) as f32).sqrt();
    let a2 = 1.0 / ((c * 3) as f32).sqrt();
    ck.add(
        "conv1.weight",
        &[c, cfg.n_mels, 3],
        St::F32,
        Init::Uniform(a1),
    );
    ck.add("conv1.bias", &[c], St::F32, Init::Uniform(a1));
    ck.add("conv2.weight", &[c, c, 3], St::F32, Init::Uniform(a2));
    ck.add("conv2.bias", &[c], St::F32, Init::Uniform(a2));
    ck.add(
        "positional_embedding",
        &[cfg.n_audio_ctx, c],
        St::F32,
        Init::Uniform(1.0),
    );
    for i in 0..cfg.n_audio_layer {
        let p = format!("blocks.{i}");
        ck.add(
            format!("{p}.attn_ln.weight"),
            &[c],
            St::F32,
            Init::Const(1.0),
        );
        ck.add(format!("{p}.attn_ln.bias"), &[c], St::F32, Init::Const(0.0));
        ck.linear(&format!("{p}.attn.query"), c, c, true, St::F32);
        ck.linear(&format!("{p}.attn.key"), c, c, false, St::F32);
        ck.linear(&format!("{p}.attn.value"), c, c, true, St::F32);
        ck.linear(&format!("{p}.attn.out"), c, c, true, St::F32);
        ck.add(
            format!("{p}.mlp_ln.weight"),
            &[c],
            St::F32,
            Init::Const(1.0),
        );
        ck.add(format!("{p}.mlp_ln.bias"), &[c], St::F32, Init::Const(0.0));
        ck.linear(&format!("{p}.mlp.0"), c, 4 * c, true, St::F32);
        ck.linear(&format!("{p}.mlp.2"), 4 * c, c, true, St::F32);
    }
    ck.add("ln_post.weight", &[c], St::F32, Init::Const(1.0));
    ck.add("ln_post.bias", &[c], St::F32, Init::Const(0.0));
    ck
}

fn bench_whisper(res: &mut Results, dir: &Path, dev: &Device) {
    let shapes = [
        (
            "whisper_base",
            "whisper_base.safetensors",
            WhisperConfig::base(),
            5usize,
        ),
        (
            "whisper_v3_4l",
            "whisper_v3_4layers.safetensors",
            WhisperConfig {
                n_audio_layer: 4,
                ..WhisperConfig::large_v3()
            },
            3,
        ),
    ];
    // `OMNI_BENCH_WHISPER_DTYPES` (default f32): the dtypes the encoder runs at;
    // rows other than f32 carry the dtype in their id (`whisper_v3_4l_f16`).
    let dtypes = env_or("OMNI_BENCH_WHISPER_DTYPES", "f32");
    for (id, file, cfg, n) in shapes {
        let path = whisper_checkpoint(&cfg).write(&dir.join(file));
        let store = WeightStore::open_safetensors(&path).expect("open");
        for name in dtypes.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let dt = RunDType::parse(name)
                .unwrap_or_else(|| panic!("OMNI_BENCH_WHISPER_DTYPES: unknown dtype {name}"));
            let id = if name == "f32" {
                id.to_string()
            } else {
                format!("{id}_{name}")
            };
            eprintln!("[{id}]");
            let t = Instant::now();
            let enc = WhisperEncoder::load(&store, &cfg, dt, dev).expect("load encoder");
            let load_ms = ms(t);
            res.mark();
            let mut rng = Rng(7);
            let mel: Vec<f32> = (0..cfg.n_mels * 3000).map(|_| rng.uniform()).collect();
            let mut check = 0.0;
            let times = time_n(1, n, || {
                let x = enc.mel_tensor(&mel, cfg.n_mels, 3000).expect("mel tensor");
                let y = to_host(enc.forward(x).expect("encoder"));
                assert_eq!(y.len(), 1500 * cfg.n_audio_state);
                check = y.iter().map(|v| v.abs() as f64).sum::<f64>() / y.len() as f64;
            });
            res.row(
                &id,
                &times,
                json!({ "load_ms": load_ms, "check_mean_abs": check }),
            );
        }
    }
}

// ---------------------------------------------------------------- LLM

/// A Llama 3.x config (HF field names, as the checkpoint's config.json).
fn llama_config(
    hidden: usize,
    layers: usize,
    heads: usize,
    kv: usize,
    ffn: usize,
    vocab: usize,
    factor: f64,
) -> LlamaConfig {
    serde_json::from_value(json!({
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": ffn,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "vocab_size": vocab,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": factor, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "max_position_embeddings": 131072,
        "tie_word_embeddings": false,
        "hidden_act": "silu"
    }))
    .expect("llama config")
}

/// HF Llama layer keys under `prefix` (F16).
fn llama_layer(
    ck: &mut Checkpoint,
    prefix: &str,
    hidden: usize,
    heads: usize,
    kv: usize,
    ffn: usize,
) {
    let hd = hidden / heads;
    ck.add(
        format!("{prefix}.input_layernorm.weight"),
        &[hidden],
        St::F16,
        Init::Const(1.0),
    );
    ck.add(
        format!("{prefix}.post_attention_layernorm.weight"),
        &[hidden],
        St::F16,
        Init::Const(1.0),
    );
    ck.linear(
        &format!("{prefix}.self_attn.q_proj"),
        hidden,
        heads * hd,
        false,
        St::F16,
    );
    ck.linear(
        &format!("{prefix}.self_attn.k_proj"),
        hidden,
        kv * hd,
        false,
        St::F16,
    );
    ck.linear(
        &format!("{prefix}.self_attn.v_proj"),
        hidden,
        kv * hd,
        false,
        St::F16,
    );
    ck.linear(
        &format!("{prefix}.self_attn.o_proj"),
        heads * hd,
        hidden,
        false,
        St::F16,
    );
    ck.linear(
        &format!("{prefix}.mlp.gate_proj"),
        hidden,
        ffn,
        false,
        St::F16,
    );
    ck.linear(
        &format!("{prefix}.mlp.up_proj"),
        hidden,
        ffn,
        false,
        St::F16,
    );
    ck.linear(
        &format!("{prefix}.mlp.down_proj"),
        ffn,
        hidden,
        false,
        St::F16,
    );
}

fn llama_checkpoint(c: &LlamaConfig) -> Checkpoint {
    let mut ck = Checkpoint::default();
    ck.add(
        "model.embed_tokens.weight",
        &[c.vocab_size, c.hidden_size],
        St::F16,
        Init::Uniform(0.05),
    );
    for i in 0..c.num_hidden_layers {
        llama_layer(
            &mut ck,
            &format!("model.layers.{i}"),
            c.hidden_size,
            c.num_attention_heads,
            c.kv_heads(),
            c.intermediate_size,
        );
    }
    ck.add(
        "model.norm.weight",
        &[c.hidden_size],
        St::F16,
        Init::Const(1.0),
    );
    ck.linear("lm_head", c.hidden_size, c.vocab_size, false, St::F16);
    ck
}

/// One decode step as generation runs it: embed, forward one token, logits read back.
fn decode_step(llm: &Llama, cache: &mut KvCache, tok: u32) -> u32 {
    let h = llm
        .forward(llm.embed(&[tok]).expect("embed"), cache)
        .expect("forward");
    let d = h.dims()[2];
    let logits = host_logits(llm, &h.reshape([1, d])).expect("logits");
    argmax(&logits) as u32
}

/// Prefill of `ids` on a fresh cache, up to the first token (the last position's
/// logits); also the first token's margin (top-1 − top-2 logit), recorded so that a
/// token mismatch between runtimes can be read as a near-tie or not.
fn prefill(llm: &Llama, ids: &[u32]) -> (KvCache, u32, f32) {
    let mut cache = llm.new_cache();
    let h = llm
        .forward(llm.embed(ids).expect("embed"), &mut cache)
        .expect("forward");
    let [_, n, d] = h.dims();
    let last = h.slice([0..1, n - 1..n, 0..d]).reshape([1, d]);
    let logits = host_logits(llm, &last).expect("logits");
    let top = argmax(&logits);
    let second = logits
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != top)
        .fold(f32::NEG_INFINITY, |m, (_, &v)| m.max(v));
    (cache, top as u32, logits[top] - second)
}

/// `OMNI_BENCH_PROFILE=1`: the sub-steps of a few decode steps, each read back so
/// that its time is its own.
fn profile_decode(llm: &Llama, cache: &mut KvCache, mut tok: u32) {
    let sync3 = |t: &Tensor<3>| {
        let _ = t.clone().slice([0..1, 0..1, 0..1]).into_data();
    };
    for step in 0..4 {
        let t0 = Instant::now();
        let x = llm.embed(&[tok]).expect("embed");
        sync3(&x);
        let t_embed = ms(t0);
        let start = cache.len();
        let t1 = Instant::now();
        let (cos, sin) = llm.rope.tables(start, 1, llm.dtype.burn(), &llm.device());
        let mut x = x.cast(llm.dtype.burn());
        let mut per_layer = Vec::new();
        for (layer, lc) in llm.layers.iter().zip(cache.layers.iter_mut()) {
            let tl = Instant::now();
            x = layer.forward(x, &cos, &sin, lc);
            sync3(&x);
            per_layer.push(ms(tl));
        }
        let t_layers = ms(t1);
        let t2 = Instant::now();
        let h = llm.norm.forward(x);
        sync3(&h);
        let t_norm = ms(t2);
        let t3 = Instant::now();
        let d = h.dims()[2];
        let logits = host_logits(llm, &h.reshape([1, d])).expect("logits");
        let t_logits = ms(t3);
        tok = argmax(&logits) as u32;
        eprintln!(
            "  profile step {step}: embed {t_embed:.1} ms, layers {t_layers:.1} ms (first {:.1}, max {:.1}), norm {t_norm:.1} ms, lm_head+readback {t_logits:.1} ms",
            per_layer[0],
            per_layer.iter().cloned().fold(0.0, f64::max)
        );
    }
}

/// `OMNI_BENCH_PROFILE=1`: the operations of layer 0 for one decode token in burn's ops
/// (`DecoderLayer::forward_burn`'s steps, each read back): the path decode takes with
/// unpacked weights (`f16burn`) and off the CPU; on the CPU with packed weights decode
/// runs the host layer (`llama::host`), timed whole by `profile_decode`.
fn profile_layer_ops(llm: &Llama, cache: &KvCache) {
    use omni_core::burn::tensor::module::attention;
    use omni_core::burn::tensor::ops::AttentionModuleOptions;
    use omni_core::model::llama::rope;
    let mut lc = cache.layers[0].clone();
    let layer = &llm.layers[0];
    let a = &layer.self_attn;
    let (h, kvh, hd) = (a.n_heads, a.n_kv_heads, a.head_dim);
    let mut rng = Rng(3);
    let hidden = llm.config.hidden_size;
    let x: Vec<f32> = (0..hidden).map(|_| rng.uniform()).collect();
    let x = Tensor::<3>::from_data(TensorData::new(x, [1, 1, hidden]), &llm.device())
        .cast(llm.dtype.burn());
    let (cos, sin) = llm
        .rope
        .tables(lc.len(), 1, llm.dtype.burn(), &llm.device());
    let mut log = Vec::new();
    macro_rules! op {
        ($name:expr, $e:expr) => {{
            let t = Instant::now();
            let y = $e;
            let _ = y.clone().into_data();
            log.push(format!("{} {:.2}", $name, ms(t)));
            y
        }};
    }
    for _ in 0..2 {
        log.clear();
        let xn = op!("norm", layer.input_layernorm.forward(x.clone()));
        let q = op!("q_proj", a.q_proj.forward(xn.clone()));
        let k = op!("k_proj", a.k_proj.forward(xn.clone()));
        let v = op!("v_proj", a.v_proj.forward(xn.clone()));
        let q = q.reshape([1, 1, h, hd]).swap_dims(1, 2);
        let k = k.reshape([1, 1, kvh, hd]).swap_dims(1, 2);
        let v = v.reshape([1, 1, kvh, hd]).swap_dims(1, 2);
        let q = op!("rope_q", rope::apply(q, &cos, &sin));
        let k = op!("rope_k", rope::apply(k, &cos, &sin));
        let t = Instant::now();
        let (kk, vv) = lc.append(k, v);
        let _ = kk.clone().into_data();
        log.push(format!("cache_append {:.2}", ms(t)));
        lc.truncate(lc.len() - 1);
        let o = op!(
            "attention",
            attention(
                q.reshape([1, kvh, h / kvh, hd]),
                kk,
                vv,
                None,
                None,
                AttentionModuleOptions::default()
            )
        );
        let o = op!("o_proj", a.o_proj.forward(o.reshape([1, 1, h * hd])));
        let x2 = op!("residual", x.clone() + o);
        let xn2 = op!("norm2", layer.post_attention_layernorm.forward(x2));
        let g = op!("gate_proj", layer.mlp.gate_proj.forward(xn2.clone()));
        let u = op!("up_proj", layer.mlp.up_proj.forward(xn2));
        let gu = op!("silu_mul", omni_core::burn::tensor::activation::silu(g) * u);
        let _ = op!("down_proj", layer.mlp.down_proj.forward(gu));
        eprintln!("  layer-0 ops (ms): {}", log.join(", "));
    }
}

/// Prefill (n_prefill timed runs after one warm-up) and decode (DECODE_STEPS timed
/// steps after the last prefill, 2 warm-up steps after the warm-up prefill).
fn bench_llm_model(
    res: &mut Results,
    id: &str,
    llm: &Llama,
    n_prefill: usize,
    load_ms: f64,
    do_prefill: bool,
) {
    let ids = token_ids(PREFILL, llm.config.vocab_size);
    // Warm-up.
    let (mut cache, mut tok, _) = prefill(llm, &ids);
    for _ in 0..2 {
        tok = decode_step(llm, &mut cache, tok);
    }
    if std::env::var("OMNI_BENCH_PROFILE").is_ok() {
        profile_layer_ops(llm, &cache);
        profile_decode(llm, &mut cache, tok);
    }
    drop(cache);
    let mut pre = Vec::new();
    let mut last = None;
    for _ in 0..n_prefill.max(1) {
        let t = Instant::now();
        let r = prefill(llm, &ids);
        pre.push(ms(t));
        last = Some(r);
    }
    if do_prefill {
        let med = common::median(&pre);
        res.row(
            &format!("{id}_prefill"),
            &pre,
            json!({ "tokens": PREFILL, "tokens_per_s": PREFILL as f64 / (med / 1e3), "load_ms": load_ms }),
        );
    }
    let (mut cache, mut tok, margin) = last.expect("a prefill ran");
    let mut toks = vec![tok];
    let mut dec = Vec::new();
    for _ in 0..DECODE_STEPS {
        let t = Instant::now();
        tok = decode_step(llm, &mut cache, tok);
        dec.push(ms(t));
        toks.push(tok);
    }
    res.row(
        &format!("{id}_decode"),
        &dec,
        json!({ "context": PREFILL, "load_ms": load_ms, "check_tokens": toks, "first_token_margin": margin }),
    );
}

/// `OMNI_F16_KERNELS=0` (f16 layers computed by burn) for the next model load.
fn set_f16_burn(on: bool) {
    if on {
        std::env::set_var("OMNI_F16_KERNELS", "0");
    } else {
        std::env::remove_var("OMNI_F16_KERNELS");
    }
}

fn bench_llm(res: &mut Results, dir: &Path, dev: &Device, n_prefill: usize) {
    let cfg = llama_config(2048, 16, 32, 8, 8192, 128256, 32.0);
    eprintln!("[llm1b] writing the random checkpoint");
    let path = llama_checkpoint(&cfg).write(&dir.join("llama1b_f16.safetensors"));
    let store = WeightStore::open_safetensors(&path).expect("open");
    let dtypes = env_or("OMNI_BENCH_LLM_DTYPES", "f32,f16burn,f16,q8_0,q4_0");
    for name in dtypes.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        set_f16_burn(name == "f16burn");
        let dt = RunDType::parse(name.trim_end_matches("burn"))
            .unwrap_or_else(|| panic!("OMNI_BENCH_LLM_DTYPES: unknown dtype {name}"));
        eprintln!("[llm1b_{name}]");
        let t = Instant::now();
        let llm = Llama::load(&store, &cfg, dt, dev, None).expect("load llm");
        let load_ms = ms(t);
        res.mark();
        bench_llm_model(
            res,
            &format!("llm1b_{name}"),
            &llm,
            n_prefill,
            load_ms,
            true,
        );
    }
}

fn bench_llm8b_layer(res: &mut Results, dir: &Path, dev: &Device) {
    // One Llama-3.1-8B layer; vocab 256 keeps the embedding and head negligible.
    let cfg = llama_config(4096, 1, 32, 8, 14336, 256, 8.0);
    let path = llama_checkpoint(&cfg).write(&dir.join("llama8b_1layer_f16.safetensors"));
    let store = WeightStore::open_safetensors(&path).expect("open");
    let dtypes = env_or("OMNI_BENCH_LLM8B_DTYPES", "f16burn,f16,q8_0,q4_0");
    for name in dtypes.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        // `f16burn`: f16 through burn's own matmul (OMNI_F16_KERNELS=0), the path before
        // omni-kernels, timed in the same run as the kernel rows.
        set_f16_burn(name == "f16burn");
        let dt = RunDType::parse(name.trim_end_matches("burn"))
            .unwrap_or_else(|| panic!("OMNI_BENCH_LLM8B_DTYPES: unknown dtype {name}"));
        eprintln!("[llm8b_layer_{name}]");
        let t = Instant::now();
        let llm = Llama::load(&store, &cfg, dt, dev, None).expect("load llm");
        let load_ms = ms(t);
        res.mark();
        bench_llm_model(res, &format!("llm8b_layer_{name}"), &llm, 1, load_ms, true);
    }
}

// ---------------------------------------------------------------- speech decoder

fn bench_speech_decoder(res: &mut Results, dir: &Path, dev: &Device, n_full: usize) {
    eprintln!("[speech decoder]");
    let llm_cfg = llama_config(4096, 32, 32, 8, 14336, 128256, 8.0);
    let cfg = CtcDecoderConfig {
        n_layers: 2,
        dim: 4096,
        n_heads: 32,
        ffn: 11008,
        upsample_factor: 25,
        unit_vocab_size: 1000,
    };
    let mut ck = Checkpoint::default();
    ck.linear("speech_generator.input_proj", 4096, 4096, true, St::F16);
    for i in 0..cfg.n_layers {
        llama_layer(
            &mut ck,
            &format!("speech_generator.layers.{i}"),
            cfg.dim,
            cfg.n_heads,
            cfg.n_heads,
            cfg.ffn,
        );
    }
    ck.linear("speech_generator.output_proj", 4096, 1001, true, St::F16);
    let path = ck.write(&dir.join("speech_decoder_f16.safetensors"));
    let store = WeightStore::open_safetensors(&path).expect("open");
    // `OMNI_BENCH_SD_DTYPES` (default f32): the incremental row per run dtype; the
    // reference-way row (all frames) only for f32, PyTorch's dtype.
    let dtypes = env_or("OMNI_BENCH_SD_DTYPES", "f32");
    for name in dtypes.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let dt = RunDType::parse(name)
            .unwrap_or_else(|| panic!("OMNI_BENCH_SD_DTYPES: unknown dtype {name}"));
        bench_speech_decoder_dtype(res, &store, &llm_cfg, &cfg, dt, name, dev, n_full);
    }
}

#[allow(clippy::too_many_arguments)]
fn bench_speech_decoder_dtype(
    res: &mut Results,
    store: &WeightStore,
    llm_cfg: &LlamaConfig,
    cfg: &CtcDecoderConfig,
    dtype: RunDType,
    name: &str,
    dev: &Device,
    n_full: usize,
) {
    eprintln!("[speech decoder {name}]");
    let t = Instant::now();
    let gen =
        SpeechGenerator::load(store, "speech_generator.", llm_cfg, cfg, dtype, dev).expect("load");
    let load_ms = ms(t);
    res.mark();

    // 50 LLM hidden states (post-norm, O(1) values).
    let tokens = 50;
    let mut rng = Rng(11);
    let reps: Vec<f32> = (0..tokens * 4096).map(|_| rng.uniform() * 1.7).collect();
    let reps = Tensor::<2>::from_data(TensorData::new(reps, [tokens, 4096]), dev);
    let lambda = cfg.upsample_factor;

    // Warm-up: 2 states on a fresh cache.
    {
        let mut c = gen.new_cache();
        let l = gen
            .frame_logits(reps.clone().slice([0..2, 0..4096]), &mut c)
            .expect("logits");
        gen.frame_labels(l).expect("labels");
    }
    // The reference's way: the whole decoder over all 50 × 25 frames (also fills the cache).
    let mut cache = gen.new_cache();
    let mut check = Vec::new();
    let full_runs = if name == "f32" { n_full } else { 1 };
    let full = time_n(0, full_runs, || {
        cache = gen.new_cache();
        let l = gen.frame_logits(reps.clone(), &mut cache).expect("logits");
        let labels = gen.frame_labels(l).expect("labels");
        assert_eq!(labels.len(), tokens * lambda);
        check = labels[labels.len() - 25..].to_vec();
    });
    if name == "f32" {
        res.row(
            "sd_full_f32",
            &full,
            json!({ "tokens": tokens, "frames": tokens * lambda, "load_ms": load_ms, "check_last_labels": check }),
        );
    }
    // omni's way (what `UnitStream::push` runs): the 50th state's 25 frames against the
    // cached 49 × 25, i.e. frame_logits + frame_labels; the cache is cut back after each.
    let before = (tokens - 1) * lambda;
    let last = reps.slice([tokens - 1..tokens, 0..4096]);
    let inc = time_n(2, 10, || {
        cache.truncate(before);
        let l = gen.frame_logits(last.clone(), &mut cache).expect("logits");
        let labels = gen.frame_labels(l).expect("labels");
        assert_eq!(labels.len(), lambda);
        check = labels;
    });
    res.row(
        &format!("sd_inc_{name}"),
        &inc,
        json!({ "context_frames": before, "load_ms": load_ms, "check_last_labels": check }),
    );
}

// ---------------------------------------------------------------- vocoder

/// The published LJ vocoder's network fields (mhubert ... km1000_lj).
fn vocoder_config_json() -> serde_json::Value {
    json!({
        "resblock": "1",
        "upsample_rates": [5, 4, 4, 2, 2],
        "upsample_kernel_sizes": [11, 8, 8, 4, 4],
        "upsample_initial_channel": 512,
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "num_embeddings": 1000,
        "embedding_dim": 128,
        "model_in_dim": 128,
        "code_hop_size": 320,
        "f0": false,
        "dur_predictor_params": {"encoder_embed_dim": 128, "var_pred_hidden_dim": 128,
                                 "var_pred_kernel_size": 3, "var_pred_dropout": 0.5},
        "sampling_rate": 16000
    })
}

/// Folded (weight-norm removed) generator weights; the duration predictor's output
/// is the constant ln 3.2, so every unit lasts round(3.2 − 1) = 2 frames (40 ms):
/// both sides synthesise the same length whatever the random weights.
fn vocoder_checkpoint(cfg: &VocoderConfig) -> Checkpoint {
    let mut ck = Checkpoint::default();
    let conv = |ck: &mut Checkpoint, p: &str, shape: [usize; 3], fan_in: usize, n_bias: usize| {
        let a = 1.0 / (fan_in as f32).sqrt();
        ck.add(format!("{p}.weight"), &shape, St::F32, Init::Uniform(a));
        ck.add(format!("{p}.bias"), &[n_bias], St::F32, Init::Uniform(a));
    };
    let (e, c0) = (cfg.embedding_dim, cfg.upsample_initial_channel);
    ck.add(
        "dict.weight",
        &[cfg.num_embeddings, e],
        St::F32,
        Init::Uniform(1.0),
    );
    let h = cfg
        .dur_predictor_params
        .as_ref()
        .map(|p| p.var_pred_hidden_dim)
        .unwrap_or(128);
    conv(&mut ck, "dur_predictor.conv1.0", [h, e, 3], e * 3, h);
    ck.add("dur_predictor.ln1.weight", &[h], St::F32, Init::Const(1.0));
    ck.add("dur_predictor.ln1.bias", &[h], St::F32, Init::Const(0.0));
    conv(&mut ck, "dur_predictor.conv2.0", [h, h, 3], h * 3, h);
    ck.add("dur_predictor.ln2.weight", &[h], St::F32, Init::Const(1.0));
    ck.add("dur_predictor.ln2.bias", &[h], St::F32, Init::Const(0.0));
    ck.add(
        "dur_predictor.proj.weight",
        &[1, h],
        St::F32,
        Init::Const(0.0),
    );
    ck.add(
        "dur_predictor.proj.bias",
        &[1],
        St::F32,
        Init::Const(3.2f32.ln()),
    );
    conv(&mut ck, "conv_pre", [c0, e, 7], e * 7, c0);
    for (i, &k) in cfg.upsample_kernel_sizes.iter().enumerate() {
        let (cin, cout) = (c0 >> i, cfg.stage_channels(i));
        conv(
            &mut ck,
            &format!("ups.{i}"),
            [cin, cout, k],
            cin * k / cfg.upsample_rates[i],
            cout,
        );
        for (j, &rk) in cfg.resblock_kernel_sizes.iter().enumerate() {
            let idx = i * cfg.resblock_kernel_sizes.len() + j;
            for m in 0..3 {
                conv(
                    &mut ck,
                    &format!("resblocks.{idx}.convs1.{m}"),
                    [cout, cout, rk],
                    cout * rk,
                    cout,
                );
                conv(
                    &mut ck,
                    &format!("resblocks.{idx}.convs2.{m}"),
                    [cout, cout, rk],
                    cout * rk,
                    cout,
                );
            }
        }
    }
    let ch = cfg.stage_channels(cfg.num_upsamples() - 1);
    conv(&mut ck, "conv_post", [1, ch, 7], ch * 7, 1);
    ck
}

fn bench_vocoder(res: &mut Results, dir: &Path, dev: &Device) {
    eprintln!("[vocoder]");
    let cfg_json = vocoder_config_json();
    let cfg_path = dir.join("vocoder_config.json");
    std::fs::write(&cfg_path, serde_json::to_string_pretty(&cfg_json).unwrap())
        .expect("write vocoder config");
    let cfg = VocoderConfig::from_json_file(&cfg_path).expect("vocoder config");
    let path = vocoder_checkpoint(&cfg).write(&dir.join("vocoder_folded.safetensors"));
    let store = WeightStore::open_safetensors(&path).expect("open");
    let t = Instant::now();
    let voc = CodeHiFiGan::from_store(&store, cfg, dev).expect("load vocoder");
    let load_ms = ms(t);
    res.mark();
    let units: Vec<u32> = (0..40u32).map(|i| (i * 397 + 11) % 1000).collect();
    let mut samples = 0;
    let mut rms = 0.0;
    let times = time_n(2, 10, || {
        let wav = voc.synthesize(&units).expect("synthesize");
        samples = wav.len();
        rms = (wav.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>() / samples as f64).sqrt();
    });
    let audio_s = samples as f64 / 16000.0;
    let med = common::median(&times);
    res.row(
        "vocoder40",
        &times,
        json!({ "units": 40, "samples": samples, "audio_s": audio_s, "rtf": med / 1e3 / audio_s, "load_ms": load_ms,
                "check_rms": rms }),
    );
}

fn main() {
    let dir = PathBuf::from(env_or("OMNI_BENCH_DIR", "/tmp/omni_bench"));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let out = PathBuf::from(env_or(
        "OMNI_BENCH_OUT",
        &dir.join("omni.jsonl").to_string_lossy(),
    ));
    let rows = env_or("OMNI_BENCH_ROWS", "mel,whisper,llm,llm8b,sd,vocoder");
    let want = |r: &str| rows.split(',').any(|x| x.trim() == r);
    let n_prefill: usize = env_or("OMNI_BENCH_PREFILL_RUNS", "3")
        .parse()
        .expect("OMNI_BENCH_PREFILL_RUNS");
    let n_full: usize = env_or("OMNI_BENCH_SD_FULL_RUNS", "3")
        .parse()
        .expect("OMNI_BENCH_SD_FULL_RUNS");
    eprintln!(
        "omni bench: RAYON_NUM_THREADS={} dir={} out={}",
        env_or("RAYON_NUM_THREADS", "(unset)"),
        dir.display(),
        out.display()
    );
    let dev = Device::flex();
    let mut res = Results::create(&out);
    let t = Instant::now();
    if want("mel") {
        bench_mel(&mut res);
    }
    if want("whisper") {
        bench_whisper(&mut res, &dir, &dev);
    }
    if want("llm") {
        bench_llm(&mut res, &dir, &dev, n_prefill);
    }
    if want("llm8b") {
        bench_llm8b_layer(&mut res, &dir, &dev);
    }
    if want("sd") {
        bench_speech_decoder(&mut res, &dir, &dev, n_full);
    }
    if want("vocoder") {
        bench_vocoder(&mut res, &dir, &dev);
    }
    eprintln!("omni bench done in {:.0} s", t.elapsed().as_secs_f64());
}
