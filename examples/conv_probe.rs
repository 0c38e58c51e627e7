//! Probe (issue 11): the vocoder's direct convolutions (`omni_kernels::Conv1d`) at
//! the ResBlock shapes of CodeHiFiGAN's five stages for 40 units (80 frames), in
//! GFLOP/s, and the time each stage's 18 convolutions take.
//! `cargo run --release --example conv_probe`.
use std::time::Instant;

use omni_core::kernels::Conv1d;

fn main() {
    println!("CPU: {}", omni_core::kernels::cpu_description());
    let mut total = 0.0;
    for (c, t) in [
        (256usize, 400usize),
        (128, 1600),
        (64, 6400),
        (32, 12800),
        (16, 25600),
    ] {
        let mut stage = 0.0;
        for k in [3usize, 7, 11] {
            for d in [1usize, 3, 5] {
                let w: Vec<f32> = (0..c * c * k)
                    .map(|i| ((i % 7) as f32 - 3.0) * 0.01)
                    .collect();
                let conv = Conv1d::new(&w, &vec![0.0; c], c, c, k, d, d * (k - 1) / 2);
                let x: Vec<f32> = (0..c * t).map(|i| ((i % 11) as f32 - 5.0) * 0.1).collect();
                let mut ts = vec![];
                for _ in 0..9 {
                    let t0 = Instant::now();
                    let y = conv.forward(&x, t, Some(0.1), None);
                    ts.push(t0.elapsed().as_secs_f64());
                    std::hint::black_box(y);
                }
                ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
                let s = ts[4];
                // Each ResBlock1 runs two convolutions per dilation (the second with
                // d = 1): four at d = 1, one at d = 3 and one at d = 5.
                stage += s * if d == 1 { 4.0 } else { 1.0 };
                println!(
                    "C={c} T={t} k={k} d={d}: {:.3} ms, {:.0} GFLOP/s",
                    s * 1e3,
                    2.0 * (c * c * k * t) as f64 / s / 1e9
                );
            }
        }
        println!("stage C={c}: {:.2} ms (18 convolutions)", stage * 1e3);
        total += stage;
    }
    println!("resblocks total ≈ {:.1} ms", total * 1e3);
}
