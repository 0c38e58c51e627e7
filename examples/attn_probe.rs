//! Probe (issue 11): `omni_kernels::attention_f32` at the Whisper encoder's shapes
//! (1500 frames; base: 8 heads, large-v3: 20 heads, d = 64), in GFLOP/s (4·t²·c).
//! `cargo run --release --example attn_probe`.
use std::time::Instant;

fn main() {
    println!("CPU: {}", omni_core::kernels::cpu_description());
    for (name, heads) in [("whisper-base", 8usize), ("whisper-large-v3", 20)] {
        let (t, d) = (1500usize, 64usize);
        let c = heads * d;
        let q: Vec<f32> = (0..t * c).map(|i| ((i % 13) as f32 - 6.0) * 0.05).collect();
        let k: Vec<f32> = (0..t * c).map(|i| ((i % 7) as f32 - 3.0) * 0.05).collect();
        let v: Vec<f32> = (0..t * c).map(|i| ((i % 5) as f32 - 2.0) * 0.1).collect();
        let mut out = vec![0.0f32; t * c];
        let mut ts = vec![];
        for _ in 0..7 {
            let t0 = Instant::now();
            omni_core::kernels::attention_f32(&q, &k, &v, t, t, heads, d, &mut out);
            ts.push(t0.elapsed().as_secs_f64());
        }
        ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let s = ts[3];
        println!(
            "{name}: t={t} heads={heads} d={d}: {:.2} ms per layer, {:.0} GFLOP/s",
            s * 1e3,
            4.0 * (t * t * c) as f64 / s / 1e9
        );
    }
}
