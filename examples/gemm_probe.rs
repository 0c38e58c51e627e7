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
        (1500, 5120, 1280), // v3 fc2
        (1500, 1280, 1280), // v3 q/k/v/o
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
        let t = median_s(|| {
            let _ = a.clone().matmul(b.clone()).into_data();
        });
        if dt == DType::F32 {
            // The same product through omni-kernels' GEMM path: W stored [n, k].
            let wm = WeightMatrix::from_f32(Format::F32, n, k, &vec![0.02f32; k * n]);
            let x = vec![0.01f32; m * k];
            let mut y = vec![0.0f32; m * n];
            let tw = median_s(|| wm.matmul_gemm(&x, m, &mut y));
            println!(
                "omni-kernels matmul_gemm m={m} k={k} n={n}: {:.2} ms, {:.0} GFLOP/s",
                tw * 1e3,
                2.0 * (m * k * n) as f64 / tw / 1e9
            );
            for f in [Format::F32, Format::F16, Format::Q8_0, Format::Q4_0] {
                let wm = WeightMatrix::from_f32(f, n, k, &vec![0.02f32; k * n]);
                let tg = median_s(|| wm.matmul_gemm(&x, m, &mut y));
                let tk = median_s(|| wm.matmul(&x, m, &mut y));
                let tp = median_s(|| wm.matmul_panel(&x, m, &mut y));
                println!(
                    "omni-kernels {f:?} m={m} k={k} n={n}: matmul (kernels) {:.2} ms, matmul_gemm {:.2} ms, matmul_panel {:.2} ms ({:.0} GFLOP/s)",
                    tk * 1e3,
                    tg * 1e3,
                    tp * 1e3,
                    2.0 * (m * k * n) as f64 / tp / 1e9
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

/// The median of 7 timed runs of `f`, in seconds.
fn median_s(mut f: impl FnMut()) -> f64 {
    let mut ts: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    ts.sort_by(|x, y| x.partial_cmp(y).unwrap());
    ts[3]
}
