//! Probe (issue 11): the AMX GEMM (`WeightMatrix::matmul_amx`) against the AVX-512
//! packed-panel GEMM (`matmul_panel`) at the 1B prompt's shapes, interleaved, in
//! GFLOP/s; past 512 rows (Whisper's 1500 frames, the speech decoder's 1250) also
//! against the `gemm` crate (`matmul_gemm_tiled`) and, with `PROBE_CHUNKS=2,4`, the
//! AMX GEMM called on that many equal chunks of rows. `cargo run --release
//! --example amx_probe` (`PROBE_N` repetitions; `PROBE_ONLY=2,5`: those shapes of
//! the list, from 0; `PROBE_FMT=F32|F16`; `PROBE_AMX_ONLY=1`: the AMX GEMM alone;
//! `PROBE_M=25`: every shape at that many rows, the small-batch kernel timed too).
use std::time::Instant;

#[path = "common/timing.rs"]
mod timing;

use omni_core::kernels::{amx_available, Format, WeightMatrix};

fn main() {
    println!("CPU: {}", omni_core::kernels::cpu_description());
    assert!(amx_available(), "no AMX here");
    let reps: usize = std::env::var("PROBE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let only: Option<Vec<usize>> = std::env::var("PROBE_ONLY")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect());
    for (si, (m, k, n)) in [
        (340usize, 2048usize, 8192usize),
        (340, 8192, 2048),
        (1500, 1280, 5120),
        (1500, 5120, 1280),
        (1500, 1280, 1280),
        (1250, 4096, 11008),
        (1250, 11008, 4096),
        (1500, 512, 512),
        (1500, 512, 2048),
        (1500, 2048, 512),
    ]
    .into_iter()
    .enumerate()
    {
        if only.as_ref().is_some_and(|o| !o.contains(&si)) {
            continue;
        }
        // `PROBE_M`: every shape at that many rows of x (with the small-batch kernel,
        // `matmul`, timed too where it takes them).
        let m = std::env::var("PROBE_M")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(m);
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1e-3)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 104729 % 1000) as f32 - 500.0) * 1e-4)
            .collect();
        for f in [Format::F32, Format::F16] {
            if std::env::var("PROBE_FMT").is_ok_and(|v| v != format!("{f:?}")) {
                continue;
            }
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
                if std::env::var_os("PROBE_AMX_ONLY").is_some() {
                    tp.push(1.0);
                    continue;
                }
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
            if std::env::var_os("PROBE_M").is_some() {
                let s = timing::median_ms(reps, &mut || wm.matmul(&x, m, &mut y));
                let g = 2.0 * (m * k * n) as f64 / s / 1e6;
                println!("    small-batch kernel (matmul) {s:.2} ms ({g:.0} GFLOP/s)");
            }
            if m > 512 && std::env::var_os("PROBE_AMX_ONLY").is_none() {
                let med = |f: &mut dyn FnMut()| timing::median_ms(reps, f);
                let g = med(&mut || {
                    wm.matmul_gemm_tiled(&x, m, &mut y, usize::MAX);
                });
                let chunks: Vec<(usize, f64)> = std::env::var("PROBE_CHUNKS")
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|c| c.trim().parse::<usize>().ok())
                    .map(|c| {
                        let rows = m.div_ceil(c);
                        let t = med(&mut || {
                            for (xc, yc) in x.chunks(rows * k).zip(y.chunks_mut(rows * n)) {
                                wm.matmul_amx(xc, xc.len() / k, yc);
                            }
                        });
                        (c, t)
                    })
                    .collect();
                println!("    gemm crate {g:.2} ms; amx on chunks (count, ms): {chunks:.1?}");
            }
        }
    }
}
