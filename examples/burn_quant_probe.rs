//! Probe (issue 11): does burn 0.22's own quantization (`QuantScheme`,
//! `quantize_dynamic`) make a single-token matmul on the CPU `flex` backend
//! faster, or does it dequantize the whole weight on every call?
//!
//! `cargo run --release --example burn_quant_probe` — times `x[1, k] · W[k, n]`
//! for one Llama-3.1-8B `gate_proj` shape (k 4096, n 14336) with W in f32, f16,
//! burn q8 per-tensor, burn q8 per-32-block, and omni-kernels' q8_0/q4_0 GEMV.
//! `PROBE_PROJ_ONLY=1` times only omni's `Proj` (kernel path vs the long-input
//! path: dequantized tiles for q8_0/q4_0, the `gemm` crate for f32/f16) at the row
//! counts in `PROBE_M` (default `1,2,4,8,16,25`) for the formats in `PROBE_FORMATS`
//! (default `q8_0,q4_0,f16,f32`).
//! Reading the source agrees with the timings: burn-flex does not override
//! `q_matmul`, whose default (burn-backend `QTensorOps::q_matmul`) calls
//! `dequantize` (a scalar map over every weight) then `float_matmul`.

use std::time::Instant;

use omni_core::burn::tensor::quantization::{QuantScheme, QuantStore, QuantValue};
use omni_core::burn::tensor::{DType, Device, Tensor, TensorData};
use omni_core::kernels::{Format, WeightMatrix};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time(n: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn main() {
    let (k, n) = (4096usize, 14336usize);
    let dev = Device::flex();
    let mut s = 1u64;
    let w: Vec<f32> = (0..k * n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.05
        })
        .collect();
    let x: Vec<f32> = (0..k).map(|i| ((i % 17) as f32 - 8.0) * 0.1).collect();
    println!("CPU: {}", omni_core::kernels::cpu_description());
    let proj_only = std::env::var("PROBE_PROJ_ONLY").is_ok_and(|v| v == "1");
    let ms_list: Vec<usize> = std::env::var("PROBE_M")
        .unwrap_or_else(|_| "1,2,4,8,16,25".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let mut wnk = vec![0.0f32; k * n];
    for r in 0..k {
        for c in 0..n {
            wnk[c * k + r] = w[r * n + c];
        }
    }
    if !proj_only {
        burn_paths(&dev, &w, &wnk, &x, k, n);
    }
    // omni's Proj with m rows: the kernel path against dequantized tiles + f32 matmul.
    println!(
        "omni Proj, x[m, {k}] · W[{n}, {k}]ᵀ (ms, median of 3): m, kernels path, long-input path"
    );
    let formats: Vec<Format> = std::env::var("PROBE_FORMATS")
        .unwrap_or_else(|_| "q8_0,q4_0,f16,f32".into())
        .split(',')
        .map(|f| match f.trim() {
            "q8_0" => Format::Q8_0,
            "q4_0" => Format::Q4_0,
            "f16" => Format::F16,
            "f32" => Format::F32,
            o => panic!("PROBE_FORMATS: unknown format {o}"),
        })
        .collect();
    for f in formats {
        let p =
            omni_core::model::nn::proj::Proj::packed(WeightMatrix::from_f32(f, n, k, &wnk), None);
        for &m in &ms_list {
            let xm = Tensor::<2>::from_data(
                TensorData::new(
                    x.iter().cycle().take(m * k).copied().collect::<Vec<_>>(),
                    [m, k],
                ),
                &dev,
            );
            let a = time(3, || {
                let _ = p.forward_with(xm.clone(), Some(true)).into_data();
            });
            let b = time(3, || {
                let _ = p.forward_with(xm.clone(), Some(false)).into_data();
            });
            println!("  {f:?} m={m:3}  {a:8.2}  {b:8.2}");
        }
    }
}

/// burn's own f32 / f16 / quantized matmuls and omni-kernels' GEMV, one row.
fn burn_paths(dev: &Device, w: &[f32], wnk: &[f32], x: &[f32], k: usize, n: usize) {
    let xt = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [1, k]), dev);
    let wt = Tensor::<2>::from_data(TensorData::new(w.to_vec(), [k, n]), dev);
    println!("x[1, {k}] · W[{k}, {n}], median of 7 (ms):");
    let f32_ms = time(7, || {
        let _ = xt.clone().matmul(wt.clone()).into_data();
    });
    println!("  burn f32                        {f32_ms:8.2}");
    let w16 = wt.clone().cast(DType::F16);
    let x16 = xt.clone().cast(DType::F16);
    let ms = time(7, || {
        let _ = x16.clone().matmul(w16.clone()).into_data();
    });
    println!("  burn f16                        {ms:8.2}");
    let schemes = [
        (
            "burn q8 per-tensor (Q8S)",
            QuantScheme::default()
                .with_value(QuantValue::Q8S)
                .with_store(QuantStore::Native),
        ),
        (
            "burn q8 per-32-block (Q8S)",
            QuantScheme::default()
                .with_value(QuantValue::Q8S)
                .with_store(QuantStore::Native)
                .per_block([32], omni_core::burn::tensor::quantization::ScaleDtype::F32),
        ),
    ];
    for (name, scheme) in schemes {
        let wq = wt.clone().quantize_dynamic(&scheme);
        let ms = time(7, || {
            let _ = xt.clone().matmul(wq.clone()).into_data();
        });
        let deq = time(3, || {
            let _ = wq.clone().dequantize().into_data();
        });
        println!("  {name:31} {ms:8.2}   (dequantize alone {deq:.2})");
    }
    for f in [Format::F16, Format::Q8_0, Format::Q4_0] {
        let m = WeightMatrix::from_f32(f, n, k, wnk);
        let mut y = vec![0.0; n];
        let ms = time(7, || m.matmul(x, 1, &mut y));
        println!("  omni-kernels {f:?} GEMV{:14} {ms:8.2}", "");
    }
}
