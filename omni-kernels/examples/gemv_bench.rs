//! Kernel micro-benchmark: `cargo run --release -p omni-kernels --example gemv_bench`.
//! Times `x[m, k] · Wᵀ` for one Llama-3.1-8B `gate_proj` (n 14336, k 4096) per
//! format and instruction set, reports the median wall time, the weight bytes
//! streamed per second, and the process CPU time per call (robust to other
//! processes stealing cores, unlike wall time). `GEMV_M` = rows of x (default 1),
//! `GEMV_N` = rows of W (default 14336), `GEMV_ISA` = only this instruction set,
//! `GEMV_K` = columns (default 4096), `GEMV_COPIES` = that many copies of W used in
//! turn (default 1; e.g. 64 copies of a 2048-wide layer make every call read DRAM, as
//! in a model whose weights do not fit in the cache, instead of a cache-resident W).

use std::time::Instant;

use omni_kernels::{Format, Isa, WeightMatrix};

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc/self/stat (clock ticks, 100 Hz).
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit(") ")
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn main() {
    let n: usize = std::env::var("GEMV_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(14336);
    let k: usize = std::env::var("GEMV_K")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096);
    let copies: usize = std::env::var("GEMV_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let m: usize = std::env::var("GEMV_M")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut s = 7u64;
    let w: Vec<f32> = (0..n * k)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let x: Vec<f32> = (0..m * k).map(|i| ((i % 13) as f32 - 6.0) * 0.1).collect();
    println!("{}", omni_kernels::cpu_description());
    println!(
        "x[{m}, {k}] · W[{n}, {k}]ᵀ ({copies} copies in turn), threads {}",
        rayon::current_num_threads()
    );
    for f in [Format::F16, Format::Q8_0, Format::Q4_0] {
        let wms: Vec<WeightMatrix> = (0..copies)
            .map(|_| WeightMatrix::from_f32(f, n, k, &w))
            .collect();
        let wm = &wms[0];
        let only = std::env::var("GEMV_ISA").ok();
        for isa in Isa::available()
            .into_iter()
            .filter(|i| only.as_deref().is_none_or(|o| o == i.name()))
        {
            let mut y = vec![0.0f32; m * n];
            wm.matmul_with(isa, &x, m, &mut y);
            let reps = if n < 2048 {
                301
            } else if m > 8 {
                3
            } else {
                15
            };
            let reps = reps.max(copies);
            let mut t = Vec::new();
            let c0 = cpu_seconds();
            for rep in 0..reps {
                let wm = &wms[rep % copies];
                let t0 = Instant::now();
                wm.matmul_with(isa, &x, m, &mut y);
                t.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            let cpu_ms = (cpu_seconds() - c0) * 1e3 / reps as f64;
            t.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let med = t[reps / 2];
            println!(
                "  {f:?} {:9} median {med:7.2} ms  min {:7.2} ms  {:6.1} GB/s (min)  cpu {cpu_ms:7.2} ms/call",
                isa.name(),
                t[0],
                wm.nbytes() as f64 / (t[0] / 1e3) / 1e9
            );
        }
    }
}
