//! Probe (issue 11): the 1B-shape prefill (340 tokens) alone, for `perf`: needs
//! `/tmp/omni_bench/llama1b_f16.safetensors` (`BENCH_KEEP=1 OMNI_BENCH_ROWS=llm
//! scripts/bench.sh`). `PROBE_DTYPE` (default f32; a list loads each in turn), `PROBE_N`
//! prefills (default 5).
//! `cargo run --release --example llm_probe`.
use std::time::Instant;

#[path = "common/timing.rs"]
mod timing;

use omni_core::burn::tensor::Device;
use omni_core::model::llama::{Llama, LlamaConfig};
use omni_core::weights::{RunDType, WeightStore};

fn main() {
    println!("CPU: {}", omni_core::kernels::cpu_description());
    let cfg: LlamaConfig = serde_json::from_value(serde_json::json!({
        "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
        "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
        "vocab_size": 128256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "max_position_embeddings": 131072, "tie_word_embeddings": false, "hidden_act": "silu"
    }))
    .expect("config");
    let n: usize = std::env::var("PROBE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let store = WeightStore::open_safetensors(std::path::Path::new(
        "/tmp/omni_bench/llama1b_f16.safetensors",
    ))
    .expect("checkpoint");
    let ids: Vec<u32> = (0..340u32).map(|i| (i * 7919) % 128000).collect();
    // `PROBE_DTYPE`: one dtype or several, loaded one after the other in this process.
    let dtypes = std::env::var("PROBE_DTYPE").unwrap_or_else(|_| "f32".into());
    let mut last = None;
    for name in dtypes.split(',') {
        let dt = RunDType::parse(name.trim()).expect("PROBE_DTYPE");
        drop(last.take());
        let llm = Llama::load(&store, &cfg, dt, &Device::flex(), None).expect("load");
        let mut ts = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            let mut cache = llm.new_cache();
            let h = llm
                .forward(llm.embed(&ids).expect("embed"), &mut cache)
                .expect("forward");
            let _ = h.into_data();
            ts.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!("{dt:?} prefill of 340 tokens, ms: {ts:.0?}");
        last = Some(llm);
    }
    let llm = last.expect("a dtype");
    // `PROBE_STAGES=1`: layer 0's steps on the 340 positions, each read back.
    if std::env::var_os("PROBE_STAGES").is_none() {
        return;
    }
    use omni_core::model::llama::rope;
    use omni_core::model::nn::proj::Proj;
    let med = |f: &mut dyn FnMut()| timing::median_ms(7, f);
    let l = &llm.layers[0];
    let x = llm.embed(&ids).expect("embed");
    let (cos, sin) = llm.rope.tables(0, 340, x.dtype(), &x.device());
    let sync = |y: omni_core::burn::tensor::Tensor<3>| {
        let _ = y.into_data();
    };
    let a = &l.self_attn;
    let norm = med(&mut || sync(l.input_layernorm.forward(x.clone())));
    let qkv = med(&mut || {
        let [q, k, v] = Proj::forward_shared([&a.q_proj, &a.k_proj, &a.v_proj], x.clone());
        sync(q);
        sync(k);
        sync(v);
    });
    let [q, _, _] = Proj::forward_shared([&a.q_proj, &a.k_proj, &a.v_proj], x.clone());
    let q4 = q.reshape([1, 340, 32, 64]).swap_dims(1, 2);
    let rope_q = med(&mut || {
        let _ = rope::apply(q4.clone(), &cos, &sin).into_data();
    });
    let attn = med(&mut || {
        let mut c = llm.new_cache();
        sync(a.forward(x.clone(), &cos, &sin, &mut c.layers[0]))
    });
    let o = med(&mut || sync(a.o_proj.forward(x.clone())));
    let add = med(&mut || sync(x.clone() + x.clone()));
    let mlp = med(&mut || sync(l.mlp.forward(x.clone())));
    let layer = med(&mut || {
        let mut c = llm.new_cache();
        sync(l.forward(x.clone(), &cos, &sin, &mut c.layers[0]))
    });
    println!(
        "layer 0, ms: rms_norm {norm:.1}, q/k/v {qkv:.1}, rope(q) {rope_q:.1}, attention module {attn:.1} (o_proj {o:.1}), add {add:.1}, mlp {mlp:.1}; whole layer {layer:.1}"
    );
}
