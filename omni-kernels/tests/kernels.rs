//! Specification tests of the q8_0/q4_0 formats (llama.cpp's formulas, checked by
//! hand) and of every kernel variant this CPU can run, against "dequantize, then
//! f64 matmul".

use half::f16;
use omni_kernels::blocks::{
    dequantize_row_q4_0, dequantize_row_q8_0, quantize_row_q4_0, quantize_row_q8_0,
};
use omni_kernels::{
    BlockQ4_0, BlockQ4_0x8, BlockQ8_0x8, Format, Heads, Isa, Q8Activations, WeightMatrix, QK,
};

/// Deterministic xorshift values in [-1, 1).
fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

const ONE_F16: u16 = 0x3C00;

#[test]
fn q8_0_block_follows_llama_cpp_formula_with_round_half_away_from_zero() {
    // amax = 127 makes d = 127/127 = 1 exactly, so x/d = x and the ties are exact.
    let mut x = [0.0f32; 32];
    let vals = [127.0, 0.5, -0.5, 1.5, 2.5, -2.5, 0.49, -3.49, 126.6, -127.0];
    x[..vals.len()].copy_from_slice(&vals);
    let b = quantize_row_q8_0(&x);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].d, ONE_F16, "d = amax / 127 = 1.0");
    // roundf: ties away from zero (2.5 → 3, not banker's 2).
    let expect: [i8; 10] = [127, 1, -1, 2, 3, -3, 0, -3, 127, -127];
    assert_eq!(&b[0].qs[..10], &expect);
    assert!(b[0].qs[10..].iter().all(|&q| q == 0));

    // A scale that is not a power of two: d = 2.54 / 127 stored as f16, codes from the f32 d.
    let mut y = [0.0f32; 32];
    y[0] = -2.54;
    y[1] = 1.0;
    let b = quantize_row_q8_0(&y);
    let d = 2.54f32 / 127.0;
    assert_eq!(b[0].d, f16::from_f32(d).to_bits());
    assert_eq!(b[0].qs[0], -127);
    assert_eq!(b[0].qs[1], (1.0f32 / d).round() as i8); // 50
    assert_eq!(b[0].qs[1], 50);
}

#[test]
fn q4_0_block_follows_llama_cpp_formula_and_nibble_order() {
    // max = -8 (the signed value of largest magnitude) gives d = -8 / -8 = 1, id = 1:
    // q = min(15, (int8)(x + 8.5)), truncation toward zero.
    let mut x = [0.0f32; 32];
    let vals: [(usize, f32, u8); 9] = [
        (0, -8.0, 0),  // (int8)(0.5) = 0
        (1, 7.0, 15),  // (int8)(15.5) = 15
        (2, 7.6, 15),  // (int8)(16.1) = 16 → clamped to 15
        (3, -0.5, 8),  // (int8)(8.0) = 8
        (4, 0.49, 8),  // (int8)(8.99) = 8
        (5, 0.5, 9),   // (int8)(9.0) = 9
        (6, -7.6, 0),  // (int8)(0.9) = 0
        (16, 3.0, 11), // element 16: high nibble of byte 0
        (31, -1.0, 7), // element 31: high nibble of byte 15
    ];
    for &(j, v, _) in &vals {
        x[j] = v;
    }
    let b = quantize_row_q4_0(&x);
    assert_eq!(b[0].d, ONE_F16, "d = max / -8 with max = -8");
    for &(j, v, q) in &vals {
        assert_eq!(b[0].code(j), q, "element {j} = {v}");
    }
    // Byte layout: element j low nibble, element j + 16 high nibble.
    assert_eq!(b[0].qs[0], 11 << 4); // element 0 → code 0, element 16 → code 11
    assert_eq!(b[0].qs[15], 8 | (7 << 4));
    assert_eq!(b[0].qs[1], 15 | (8 << 4)); // element 17 is 0 → code 8
}

#[test]
fn q4_0_scale_takes_the_first_signed_maximum_on_magnitude_ties() {
    let mut x = [0.0f32; 32];
    x[0] = 8.0;
    x[1] = -8.0; // same magnitude, later: ignored by the strict `<`
    let b = quantize_row_q4_0(&x);
    assert_eq!(f16::from_bits(b[0].d).to_f32(), -1.0, "d = 8 / -8");
    assert_eq!(b[0].code(0), 0, "8 · (1/-1) + 8.5 = 0.5 → 0");
    assert_eq!(
        b[0].code(1),
        15,
        "-8 · (1/-1) + 8.5 = 16.5 → 16 → clamped 15"
    );
    let mut out = [0.0f32; 32];
    dequantize_row_q4_0(&b, &mut out);
    assert_eq!(out[0], 8.0);
    assert_eq!(out[1], -7.0, "the clamp costs one step on the far side");

    // And the opposite order.
    x[0] = -8.0;
    x[1] = 8.0;
    assert_eq!(f16::from_bits(quantize_row_q4_0(&x)[0].d).to_f32(), 1.0);
}

#[test]
fn all_zero_blocks_get_scale_zero_and_the_zero_codes() {
    let x = [0.0f32; 64];
    let q8 = quantize_row_q8_0(&x);
    assert!(q8.iter().all(|b| b.d == 0 && b.qs.iter().all(|&q| q == 0)));
    let q4 = quantize_row_q4_0(&x);
    // max = 0, d = 0 / -8 = -0.0 in IEEE arithmetic (f16 bits 0x8000, as llama.cpp
    // stores it); id = 0, so every code is (int8)(8.5) = 8: bytes 0x88.
    assert!(q4
        .iter()
        .all(|b| b.d == 0x8000 && b.qs.iter().all(|&q| q == 0x88)));
    let mut out = [1.0f32; 64];
    dequantize_row_q4_0(&q4, &mut out);
    assert!(out.iter().all(|&v| v == 0.0));
    dequantize_row_q8_0(&q8, &mut out);
    assert!(out.iter().all(|&v| v == 0.0));
}

