//! Helpers of the omni benchmark: random-weight safetensors checkpoints written
//! lazily (one tensor in memory at a time), timing, JSON-lines results.
#![allow(dead_code)]

use std::borrow::Cow;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use omni_core::burn::tensor::f16;
use safetensors::{Dtype, View};

/// SplitMix64: a small, fast, reproducible generator.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32) * (2.0 / (1u64 << 24) as f32) - 1.0
    }
}

/// How a tensor is filled.
#[derive(Debug, Clone, Copy)]
pub enum Init {
    /// Uniform in [-a, a] (values below f16's normal range are flushed to 0).
    Uniform(f32),
    /// Every element equal.
    Const(f32),
}

/// Stored element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum St {
    F16,
    F32,
}

/// One tensor of a random checkpoint; its bytes are made when the writer asks.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: St,
    pub init: Init,
    pub seed: u64,
}

impl Spec {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

impl View for &Spec {
    fn dtype(&self) -> Dtype {
        match self.dtype {
            St::F16 => Dtype::F16,
            St::F32 => Dtype::F32,
        }
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        let n = self.numel();
        let mut rng = Rng(self.seed);
        let mut value = || match self.init {
            Init::Uniform(a) => {
                let x = rng.uniform() * a;
                if x.abs() < 6.2e-5 {
                    0.0
                } else {
                    x
                }
            }
            Init::Const(c) => c,
        };
        let bytes = match self.dtype {
            St::F16 => {
                let mut out = Vec::with_capacity(2 * n);
                for _ in 0..n {
                    out.extend_from_slice(&f16::from_f32(value()).to_bits().to_le_bytes());
                }
                out
            }
            St::F32 => {
                let mut out = Vec::with_capacity(4 * n);
                for _ in 0..n {
                    out.extend_from_slice(&value().to_le_bytes());
                }
                out
            }
        };
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        self.numel()
            * match self.dtype {
                St::F16 => 2,
                St::F32 => 4,
            }
    }
}

/// Collects the tensors of one checkpoint.
#[derive(Debug, Default)]
pub struct Checkpoint {
    pub specs: Vec<Spec>,
}

impl Checkpoint {
    pub fn add(&mut self, name: impl Into<String>, shape: &[usize], dtype: St, init: Init) {
        let seed = 0x5EED_0000 + self.specs.len() as u64 * 0x1_0000_0001;
        self.specs.push(Spec {
            name: name.into(),
            shape: shape.to_vec(),
            dtype,
            init,
            seed,
        });
    }

    /// A PyTorch linear layer `[d_out, d_in]` (+ bias), uniform ±1/√d_in.
    pub fn linear(&mut self, prefix: &str, d_in: usize, d_out: usize, bias: bool, dtype: St) {
        let a = 1.0 / (d_in as f32).sqrt();
        self.add(
            format!("{prefix}.weight"),
            &[d_out, d_in],
            dtype,
            Init::Uniform(a),
        );
        if bias {
            self.add(format!("{prefix}.bias"), &[d_out], dtype, Init::Uniform(a));
        }
    }

    pub fn bytes(&self) -> usize {
        self.specs.iter().map(|s| (&s).data_len()).sum()
    }

