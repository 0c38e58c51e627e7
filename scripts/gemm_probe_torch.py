"""PyTorch's side of examples/gemm_probe.rs: F.linear (x[m, k] · W[n, k]ᵀ) at the shapes of
omni's f32 rows, f32 and f16 weights, 2 threads, median of 7, in GFLOP/s.

Run with the bench venv: /work/venv/ref/bin/python scripts/gemm_probe_torch.py
"""
import time

import torch

torch.set_num_threads(2)
SHAPES = [
    (1500, 512, 2048), (1500, 2048, 512), (1500, 512, 512),  # whisper base fc1, fc2, q/k/v/o
    (340, 2048, 8192), (340, 8192, 2048),  # 1B gate/up, down
    (340, 2048, 2048), (340, 2048, 512),  # 1B q/o, k/v
    (25, 4096, 11008), (1500, 1280, 5120),  # speech decoder ffn, v3 fc1
]
for dt in (torch.float32, torch.float16):
    for m, k, n in SHAPES:
        a = torch.full((m, k), 0.01, dtype=dt)
        w = torch.full((n, k), 0.02, dtype=dt)
        ts = []
        for _ in range(7):
            t = time.perf_counter()
            torch.nn.functional.linear(a, w)
            ts.append(time.perf_counter() - t)
        t = sorted(ts)[3]
        print(f"torch {dt} m={m} k={k} n={n}: {t * 1e3:.2f} ms, {2 * m * k * n / t / 1e9:.0f} GFLOP/s")
