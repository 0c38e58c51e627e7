//! Probe (issue 11): the AMX GEMM (`WeightMatrix::matmul_amx`) against the AVX-512
//! packed-panel GEMM (`matmul_panel`) at the 1B prompt's shapes, interleaved, in
//! GFLOP/s. `cargo run --release --example amx_probe` (`PROBE_N` repetitions).
use std::time::Instant;

use omni_core::kernels::{amx_available, Format, WeightMatrix};

fn main() {
    println!("CPU: {}", omni_core::kernels::cpu_description());
    assert!(amx_available(), "no AMX here");
    let reps: usize = std::env::var("PROBE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    for (m, k, n) in [
        (340usize, 2048usize, 8192usize),
        (340, 8192, 2048),
        (1500, 1280, 5120),
        (1500, 5120, 1280),
        (1500, 1280, 1280),
    ] {
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1e-3)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 104729 % 1000) as f32 - 500.0) * 1e-4)
            .collect();
        for f in [Format::F32, Format::F16] {
            let wm = WeightMatrix::from_f32(f, n, k, &w);
            // `PROBE_X16=1`: x rounded to f16 values (two bf16 parts: four products
            // instead of five with f16 weights; omni's f16 runs keep f32 activations).
            let x: Vec<f32> = match f {
                Format::F16 if std::env::var_os("PROBE_X16").is_some() => {
                    WeightMatrix::from_f32(Format::F16, m, k, &x).dequantize()
                }
                _ => x.clone(),
            };
            let mut y = vec![0.0f32; m * n];
            let (mut ta, mut tp) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                let t = Instant::now();
                wm.matmul_amx(&x, m, &mut y);
                ta.push(t.elapsed().as_secs_f64());
                let t = Instant::now();
                wm.matmul_panel(&x, m, &mut y);
                tp.push(t.elapsed().as_secs_f64());
            }
            let gf = |t: &mut Vec<f64>| {
                t.sort_by(|a, b| a.total_cmp(b));
                (
                    t[t.len() / 2] * 1e3,
                    2.0 * (m * k * n) as f64 / t[t.len() / 2] / 1e9,
                )
            };
            let ((a, ga), (p, gp)) = (gf(&mut ta), gf(&mut tp));
            println!("{f:?} m={m} k={k} n={n}: amx {a:.2} ms ({ga:.0} GFLOP/s), avx-512 panel {p:.2} ms ({gp:.0} GFLOP/s)");
        }
    }
}
