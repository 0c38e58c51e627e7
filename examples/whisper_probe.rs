//! Probe (issue 11): where the Whisper encoder's time goes at the large-v3 shape
//! (1500 frames, 1280 wide, 20 heads), stage by stage on one block, f32, median of 5.
//! Needs `/tmp/omni_bench/whisper_v3_4layers.safetensors` (`BENCH_KEEP=1
//! OMNI_BENCH_ROWS=whisper scripts/bench.sh`). `cargo run --release --example whisper_probe`.
#[path = "common/timing.rs"]
mod timing;

use omni_core::burn::tensor::{Device, Tensor, TensorData};
use omni_core::model::whisper::{WhisperConfig, WhisperEncoder};
use omni_core::weights::{RunDType, WeightStore};

/// Median of 5 runs, ms.
fn med(f: impl FnMut()) -> f64 {
    timing::median_ms(5, f)
}

fn main() {
    println!("CPU: {}", omni_core::kernels::cpu_description());
    let dev = Device::flex();
    let cfg = WhisperConfig {
        n_audio_layer: 4,
        ..WhisperConfig::large_v3()
    };
    let store = WeightStore::open_safetensors(std::path::Path::new(
        "/tmp/omni_bench/whisper_v3_4layers.safetensors",
    ))
    .expect("checkpoint");
    let enc = WhisperEncoder::load(&store, &cfg, RunDType::F32, &dev).expect("load");
    let mel: Vec<f32> = (0..128 * 3000).map(|i| ((i % 17) as f32) * 0.05).collect();
    // The median time of `e` on the 30 s mel, read back.
    let time_encoder = |e: &WhisperEncoder| {
        med(|| {
            let y = e.forward(e.mel_tensor(&mel, 128, 3000).unwrap()).unwrap();
            let _ = y.into_data();
        })
    };
    let whole = time_encoder(&enc);
    println!("whole encoder: {whole:.1} ms");
    let stem_cfg = WhisperConfig {
        n_audio_layer: 0,
        ..cfg.clone()
    };
    let stem = WhisperEncoder::load(&store, &stem_cfg, RunDType::F32, &dev).expect("load");
    let st = time_encoder(&stem);
    println!("stem (convs, GELUs, positions) + ln_post: {st:.1} ms");
    let (t, c) = (1500usize, 1280usize);
    let x: Vec<f32> = (0..t * c)
        .map(|i| ((i % 29) as f32 - 14.0) * 0.07)
        .collect();
    let xt = || Tensor::<3>::from_data(TensorData::new(x.clone(), [1, t, c]), &dev);
    let b = &enc.blocks[0];
    let sync = |y: Tensor<3>| {
        let _ = y.into_data();
    };
    let base = med(|| sync(xt()));
    println!("make+read x: {base:.2} ms");
    let ln = med(|| sync(b.attn_ln.forward(xt())));
    let q = med(|| sync(b.attn.query.forward(xt())));
    let kk = med(|| sync(b.attn.key.forward(xt())));
    let out = med(|| sync(b.attn.out.forward(xt())));
    let add = med(|| sync(xt() + xt()));
    let fc1 = med(|| sync(b.fc1.forward_gelu(xt())));
    let h: Vec<f32> = (0..t * 4 * c)
        .map(|i| ((i % 29) as f32 - 14.0) * 0.07)
        .collect();
    let fc2 = med(|| {
        sync(b.fc2.forward(Tensor::<3>::from_data(
            TensorData::new(h.clone(), [1, t, 4 * c]),
            &dev,
        )))
    });
    let mut o = vec![0.0f32; t * c];
    let att = med(|| omni_core::kernels::attention_f32(&x, &x, &x, t, t, 20, 64, &mut o));
    for (name, p, k) in [
        ("q", &b.attn.query, c),
        ("fc1", &b.fc1, c),
        ("fc2", &b.fc2, 4 * c),
    ] {
        let w = p.weight_matrix().expect("packed");
        let n = w.shape()[0];
        let xin: Vec<f32> = (0..t * k)
            .map(|i| ((i % 29) as f32 - 14.0) * 0.07)
            .collect();
        let mut y = vec![0.0f32; t * n];
        let g = med(|| w.matmul_gemm(&xin, t, &mut y));
        let g2 = med(|| {
            let mut y = vec![0.0f32; t * n];
            w.matmul_gemm(&xin, t, &mut y);
        });
        println!("{name}: matmul_gemm into a reused buffer {g:.1} ms, into a fresh one {g2:.1} ms");
    }
    println!(
        "per block (ms, each minus nothing): attn_ln {ln:.1}, q {q:.1}, k {kk:.1}, out {out:.1}, add {add:.1}, fc1+gelu {fc1:.1}, fc2 {fc2:.1}, attention kernel {att:.1}"
    );
}