    /// Writes the file unless one of the expected size is already there
    /// (`scripts/bench.sh` deletes the folder at the end).
    pub fn write(&self, path: &Path) -> PathBuf {
        let header_guess = self.bytes();
        if let Ok(m) = std::fs::metadata(path) {
            if m.len() as usize > header_guess && m.len() as usize <= header_guess + (1 << 20) {
                return path.to_path_buf();
            }
        }
        let t = Instant::now();
        let tmp = path.with_extension("partial");
        safetensors::serialize_to_file(self.specs.iter().map(|s| (s.name.clone(), s)), None, &tmp)
            .unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
        // On disk before anything is timed: gigabytes of dirty pages written back
        // during the first rows would take memory bandwidth from them.
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .unwrap_or_else(|e| panic!("syncing {}: {e}", tmp.display()));
        std::fs::rename(&tmp, path).expect("rename checkpoint");
        eprintln!(
            "  wrote {} ({:.2} GB) in {:.1} s",
            path.display(),
            self.bytes() as f64 / 1e9,
            t.elapsed().as_secs_f64()
        );
        path.to_path_buf()
    }
}

/// Milliseconds since `t`.
pub fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Runs `f` `warm` times untimed, then `n` times timed; returns the times in ms.
pub fn time_n<F: FnMut()>(warm: usize, n: usize, mut f: F) -> Vec<f64> {
    for _ in 0..warm {
        f();
    }
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            ms(t)
        })
        .collect()
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// The 1-minute load average (other work on the machine skews the timings).
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// (busy jiffies of the whole machine, jiffies of this process, when).
fn cpu_snapshot() -> (f64, f64, Instant) {
    let busy = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let f: Vec<f64> = s
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            Some(
                f.iter().take(8).sum::<f64>()
                    - f.get(3).copied().unwrap_or(0.0)
                    - f.get(4).copied().unwrap_or(0.0),
            )
        })
        .unwrap_or(f64::NAN);
    let me = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // fields 14, 15 (utime, stime) are 11, 12 after the state field
            Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
        })
        .unwrap_or(f64::NAN);
    (busy, me, Instant::now())
}

/// Appends JSON lines `{"id", "median_ms", "n", "samples_ms", "other_cores", ...extra}`
/// to a file. `other_cores`: the mean number of cores other processes kept busy since
/// the previous row (from /proc/stat, 100 jiffies/s), to spot timings skewed by others.
pub struct Results {
    file: File,
    last: (f64, f64, Instant),
}

impl Results {
    pub fn create(path: &Path) -> Self {
        Results {
            file: File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            last: cpu_snapshot(),
        }
    }

    /// Starts the window of the next row's `other_cores` now.
    pub fn mark(&mut self) {
        self.last = cpu_snapshot();
    }

    fn other_cores(&mut self) -> f64 {
        let now = cpu_snapshot();
        let secs = now.2.duration_since(self.last.2).as_secs_f64().max(1e-3);
        let other = ((now.0 - self.last.0) - (now.1 - self.last.1)) / 100.0 / secs;
        self.last = now;
        (other.max(0.0) * 100.0).round() / 100.0
    }

    pub fn row(&mut self, id: &str, samples_ms: &[f64], extra: serde_json::Value) {
        let med = median(samples_ms);
        let other = self.other_cores();
        let mut obj = serde_json::json!({
            "id": id,
            "median_ms": med,
            "n": samples_ms.len(),
            "samples_ms": samples_ms.iter().map(|x| (x * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            "load1": load1(),
            "other_cores": other,
            "cpu": omni_core::kernels::cpu_description(),
        });
        if let (Some(o), serde_json::Value::Object(e)) = (obj.as_object_mut(), extra) {
            o.extend(e);
        }
        // `scripts/cargo_gemm_avx2.sh` (via bench.sh's BENCH_CARGO) says so in each row:
        // the `gemm` crate was held to AVX2.
        if let (Some(o), Ok(v)) = (obj.as_object_mut(), std::env::var("OMNI_BENCH_GEMM")) {
            o.insert("gemm_crate".into(), v.into());
        }
        writeln!(self.file, "{obj}").expect("write results");
        self.file.flush().ok();
        eprintln!(
            "  {id}: median {med:.1} ms over {} runs (other processes: {other:.2} cores)",
            samples_ms.len()
        );
    }
}

/// Deterministic token ids shared with the Python peer: `(i * 7919 + 13) % min(vocab, 128000)`.
pub fn token_ids(n: usize, vocab: usize) -> Vec<u32> {
    let m = vocab.min(128_000);
    (0..n).map(|i| ((i * 7919 + 13) % m) as u32).collect()
}

/// Deterministic 30 s test signal shared with the Python peer (two tones plus noise).
pub fn test_audio(n: usize) -> Vec<f32> {
    let mut rng = Rng(42);
    (0..n)
        .map(|i| {
            let t = i as f32 / 16000.0;
            0.3 * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
                + 0.1 * (2.0 * std::f32::consts::PI * 1234.5 * t).sin()
                + 0.05 * rng.uniform()
        })
        .collect()
}