#[test]
fn round_trip_error_is_within_half_a_step_for_q8_0_and_one_step_for_q4_0() {
    let x: Vec<f32> = rand_vec(32 * 64, 1)
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1 + i % 7) as f32)
        .collect();
    let mut y = vec![0.0f32; x.len()];
    // q8_0: |x - q·d16| ≤ d/2 (rounding) + 127·|d - d16| (f16 scale, rel. error ≤ 2^-11).
    let b = quantize_row_q8_0(&x);
    dequantize_row_q8_0(&b, &mut y);
    for (blk, (xb, yb)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
        let d = b[blk].scale().abs();
        let bound = d * (0.5 + 127.0 / 2048.0) * 1.0001;
        for (a, c) in xb.iter().zip(yb) {
            assert!(
                (a - c).abs() <= bound,
                "q8_0 block {blk}: {a} vs {c}, bound {bound}"
            );
        }
    }
    // q4_0: within half a step, except the clamped side (x/d up to +8 → code 15): one step;
    // plus 8·|d - d16| for the f16 scale.
    let b = quantize_row_q4_0(&x);
    dequantize_row_q4_0(&b, &mut y);
    for (blk, (xb, yb)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
        let d = b[blk].scale().abs();
        let bound = d * (1.0 + 8.0 / 2048.0) * 1.0001;
        for (a, c) in xb.iter().zip(yb) {
            assert!(
                (a - c).abs() <= bound,
                "q4_0 block {blk}: {a} vs {c}, bound {bound}"
            );
        }
    }
}

#[test]
fn weight_matrix_dequantizes_rows_in_row_major_order() {
    // 21 rows: two groups of eight (q8_0 / q4_0 store those interleaved) and a tail of 5.
    let (rows, cols) = (21, 64);
    let w = rand_vec(rows * cols, 2);
    for f in [Format::Q8_0, Format::Q4_0, Format::F16, Format::F32] {
        let m = WeightMatrix::from_f32(f, rows, cols, &w);
        let all = m.dequantize();
        // A range across the group boundary and into the tail.
        let mut part = vec![0.0; 12 * cols];
        m.dequantize_rows(6, 18, &mut part);
        assert_eq!(&all[6 * cols..18 * cols], &part[..], "{f:?}");
        // Every row equal to quantizing that row alone.
        for r in 0..rows {
            let src = &w[r * cols..(r + 1) * cols];
            let mut row = vec![0.0; cols];
            match f {
                Format::Q8_0 => {
                    assert_eq!(m.q8_0_row(r), Some(quantize_row_q8_0(src)), "row {r}");
                    dequantize_row_q8_0(&quantize_row_q8_0(src), &mut row)
                }
                Format::Q4_0 => {
                    assert_eq!(m.q4_0_row(r), Some(quantize_row_q4_0(src)), "row {r}");
                    dequantize_row_q4_0(&quantize_row_q4_0(src), &mut row)
                }
                Format::F16 => row
                    .iter_mut()
                    .zip(src)
                    .for_each(|(r, v)| *r = f16::from_f32(*v).to_f32()),
                Format::F32 => row.copy_from_slice(src),
            }
            assert_eq!(&all[r * cols..(r + 1) * cols], &row[..], "{f:?} row {r}");
        }
    }
}

/// q8_0's interleaved layout, byte by byte: group `g`, row `r`, byte `j` is row
/// `r`'s code `4g + j` plus 128 (unsigned).
#[test]
fn q8_0x8_interleaves_four_biased_codes_per_row_and_unpacks_to_the_same_blocks() {
    let mut x = rand_vec(8 * QK, 18);
    x[5] = -1.0; // a row whose amax is negative: its code -127 must survive the bias
    let blocks = quantize_row_q8_0(&x);
    let x8 = BlockQ8_0x8::pack(std::array::from_fn(|r| &blocks[r]));
    for (r, block) in blocks.iter().enumerate() {
        assert_eq!(x8.d[r], block.d);
        assert_eq!(x8.row(r), *block);
        for g in 0..8 {
            for j in 0..4 {
                let code = block.qs[4 * g + j] as i32;
                assert_eq!(x8.qs[32 * g + 4 * r + j] as i32, code + 128);
            }
        }
    }
    assert!(blocks[0].qs.contains(&-127));
}

/// The interleaved layout's definition, byte by byte: chunk `c`, row `r`, byte `j`
/// is row `r`'s byte `4c + j` (low nibble element `4c + j`, high `16 + 4c + j`).
#[test]
fn q4_0x8_interleaves_four_bytes_per_row_and_unpacks_to_the_same_blocks() {
    let blocks = quantize_row_q4_0(&rand_vec(8 * QK, 17));
    let rows: [&BlockQ4_0; 8] = std::array::from_fn(|r| &blocks[r]);
    let x8 = BlockQ4_0x8::pack(rows);
    for (r, block) in blocks.iter().enumerate().take(8) {
        assert_eq!(x8.d[r], block.d);
        assert_eq!(x8.row(r), *block);
        for c in 0..4 {
            for j in 0..4 {
                let byte = x8.qs[32 * c + 4 * r + j];
                assert_eq!(byte & 0x0F, block.code(4 * c + j));
                assert_eq!(byte >> 4, block.code(16 + 4 * c + j));
            }
        }
    }
}

/// "Dequantize, then matmul" in f64, with Σ|w·x| per output for the tolerance.
fn reference(wd: &[f32], xd: &[f32], n: usize, k: usize, m: usize) -> (Vec<f64>, Vec<f64>) {
    let mut y = vec![0.0f64; m * n];
    let mut mag = vec![0.0f64; m * n];
    for i in 0..m {
        for r in 0..n {
            for c in 0..k {
                let p = wd[r * k + c] as f64 * xd[i * k + c] as f64;
                y[i * n + r] += p;
                mag[i * n + r] += p.abs();
            }
        }
    }
    (y, mag)
}

