//! Probe (issue 11): burn-flex's f32 GEMM (the `gemm` crate) at the shapes of
//! omni's f32 rows, in GFLOP/s. `cargo run --release --example gemm_probe`;
//! `scripts/gemm_probe_torch.py` times PyTorch on the same shapes.
use std::time::Instant;

use omni_core::burn::tensor::{DType, Device, Tensor, TensorData};
use omni_core::kernels::{Format, WeightMatrix};

fn main() {
    let dev = Device::flex();
    // (m, k, n): x[m, k] · W[k, n]
    let shapes = [
        (1500usize, 512usize, 2048usize), // whisper base fc1
        (1500, 2048, 512),                // fc2
        (1500, 512, 512),                 // q/k/v/o
        (340, 2048, 8192),                // 1B gate
        (340, 8192, 2048),                // 1B down
        (340, 2048, 2048),                // 1B q/o
        (340, 2048, 512),                 // 1B k/v
        (25, 4096, 11008),                // speech decoder ffn
        (4, 4096, 11008),
        (8, 4096, 11008),
        (56, 4096, 11008),
        (100, 4096, 11008),
        (1500, 1280, 5120), // v3 fc1
        (340, 4096, 14336), // 8B gate
        (340, 14336, 4096), // 8B down
        (340, 4096, 4096),  // 8B q/o
        (340, 4096, 1024),  // 8B k/v
    ];
    println!("CPU: {}", omni_core::kernels::cpu_description());
    for (dt, (m, k, n)) in [DType::F32, DType::F16]
        .into_iter()
        .flat_map(|d| shapes.map(|s| (d, s)))
    {
        // `PROBE_M=340`: only the shapes with that many rows.
        if std::env::var("PROBE_M").is_ok_and(|v| v != m.to_string()) {
            continue;
        }
        let a =
            Tensor::<2>::from_data(TensorData::new(vec![0.01f32; m * k], [m, k]), &dev).cast(dt);
        let b =
            Tensor::<2>::from_data(TensorData::new(vec![0.02f32; k * n], [k, n]), &dev).cast(dt);
        let mut ts = vec![];
        for _ in 0..7 {
            let t = Instant::now();
            let c = a.clone().matmul(b.clone());
            let _ = c.into_data();
            ts.push(t.elapsed().as_secs_f64());
        }
        ts.sort_by(|x, y| x.partial_cmp(y).unwrap());
        let t = ts[3];
        if dt == DType::F32 {
            // The same product through omni-kernels' GEMM path: W stored [n, k].
            let wm = WeightMatrix::from_f32(Format::F32, n, k, &vec![0.02f32; k * n]);
            let x = vec![0.01f32; m * k];
            let mut y = vec![0.0f32; m * n];
            let mut tw = vec![];
            for _ in 0..7 {
                let t = Instant::now();
                wm.matmul_gemm(&x, m, &mut y);
                tw.push(t.elapsed().as_secs_f64());
            }
            tw.sort_by(|x, y| x.partial_cmp(y).unwrap());
            println!(
                "omni-kernels matmul_gemm m={m} k={k} n={n}: {:.2} ms, {:.0} GFLOP/s",
                tw[3] * 1e3,
                2.0 * (m * k * n) as f64 / tw[3] / 1e9
            );
            for f in [Format::F32, Format::F16, Format::Q8_0, Format::Q4_0] {
                let wm = WeightMatrix::from_f32(f, n, k, &vec![0.02f32; k * n]);
                let mut tg = vec![];
                for _ in 0..7 {
                    let t = Instant::now();
                    wm.matmul_gemm(&x, m, &mut y);
                    tg.push(t.elapsed().as_secs_f64());
                }
                tg.sort_by(|x, y| x.partial_cmp(y).unwrap());
                let mut tk = vec![];
                for _ in 0..7 {
                    let t = Instant::now();
                    wm.matmul(&x, m, &mut y);
                    tk.push(t.elapsed().as_secs_f64());
                }
                tk.sort_by(|x, y| x.partial_cmp(y).unwrap());
                let mut tp = vec![];
                for _ in 0..7 {
                    let t = Instant::now();
                    wm.matmul_panel(&x, m, &mut y);
                    tp.push(t.elapsed().as_secs_f64());
                }
                tp.sort_by(|x, y| x.partial_cmp(y).unwrap());
                println!(
                    "omni-kernels {f:?} m={m} k={k} n={n}: matmul (kernels) {:.2} ms, matmul_gemm {:.2} ms, matmul_panel {:.2} ms ({:.0} GFLOP/s)",
                    tk[3] * 1e3,
                    tg[3] * 1e3,
                    tp[3] * 1e3,
                    2.0 * (m * k * n) as f64 / tp[3] / 1e9
                );
            }
        }
        println!(
            "flex {dt:?} m={m} k={k} n={n}: {:.2} ms, {:.0} GFLOP/s",
            t * 1e3,
            2.0 * (m * k * n) as f64 / t / 1e9
        );
    }
}
