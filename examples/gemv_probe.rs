//! Probe (issue 11): the f16 / q8_0 decode GEMV (one row of x) at the matrices of
//! the 1B and 8B shapes, in GB/s of weights read. `cargo run --release --example gemv_probe`;
//! `PROBE_REPS` (default 30) calls per shape, median reported.
use omni_core::kernels::{Format, WeightMatrix};

#[path = "common/timing.rs"]
mod timing;

fn main() {
    println!("CPU: {}", omni_core::kernels::cpu_description());
    let reps: usize = std::env::var("PROBE_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    // (k, n): x[1, k] · W[k, n]; four copies of each matrix, called in turn, so every
    // call streams its weights from memory rather than the 32 MiB L3.
    let shapes = [
        (2048usize, 8192usize), // 1B gate / up
        (8192, 2048),           // 1B down
        (2048, 2048),           // 1B q / o
        (2048, 128256),         // 1B lm_head
        (4096, 14336),          // 8B gate / up
        (14336, 4096),          // 8B down
        (4096, 4096),           // 8B q / o
        (4096, 1024),           // 8B k / v
    ];
    // `PROBE_FMT=f16`: one format only.
    let only = std::env::var("PROBE_FMT").ok();
    for fmt in [Format::F16, Format::Q8_0] {
        if only
            .as_deref()
            .is_some_and(|f| !format!("{fmt:?}").eq_ignore_ascii_case(f))
        {
            continue;
        }
        for &(k, n) in &shapes {
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 2654435761) % 1000) as f32 * 1e-3 - 0.5)
                .collect();
            let copies: Vec<WeightMatrix> = (0..4)
                .map(|_| WeightMatrix::from_f32(fmt, n, k, &w))
                .collect();
            drop(w);
            let x: Vec<f32> = (0..k).map(|i| (i % 7) as f32 * 0.1).collect();
            let mut out = vec![0.0f32; n];
            let mut next = copies.iter().cycle();
            let med_ms = timing::median_ms(reps, || {
                next.next().expect("a copy").matmul(&x, 1, &mut out)
            });
            let bytes = copies[0].nbytes() as f64;
            println!(
                "{fmt:?} k={k} n={n}: {med_ms:.3} ms, {:.1} GB/s",
                bytes / med_ms / 1e6
            );
        }
    }
}