/// Every kernel variant on this CPU (the portable one always) against the
/// reference. For q8_0/q4_0 the reference uses the *quantized* activations, so
/// the kernel is tested, not the format: integer block sums are exact and only
/// f32 rounding of the scaled sums remains, bounded by 1e-5·Σ|w·x| (f32 epsilon
/// 6e-8 times a few hundred accumulation steps at most, with margin).
#[test]
fn every_available_kernel_matches_dequantize_then_matmul() {
    let isas = Isa::available();
    assert!(isas.contains(&Isa::Portable));
    eprintln!("kernel variants on this CPU: {isas:?}");
    for &(n, k, m) in &[
        (37usize, 96usize, 1usize),
        (37, 96, 3),
        (64, 4096, 1),
        (19, 2048, 20),
        (300, 160, 2),
        (21, 64, 8),
        (9, 128, 9),
        (9, 128, 33),
        // Decode's eight-rows-at-a-time kernels: fewer than 8 rows, exactly 8, a
        // remainder after full groups, a task (16 rows) boundary, and m > 8.
        (7, 64, 1),
        (8, 32, 1),
        (45, 4096, 1),
        (33, 256, 25),
        // The register-blocked f32/f16 kernels: columns over several 512-column
        // chunks with a short last one (1056 = 2·512 + 32), rows of x split into
        // unequal blocks (7 → 4 + 3, 13 → 5 + 4 + 4), weight rows not filling the
        // last block of four.
        (37, 1056, 7),
        (45, 544, 13),
        // Llama-3.1-8B's down_proj width (448 blocks per row), one and six rows of x.
        (16, 14336, 1),
        (16, 14336, 6),
        // The parallel transpose of the kernels' [n, m] scratch into out (m·n ≥
        // 2^15): a last block of 5 rows of out.
        (1030, 64, 37),
    ] {
        let w = rand_vec(n * k, (n * k + m) as u64);
        let x: Vec<f32> = rand_vec(m * k, 99 + k as u64)
            .iter()
            .map(|v| v * 3.0)
            .collect();
        for f in [Format::F32, Format::F16, Format::Q8_0, Format::Q4_0] {
            let wm = WeightMatrix::from_f32(f, n, k, &w);
            // The small-batch path (2..=8 rows) computes with f32 x; the others
            // quantize x to 8 bits for q8_0/q4_0.
            let xd = match f {
                Format::Q8_0 | Format::Q4_0 if !wm.small_batch(m) => {
                    Q8Activations::quantize(&x, k).dequantize()
                }
                _ => x.clone(),
            };
            let (yr, mag) = reference(&wm.dequantize(), &xd, n, k, m);
            for &isa in &isas {
                let mut y = vec![f32::NAN; m * n];
                wm.matmul_with(isa, &x, m, &mut y);
                for (j, ((a, b), g)) in y.iter().zip(&yr).zip(&mag).enumerate() {
                    let tol = 1e-5 * g + 1e-6;
                    assert!(
                        ((*a as f64) - b).abs() <= tol,
                        "{isa:?} {f:?} n={n} k={k} m={m} out {j}: {a} vs {b} (tol {tol})"
                    );
                }
            }
        }
    }
}

