"""Shared helpers of the fixture generators.

Fixtures are written as safetensors files of f32/i64 arrays, read by the Rust
tests through `tests/common/mod.rs`. Every generator seeds torch and numpy so
that re-running `make_fixtures.py` writes the same bytes.
"""
import os
import numpy as np
import torch
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "fixtures"))


def out_path(*parts):
    p = os.path.join(FIXTURES, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def seed(s):
    torch.manual_seed(s)
    np.random.seed(s)


def save_arrays(path, arrays):
    """Saves a dict name -> numpy/torch array (f32, or i64 for ids) as safetensors."""
    out = {}
    for k, v in arrays.items():
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().numpy()
        v = np.ascontiguousarray(v)
        if v.dtype in (np.float64, np.float16):
            v = v.astype(np.float32)
        if v.dtype in (np.int32,):
            v = v.astype(np.int64)
        out[k] = v
    save_file(out, path)