#[test]
fn f16_and_f32_kernels_handle_lengths_that_are_not_a_multiple_of_the_vector_width() {
    for f in [Format::F16, Format::F32] {
        for &k in &[1usize, 7, 33, 100] {
            for m in [1, 2] {
                let n = 9;
                let w = rand_vec(n * k, k as u64);
                let x = rand_vec(m * k, 7 * k as u64);
                let wm = WeightMatrix::from_f32(f, n, k, &w);
                let (yr, mag) = reference(&wm.dequantize(), &x, n, k, m);
                for isa in Isa::available() {
                    let mut y = vec![0.0; m * n];
                    wm.matmul_with(isa, &x, m, &mut y);
                    for ((a, b), g) in y.iter().zip(&yr).zip(&mag) {
                        assert!(
                            ((*a as f64) - b).abs() <= 1e-5 * g + 1e-6,
                            "{isa:?} {f:?} k={k} m={m}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}

/// The long-input GEMM (`matmul_gemm`: the `gemm` crate on the stored weight past
/// `PANEL_GEMM_MAX_ROWS` rows, f16 weights converted tile by tile) against the f64
/// dequantize-then-matmul reference, within 1e-5·Σ|w·x|. Shapes: odd sizes
/// everywhere, one above the GEMM's threading threshold; f16 also in tiles of 4
/// rows (a last, partial tile at 37, 19, 300 rows) and of one row. q8_0/q4_0 have
/// no `gemm` crate path (`matmul_gemm_tiled` declines: `false`, `out` untouched);
/// their long inputs take the packed panels (next test).
#[test]
fn gemm_path_matches_the_reference_for_f32_and_f16_and_declines_quantized_weights() {
    for &(n, k, m) in &[(37usize, 96usize, 5usize), (19, 333, 70), (300, 160, 130)] {
        let w = rand_vec(n * k, (n + k) as u64);
        let x = rand_vec(m * k, (7 * m) as u64);
        for f in [Format::F32, Format::F16] {
            let wm = WeightMatrix::from_f32(f, n, k, &w);
            let (yr, mag) = reference(&wm.dequantize(), &x, n, k, m);
            for tile in [None, Some(4 * k), Some(1)] {
                let mut y = vec![f32::NAN; m * n];
                match tile {
                    None => wm.matmul_gemm(&x, m, &mut y),
                    Some(t) => assert!(wm.matmul_gemm_tiled(&x, m, &mut y, t)),
                }
                for (j, ((a, b), g)) in y.iter().zip(&yr).zip(&mag).enumerate() {
                    let tol = 1e-5 * g + 1e-6;
                    assert!(
                        ((*a as f64) - b).abs() <= tol,
                        "{f:?} tile {tile:?} n={n} k={k} m={m} out {j}: {a} vs {b} (tol {tol})"
                    );
                }
            }
        }
    }
    let (n, k, m) = (9, 64, 3);
    for f in [Format::Q8_0, Format::Q4_0] {
        let wm = WeightMatrix::from_f32(f, n, k, &rand_vec(n * k, 5));
        let mut y = vec![7.0f32; m * n];
        assert!(
            !wm.matmul_gemm_tiled(&rand_vec(m * k, 6), m, &mut y, 1 << 20),
            "{f:?}"
        );
        assert!(y.iter().all(|&v| v == 7.0));
    }
}

/// omni's packed-panel GEMM (`matmul_panel_with`: prompts' path for f32 and f16,
/// long inputs' for q8_0/q4_0, whose blocks are dequantized while packing) on every
/// instruction set this CPU has, against the f64 dequantize-then-matmul reference
/// within 1e-5·Σ|w·x| (f32 sums of up to 512 terms). The shapes cover a partial last
/// micro-panel of x (m not a multiple of 14, 3 or 4 rows), a partial last weight
/// panel (n % 32 ≠ 0), k not a multiple of the 16 of the AVX-512 transpose, k over
/// three 512-column blocks (the tile adds to `out`; the last one of 76 or 64
/// columns: q8_0/q4_0 blocks dequantized from a column offset), a single row, 66
/// panels (several groups of packed panels per thread), and 1100 rows (more than
/// `PANEL_GEMM_MAX_ROWS`: three parts of x, each packing the weight again; also
/// through `matmul_gemm`). Quantized formats where k is a multiple of 32.
#[test]
fn panel_gemm_matches_the_reference_on_every_instruction_set() {
    for &(n, k, m) in &[
        (37usize, 96usize, 5usize),
        (19, 333, 70),
        (64, 512, 14),
        (2100, 300, 17),
        (33, 16, 1),
        (40, 1100, 30),
        (40, 1088, 30),
        (45, 64, 1100),
    ] {
        let w = rand_vec(n * k, (3 * n + k) as u64);
        let x = rand_vec(m * k, (11 * m) as u64);
        let formats = [Format::F32, Format::F16, Format::Q8_0, Format::Q4_0];
        for f in formats
            .into_iter()
            .filter(|&f| WeightMatrix::supports(f, k))
        {
            let wm = WeightMatrix::from_f32(f, n, k, &w);
            let (yr, mag) = reference(&wm.dequantize(), &x, n, k, m);
            let check = |y: &[f32], what: &str| {
                for (j, ((a, b), g)) in y.iter().zip(&yr).zip(&mag).enumerate() {
                    let tol = 1e-5 * g + 1e-6;
                    assert!(
                        ((*a as f64) - b).abs() <= tol,
                        "{what} {f:?} n={n} k={k} m={m} out {j}: {a} vs {b} (tol {tol})"
                    );
                }
            };
            for isa in Isa::available() {
                let mut y = vec![f32::NAN; m * n];
                wm.matmul_panel_with(isa, &x, m, &mut y);
                check(&y, &format!("{isa:?}"));
            }
            if matches!(f, Format::Q8_0 | Format::Q4_0) {
                let mut y = vec![f32::NAN; m * n];
                wm.matmul_gemm(&x, m, &mut y);
                check(&y, "matmul_gemm");
            }
        }
    }
}

/// The activation quantization (llama.cpp's q8 of x) costs at most
/// Σ_c |w_c|·d_x(c)/2 per output against f32 activations: checked on the
/// quantized weights so only x's rounding differs.
#[test]
fn single_row_quantized_activations_stay_within_half_a_q8_step_of_f32_activations() {
    let (n, k, m) = (16, 256, 1);
    let w = rand_vec(n * k, 5);
    let x = rand_vec(m * k, 6);
    let act = Q8Activations::quantize(&x, k);
    for f in [Format::Q8_0, Format::Q4_0] {
        let wm = WeightMatrix::from_f32(f, n, k, &w);
        let wd = wm.dequantize();
        let (yr, _) = reference(&wd, &x, n, k, m);
        assert!(!wm.small_batch(m));
        let mut y = vec![0.0; m * n];
        wm.matmul(&x, m, &mut y);
        for i in 0..m {
            for r in 0..n {
                let bound: f64 = (0..k)
                    .map(|c| (wd[r * k + c].abs() * act.d[(i * k + c) / QK] / 2.0) as f64)
                    .sum::<f64>()
                    * 1.01
                    + 1e-5;
                let e = (y[i * n + r] as f64 - yr[i * n + r]).abs();
                assert!(e <= bound, "{f:?} row {r}: error {e} > {bound}");
            }
        }
    }
}

#[test]
fn kernel_choice_follows_omni_kernels_and_refuses_unknown_names() {
    assert_eq!(Isa::from_env_value(Some("portable")), Ok(Isa::Portable));
    assert_eq!(Isa::from_env_value(Some(" Portable ")), Ok(Isa::Portable));
    assert_eq!(Isa::from_env_value(None), Ok(Isa::detected()));
    assert_eq!(Isa::from_env_value(Some("auto")), Ok(Isa::detected()));
    assert!(Isa::from_env_value(Some("avx9000")).is_err());
    match Isa::from_env_value(Some("avx2")) {
        Ok(i) => assert!(i == Isa::Avx2 && Isa::Avx2.is_available()),
        Err(_) => assert!(!Isa::Avx2.is_available()),
    }
    match Isa::from_env_value(Some("avx512vnni")) {
        Ok(i) => assert!(i == Isa::Avx512Vnni && Isa::Avx512Vnni.is_available()),
        Err(_) => assert!(!Isa::Avx512Vnni.is_available()),
    }
    // The VNNI set includes the AVX2 one (its other kernels are the AVX2 code).
    assert!(!Isa::Avx512Vnni.is_available() || Isa::Avx2.is_available());
    // What this process runs: OMNI_KERNELS if set (CI sets `portable` in one job).
    let env = std::env::var("OMNI_KERNELS").ok();
    assert_eq!(
        Isa::selected(),
        Isa::from_env_value(env.as_deref()).unwrap()
    );
}

#[test]
fn activation_quantization_rounds_ties_to_even_identically_on_every_instruction_set() {
    // amax = 127 gives scale 1 and multiplier 127/127 = 1: the ties are exact.
    let mut x = vec![0.0f32; 64];
    let vals = [127.0, 0.5, 1.5, 2.5, -0.5, -1.5, 3.49, -126.5];
    x[..vals.len()].copy_from_slice(&vals);
    x[32..].copy_from_slice(&rand_vec(32, 11)); // a second, ordinary block
    let want: [i8; 8] = [127, 0, 2, 2, 0, -2, 3, -126];
    let base = Q8Activations::quantize_with(Isa::Portable, &x, 64);
    assert_eq!(&base.qs[0][..8], &want);
    assert_eq!(base.d[0], 1.0);
    for isa in Isa::available() {
        let a = Q8Activations::quantize_with(isa, &x, 64);
        assert_eq!(a.qs, base.qs, "{isa:?} codes");
        assert_eq!(a.d, base.d, "{isa:?} scales");
        assert_eq!(a.sums, base.sums, "{isa:?} block sums");
    }
    // The block sums are the codes' sums (the q4_0 kernels subtract 8 · Σx).
    for (q, &s) in base.qs.iter().zip(&base.sums) {
        assert_eq!(s, q.iter().map(|&v| v as i32).sum::<i32>());
    }
}

// ---------------------------------------------------------------- conv1d

/// `torch.nn.functional.conv1d` (stride 1) by its definition, in f64:
/// `y[o, t] = b[o] + Σ_i Σ_j w[o, i, j] · x[i, t + j·d − pad]` (zero outside).
#[allow(clippy::too_many_arguments)]
fn conv1d_ref(
    x: &[f32],
    t_in: usize,
    w: &[f32],
    b: &[f32],
    c_out: usize,
    c_in: usize,
    k: usize,
    d: usize,
    pad: usize,
) -> Vec<f32> {
    let t_out = t_in + 2 * pad - d * (k - 1);
    let mut y = vec![0f32; c_out * t_out];
    for o in 0..c_out {
        for t in 0..t_out {
            let mut s = b[o] as f64;
            for i in 0..c_in {
                for j in 0..k {
                    let n = (t + j * d) as isize - pad as isize;
                    if n >= 0 && (n as usize) < t_in {
                        s += w[(o * c_in + i) * k + j] as f64 * x[i * t_in + n as usize] as f64;
                    }
                }
            }
            y[o * t_out + t] = s as f32;
        }
    }
    y
}

/// `torch.nn.functional.conv_transpose1d` by its definition, in f64: input sample `n`
/// adds `w[i, o, j] · x[i, n]` to output `n·stride + j − pad`.
#[allow(clippy::too_many_arguments)]
fn conv_transpose1d_ref(
    x: &[f32],
    t_in: usize,
    w: &[f32],
    b: &[f32],
    c_in: usize,
    c_out: usize,
    k: usize,
    s: usize,
    pad: usize,
) -> Vec<f32> {
    let t_out = (t_in - 1) * s + k - 2 * pad;
    let mut y: Vec<f64> = (0..c_out * t_out).map(|i| b[i / t_out] as f64).collect();
    for i in 0..c_in {
        for o in 0..c_out {
            for n in 0..t_in {
                for j in 0..k {
                    let t = (n * s + j) as isize - pad as isize;
                    if t >= 0 && (t as usize) < t_out {
                        y[o * t_out + t as usize] +=
                            w[(i * c_out + o) * k + j] as f64 * x[i * t_in + n] as f64;
                    }
                }
            }
        }
    }
    y.into_iter().map(|v| v as f32).collect()
}

/// Max |a − b| relative to max(1, max |b|). f32 sums of ≤ 352 products of values in
/// [-1, 1] against an f64 reference: ~1e-6 in practice; 1e-5 allows any order.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn conv1d_every_variant_matches_the_definition() {
    // (c_in, c_out, k, dilation, pad, t): HiFi-GAN's (k, d) pairs with "same" padding,
    // a padding smaller than "same" (shorter output), c_out not a multiple of 4, odd t.
    // c_out ≥ 32 takes the wide AVX-512 tile (14 samples × 32 channels): a partial
    // last group of channels (37), t not a multiple of 14, several time ranges per
    // group (t = 500), a padding smaller than "same"; c_out = 16 takes its 16-channel
    // variant (28 samples × 16 channels). On AVX2, c_out ≥ 16 takes the wide AVX2 tile
    // (6 samples × 16 channels: 37 leaves a partial group, t = 77 / 25 partial tiles).
    let cases = [
        (16, 37, 11, 5, 25, 77),
        (16, 16, 11, 3, 15, 300),
        (32, 32, 7, 3, 9, 500),
        (32, 64, 3, 1, 0, 25),
        (16, 16, 3, 1, 1, 50),
        (16, 8, 7, 3, 9, 131),
        (9, 5, 11, 5, 25, 77),
        (4, 1, 7, 1, 3, 200),
        (6, 6, 3, 1, 0, 25),
        (2, 3, 5, 2, 1, 9),
    ];
    for (n, &(c_in, c_out, k, d, pad, t)) in cases.iter().enumerate() {
        let x = rand_vec(c_in * t, 7 + n as u64);
        let w = rand_vec(c_out * c_in * k, 70 + n as u64);
        let b = rand_vec(c_out, 700 + n as u64);
        let expect = conv1d_ref(&x, t, &w, &b, c_out, c_in, k, d, pad);
        let conv = omni_kernels::Conv1d::new(&w, &b, c_out, c_in, k, d, pad);
        assert_eq!(conv.out_len(t) * c_out, expect.len(), "case {n}");
        // The residual and the leaky ReLU: with slope 1 the input is unchanged.
        let res = rand_vec(expect.len(), 900 + n as u64);
        let expect_res: Vec<f32> = expect.iter().zip(&res).map(|(a, b)| a + b).collect();
        for isa in Isa::available() {
            let got = conv.forward_with(isa, &x, t, None, None);
            assert!(
                rel_err(&got, &expect) <= 1e-5,
                "case {n} {isa:?}: {}",
                rel_err(&got, &expect)
            );
            let got = conv.forward_with(isa, &x, t, Some(1.0), Some(&res));
            assert!(
                rel_err(&got, &expect_res) <= 1e-5,
                "case {n} {isa:?} residual"
            );
        }
    }
}

#[test]
fn conv1d_leaky_relu_is_applied_to_the_input() {
    let (c_in, c_out, k, t) = (3, 2, 3, 40);
    let x = rand_vec(c_in * t, 5);
    let w = rand_vec(c_out * c_in * k, 6);
    let b = rand_vec(c_out, 8);
    let lx: Vec<f32> = x
        .iter()
        .map(|&v| if v >= 0.0 { v } else { 0.1 * v })
        .collect();
    assert!(x.iter().any(|&v| v < 0.0));
    let expect = conv1d_ref(&lx, t, &w, &b, c_out, c_in, k, 1, 1);
    let conv = omni_kernels::Conv1d::new(&w, &b, c_out, c_in, k, 1, 1);
    for isa in Isa::available() {
        let got = conv.forward_with(isa, &x, t, Some(0.1), None);
        assert!(rel_err(&got, &expect) <= 1e-5, "{isa:?}");
    }
}

#[test]
fn conv_transpose1d_every_variant_matches_the_definition() {
    // (c_in, c_out, k, stride, pad, t): HiFi-GAN's upsamplers (11, 5), (8, 4), (4, 2)
    // with padding (k − u) / 2, k < stride·2 with no padding, t = 1; c_out ≥ 32 (the
    // wide AVX-512 tile, a partial last group of channels; 16: its 16-channel variant;
    // on AVX2, c_out ≥ 16: the wide AVX2 tile).
    let cases = [
        (16, 32, 11, 5, 3, 130),
        (32, 16, 4, 2, 1, 90),
        (8, 33, 8, 4, 2, 40),
        (8, 4, 11, 5, 3, 17),
        (6, 5, 8, 4, 2, 40),
        (4, 4, 4, 2, 1, 101),
        (3, 2, 3, 2, 0, 10),
        (5, 3, 8, 4, 2, 1),
    ];
    for (n, &(c_in, c_out, k, s, pad, t)) in cases.iter().enumerate() {
        let x = rand_vec(c_in * t, 17 + n as u64);
        let w = rand_vec(c_in * c_out * k, 170 + n as u64);
        let b = rand_vec(c_out, 1700 + n as u64);
        let expect = conv_transpose1d_ref(&x, t, &w, &b, c_in, c_out, k, s, pad);
        let conv = omni_kernels::ConvTranspose1d::new(&w, &b, c_in, c_out, k, s, pad);
        assert_eq!(conv.out_len(t) * c_out, expect.len(), "case {n}");
        for isa in Isa::available() {
            let got = conv.forward_with(isa, &x, t, None);
            assert!(
                rel_err(&got, &expect) <= 1e-5,
                "case {n} {isa:?}: {}",
                rel_err(&got, &expect)
            );
        }
    }
}

/// The softmax row of every instruction set against f64 `exp` of the same f32
/// argument `scale·(x − max)`: within 3e-7 relative (Cephes `expf`: ≤ 2 ulp);
/// arguments below −87.3 (clamped) give at most 1.2e-38. The returned sum within
/// 1e-6 relative. Row lengths that leave a scalar tail (37) and do not (48).
#[test]
fn softmax_row_matches_f64_exp_of_the_same_argument_on_every_instruction_set() {
    for isa in Isa::available() {
        for (len, scale) in [(37usize, 0.125f32), (48, 1.0), (300, 3.0)] {
            let row: Vec<f32> = rand_vec(len, len as u64 + 3)
                .iter()
                .map(|v| v * 60.0)
                .collect();
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let mut got = row.clone();
            let sum = omni_kernels::attention::softmax_row(isa, &mut got, scale);
            let mut want_sum = 0.0f64;
            for (g, &x) in got.iter().zip(&row) {
                let arg = scale * (x - m);
                let want = (arg as f64).exp();
                if arg < -87.3 {
                    assert!(*g >= 0.0 && *g <= 1.2e-38, "{isa:?} exp({arg}) = {g}");
                } else {
                    assert!(
                        ((*g as f64) - want).abs() <= 3e-7 * want,
                        "{isa:?} exp({arg}) = {g}, want {want}"
                    );
                }
                want_sum += want;
            }
            assert!(
                ((sum as f64) - want_sum).abs() <= 1e-6 * want_sum,
                "{isa:?} sum"
            );
        }
    }
}

/// `softmax(q·kᵀ/√d)·v` of one query row over keys `0..seen`, in f64: `q(e)`,
/// `k(j, e)`, `v(j, e)` for `e < d`.
fn attention_row_ref(
    d: usize,
    seen: usize,
    q: impl Fn(usize) -> f32,
    k: impl Fn(usize, usize) -> f32,
    v: impl Fn(usize, usize) -> f32,
) -> Vec<f64> {
    let s: Vec<f64> = (0..seen)
        .map(|j| (0..d).map(|e| q(e) as f64 * k(j, e) as f64).sum::<f64>() / (d as f64).sqrt())
        .collect();
    let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let p: Vec<f64> = s.iter().map(|x| (x - mx).exp()).collect();
    let z: f64 = p.iter().sum();
    (0..d)
        .map(|e| (0..seen).map(|j| p[j] * v(j, e) as f64).sum::<f64>() / z)
        .collect()
}

/// Asserts `out` (`[t_q, heads·d]`) within 1e-5 of the f64 definition at the query
/// rows `rows`, for query heads over `kvh` kv heads (keys and values token-major
/// `[t_k, kvh·d]`), row `i` seeing keys `0..seen(i)`; `q(h, i, e)` reads the queries.
#[allow(clippy::too_many_arguments)]
fn assert_attention_rows(
    out: &[f32],
    (heads, kvh, d): (usize, usize, usize),
    rows: impl Iterator<Item = usize> + Clone,
    seen: impl Fn(usize) -> usize,
    q: impl Fn(usize, usize, usize) -> f32,
    k: &[f32],
    v: &[f32],
    what: &str,
) {
    for h in 0..heads {
        let g = h / (heads / kvh);
        for i in rows.clone() {
            let want = attention_row_ref(
                d,
                seen(i),
                |e| q(h, i, e),
                |j, e| k[j * kvh * d + g * d + e],
                |j, e| v[j * kvh * d + g * d + e],
            );
            for (e, &want) in want.iter().enumerate() {
                let got = out[i * heads * d + h * d + e] as f64;
                assert!(
                    (got - want).abs() <= 1e-5,
                    "{what} head {h} row {i} col {e}: {got} vs {want}"
                );
            }
        }
    }
}

/// `attention_f32` against `softmax(q·kᵀ/√d)·v` per head in f64: 400 query rows (a
/// block of 384 and a short one), 93 keys, 3 heads of 16 interleaved in the rows as
/// the projections produce them. Outputs are convex combinations of v (|v| < 1):
/// within 1e-5.
#[test]
fn attention_matches_the_softmax_definition_per_head() {
    let (t_q, t_k, heads, d) = (400usize, 93usize, 3usize, 16usize);
    let c = heads * d;
    let q: Vec<f32> = rand_vec(t_q * c, 41).iter().map(|v| v * 4.0).collect();
    let k: Vec<f32> = rand_vec(t_k * c, 42).iter().map(|v| v * 4.0).collect();
    let v = rand_vec(t_k * c, 43);
    let mut out = vec![f32::NAN; t_q * c];
    omni_kernels::attention_f32(&q, &k, &v, t_q, t_k, heads, d, &mut out);
    assert_attention_rows(
        &out,
        (heads, heads, d),
        0..t_q,
        |_| t_k,
        |h, i, e| q[i * c + h * d + e],
        &k,
        &v,
        "",
    );
}

/// Unmasked attention at head widths 32, 64 (Whisper's) and 96 — the `gemm` path,
/// then with `OMNI_AMX_ATTENTION=1` the tiles' path (`amx_attention`, on CPUs with
/// AMX; elsewhere and with `OMNI_AMX=0` the `gemm` path again), 70
/// query rows (two blocks of 32 and a short one), 1000 keys (not a multiple of 32:
/// the padded keys must get no weight), 4 query heads over 2 kv heads, against
/// the f64 definition: within 1e-5 (convex combinations of |v| < 1), with q and
/// k in ±4 (peaked softmax) and in ±0.5 (nearly uniform: a padded key given
/// weight shifts every sum by ~2 %). A wrong row block, a padded key with weight,
/// a mis-split part or a swapped kv head all exceed it.
#[test]
fn attention_at_whisper_head_width_matches_the_softmax_definition() {
    let (t_q, t_k, heads, kvh) = (70usize, 1000usize, 4usize, 2usize);
    for (opt_in, d, spread) in [0, 1]
        .into_iter()
        .flat_map(|o| [(64usize, 4.0f32), (64, 0.5), (32, 4.0), (96, 1.0)].map(|(d, s)| (o, d, s)))
    {
        // Read at each call; other tests of this binary may see it too (both paths
        // are correct).
        std::env::set_var(omni_kernels::AMX_ATTENTION_ENV, opt_in.to_string());
        let q: Vec<f32> = rand_vec(t_q * heads * d, 61)
            .iter()
            .map(|v| v * spread)
            .collect();
        let k: Vec<f32> = rand_vec(t_k * kvh * d, 62)
            .iter()
            .map(|v| v * spread)
            .collect();
        let v = rand_vec(t_k * kvh * d, 63);
        let token_major = |data, heads, rows| Heads {
            data,
            heads,
            rows,
            head_stride: d,
            row_stride: heads * d,
        };
        // The selected path (AMX where opted in), then every instruction set's.
        let isas = std::iter::once(None).chain(Isa::available().into_iter().map(Some));
        for isa in isas.take(if opt_in == 1 { 1 } else { usize::MAX }) {
            let mut out = vec![f32::NAN; t_q * heads * d];
            let (qh, kh, vh) = (
                token_major(&q, heads, t_q),
                token_major(&k, kvh, t_k),
                token_major(&v, kvh, t_k),
            );
            match isa {
                None => omni_kernels::attention_heads(qh, kh, vh, d, None, &mut out),
                Some(isa) => omni_kernels::attention_heads_with(isa, qh, kh, vh, d, None, &mut out),
            }
            assert_attention_rows(
                &out,
                (heads, kvh, d),
                0..t_q,
                |_| t_k,
                |h, i, e| q[i * heads * d + h * d + e],
                &k,
                &v,
                &format!("opt-in {opt_in} {isa:?} d {d} spread {spread}"),
            );
        }
    }
}

/// `x/2 · (1 + erf(x/√2))` in f64.
fn gelu_f64(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

/// The fused bias + GELU on every instruction set against the f64 definition.
/// Tolerance: A&S 7.1.26's erf is within 1.5e-7, so gelu within 0.75e-7·|x|, plus
/// the f32 rounding of the sum and the products (a few ulp of x): 3e-7·|x| + 1e-30
/// — absolute, since for x ≪ 0 the value (x/2·erfc) is far below the error bound
/// of erf; the portable path (libm `erff`) is within it too. Lengths 1..=67 cover
/// the vector tails; NaN stays NaN, +inf gives inf.
#[test]
fn bias_gelu_matches_the_erf_definition_on_every_instruction_set() {
    let n = 67;
    let rows = 40;
    let x: Vec<f32> = (0..rows * n)
        .map(|i| (i as f32 - (rows * n / 2) as f32) * 0.0131)
        .collect();
    let bias: Vec<f32> = (0..n).map(|j| (j as f32 - 30.0) * 0.01).collect();
    for isa in Isa::available() {
        for with_bias in [false, true] {
            let mut y = x.clone();
            omni_kernels::bias_gelu_with(isa, &mut y, with_bias.then_some(&bias[..]), n);
            for (i, (&a, &x)) in y.iter().zip(&x).enumerate() {
                let xin = if with_bias { x + bias[i % n] } else { x } as f64;
                let r = gelu_f64(xin);
                let tol = 3e-7 * xin.abs() + 1e-30;
                assert!(
                    (a as f64 - r).abs() <= tol,
                    "{isa:?} bias {with_bias} x={xin}: {a} vs {r} (tol {tol})"
                );
            }
        }
        for len in 1..=67 {
            let xs: Vec<f32> = (0..len).map(|i| i as f32 * 0.37 - 9.0).collect();
            let mut y = xs.clone();
            omni_kernels::bias_gelu_with(isa, &mut y, None, len);
            for (&a, &x) in y.iter().zip(&xs) {
                let r = gelu_f64(x as f64);
                assert!(
                    (a as f64 - r).abs() <= 3e-7 * (x as f64).abs() + 1e-30,
                    "{isa:?} len {len} x={x}"
                );
            }
        }
        let mut y = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0];
        omni_kernels::bias_gelu_with(isa, &mut y, None, 4);
        assert!(y[0].is_nan(), "{isa:?}");
        assert_eq!(y[1], f32::INFINITY, "{isa:?}");
        // −inf: the limit 0 (the SIMD paths' clamped exp leaves ~1e-38) or, as in
        // PyTorch's formula, −inf·0 = NaN (portable, libm).
        assert!(
            y[2].abs() < 1e-30 || y[2].is_nan() && isa == Isa::Portable,
            "{isa:?}: {}",
            y[2]
        );
        assert_eq!(y[3], 0.0, "{isa:?}");
    }
}

/// SwiGLU's `silu(g)·u` on every instruction set against the f64 definition
/// `g·u / (1 + e^{−g})`: within 1e-6 relative (the vectorized `exp` is within 2 ulp,
/// then a product and a quotient) + 1e-30; lengths 1..=40 cover the vector tails;
/// a NaN gate stays NaN, a very negative one gives ~0.
#[test]
fn silu_mul_matches_the_definition_on_every_instruction_set() {
    let g: Vec<f32> = (0..2000).map(|i| (i as f32 - 1000.0) * 0.0173).collect();
    let u: Vec<f32> = (0..2000)
        .map(|i| ((i * 7919) % 200) as f32 * 0.01 - 1.0)
        .collect();
    for isa in Isa::available() {
        for len in (1..=40).chain([2000]) {
            let mut y = g[..len].to_vec();
            omni_kernels::silu_mul_with(isa, &mut y, &u[..len]);
            for (i, &a) in y.iter().enumerate() {
                let (gv, uv) = (g[i] as f64, u[i] as f64);
                let r = gv * uv / (1.0 + (-gv).exp());
                assert!(
                    (a as f64 - r).abs() <= 1e-6 * r.abs() + 1e-30,
                    "{isa:?} len {len} g={gv} u={uv}: {a} vs {r}"
                );
            }
        }
        let mut y = [f32::NAN, -200.0, 200.0];
        omni_kernels::silu_mul_with(isa, &mut y, &[1.0, 1.0, 0.5]);
        assert!(y[0].is_nan(), "{isa:?}");
        assert!(y[1].abs() < 1e-30, "{isa:?}: {}", y[1]);
        assert_eq!(y[2], 100.0, "{isa:?}");
    }
}

/// `attention_heads` with grouped-query heads (4 query heads over 2 kv heads), the
/// queries head-major `[heads, t_q, d]` and the keys/values token-major
/// `[t_k, kv_heads·d]`, against the f64 definition: causal after 5 cached
/// positions (row i sees keys 0..=5 + i; 400 rows span two query blocks) and
/// unmasked; within 1e-5 (f32 sums of ≤ 405 terms of probabilities ≤ 1).
#[test]
fn causal_grouped_query_attention_matches_the_masked_softmax_definition() {
    let (t_q, heads, kvh, d, p0) = (400usize, 4usize, 2usize, 16usize, 5usize);
    let t_k = p0 + t_q;
    let q: Vec<f32> = rand_vec(heads * t_q * d, 51)
        .iter()
        .map(|v| v * 4.0)
        .collect();
    let k: Vec<f32> = rand_vec(t_k * kvh * d, 52)
        .iter()
        .map(|v| v * 4.0)
        .collect();
    let v = rand_vec(t_k * kvh * d, 53);
    let kv = |data| Heads {
        data,
        heads: kvh,
        rows: t_k,
        head_stride: d,
        row_stride: kvh * d,
    };
    // 400 rows: the tiles' path (blocks of 64 stacked rows straddle the two heads
    // of a group: rows with different masks in one panel); the last 20 rows after
    // p0 + 380 cached: 40 rows per kv head, the per-head `gemm` path.
    for (causal, isa, tail) in [Some(p0), None]
        .into_iter()
        .flat_map(|c| Isa::available().into_iter().map(move |i| (c, i)))
        .flat_map(|(c, i)| [(c, i, false), (c, i, true)])
    {
        let r0 = if tail { 380 } else { 0 };
        let n = t_q - r0;
        let qt: Vec<f32> = (0..heads)
            .flat_map(|h| q[h * t_q * d + r0 * d..(h + 1) * t_q * d].to_vec())
            .collect();
        let qh = Heads {
            data: &qt,
            heads,
            rows: n,
            head_stride: n * d,
            row_stride: d,
        };
        let mut out = vec![f32::NAN; n * heads * d];
        let c = causal.map(|p| p + r0);
        omni_kernels::attention_heads_with(isa, qh, kv(&k), kv(&v), d, c, &mut out);
        assert_attention_rows(
            &out,
            (heads, kvh, d),
            (0..n).step_by(7).chain([n - 1]),
            |i| c.map_or(t_k, |p| p + i + 1),
            |h, i, e| qt[h * n * d + i * d + e],
            &k,
            &v,
            &format!("{causal:?} {isa:?} tail {tail}"),
        );
    }
}

/// `log10_floor` on every instruction set against f64 `log10(max(x, floor))`:
/// within 3e-7·|log10| + 1e-9 (Cephes `logf` is within ~1 ulp of ln, then one
/// rounded product), over 1e-12..1e30 (below, at and above the floor 1e-10; around
/// 1, where log10 crosses 0) and lengths that leave vector tails; NaN and +inf stay.
#[test]
fn log10_floor_matches_f64_on_every_instruction_set() {
    let floor = 1e-10f32;
    let mut xs: Vec<f32> = (0..4000)
        .map(|i| 10f32.powf(-12.0 + 42.0 * i as f32 / 3999.0))
        .collect();
    xs.extend((0..300).map(|i| 0.9 + 0.2 * i as f32 / 299.0));
    xs.extend([floor, 0.0, -3.0, f32::MIN_POSITIVE, 1.0, 2.0, 0.5]);
    for isa in Isa::available() {
        for len in [xs.len(), 13, 1] {
            let mut y = xs[xs.len() - len..].to_vec();
            omni_kernels::log10_floor_with(isa, &mut y, floor);
            for (&a, &x) in y.iter().zip(&xs[xs.len() - len..]) {
                let r = (x.max(floor) as f64).log10();
                assert!(
                    (a as f64 - r).abs() <= 3e-7 * r.abs() + 1e-9,
                    "{isa:?} x={x}: {a} vs {r}"
                );
            }
        }
        // 17 values: NaN and +inf among the vector lanes, a scalar tail after them.
        let mut y = [5.0f32; 17];
        y[0] = f32::NAN;
        y[1] = f32::INFINITY;
        omni_kernels::log10_floor_with(isa, &mut y, floor);
        assert!(y[0].is_nan(), "{isa:?}");
        assert_eq!(y[1], f32::INFINITY, "{isa:?}");
    }
}
