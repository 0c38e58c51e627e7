#!/usr/bin/env python3
"""llama.cpp anchor of the quant bench (`scripts/bench.sh quant`), through llama-cpp-python.

    bench_llamacpp.py --dir /tmp/omni_bench --out benches/raw/llamacpp.jsonl [--rows llm,llm8b]
                      [--dtypes f16,q8_0,q4_0]

Reads the random-weight HF-layout Llama checkpoints that `benches/omni_bench.rs` wrote under
--dir (llama1b_f16.safetensors, llama8b_1layer_f16.safetensors), writes them as GGUF (llama
arch) the way llama.cpp's convert_hf_to_gguf.py does (q/k rows permuted for llama.cpp's RoPE
layout, llama3 `rope_freqs`, 1-D tensors in f32, a dummy vocab of the right size since token
ids are fed directly), quantizes with llama.cpp's own `llama_model_quantize` (q8_0 / q4_0 for
every matrix including `output`, `token_embd` kept f16 as omni keeps its embedding), and times
the same work as the omni rows: 1 warm-up prefill + 2 decode steps, N prefills of 340 tokens
(the same ids) up to the first greedy token, then 16 greedy decode steps. Wall clock of each
eval call plus the argmax, as on the omni side. Threads: $BENCH_THREADS (default 2) for both
prefill and decode. Rows use the omni ids (`llm1b_q4_0_decode`, ...), so the report matches them.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import PREFILL, DECODE_STEPS, Results, token_ids  # noqa: E402  (no torch import at module level)

# (file, hidden, layers, heads, kv heads, ffn, vocab, llama3 rope factor): the omni bench's shapes.
MODELS = {
    "llm": ("llm1b", "llama1b_f16.safetensors", 2048, 16, 32, 8, 8192, 128256, 32.0),
    "llm8b": ("llm8b_layer", "llama8b_1layer_f16.safetensors", 4096, 1, 32, 8, 14336, 256, 8.0),
}
FTYPE = {"q8_0": 7, "q4_0": 2}  # llama_ftype LLAMA_FTYPE_MOSTLY_*
GGML_TYPE = {"f16": 1, "q4_0": 2, "q8_0": 8}


def cpu_line():
    """CPU model and the SIMD flags that matter here, as /proc/cpuinfo lists them."""
    model, flags = "?", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    want = ["avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"]
    return f"{model} [{' '.join(w for w in want if w in flags)}]"


def permute(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute: HF's rotate-half q/k rows → llama.cpp's pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def rope_factors(head_dim, theta, factor, low=1.0, high=4.0, old_ctx=8192):
    """convert_hf_to_gguf.py's llama3 `rope_freqs` tensor."""
    out = []
    for i in range(0, head_dim, 2):
        wavelen = 2 * math.pi * theta ** (i / head_dim)
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_gguf_f16(st_path, out, hidden, layers, heads, kv, ffn, vocab, factor):
    import gguf
    from safetensors import safe_open

    w = gguf.GGUFWriter(out, "llama")
    w.add_name("omni-bench random Llama")
    w.add_context_length(131072)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_dimension_count(hidden // heads)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    # A dummy SentencePiece vocab of the right size: the bench feeds token ids.
    w.add_tokenizer_model("llama")
    w.add_token_list([f"<t{i}>" for i in range(vocab)])
    w.add_token_scores([0.0] * vocab)
    w.add_token_types([1] * vocab)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    with safe_open(st_path, "numpy") as f:
        def put(name, t):
            t = t.astype(np.float32) if t.ndim == 1 else t.astype(np.float16)
            w.add_tensor(name, t)

        put("token_embd.weight", f.get_tensor("model.embed_tokens.weight"))
        w.add_tensor("rope_freqs.weight", rope_factors(hidden // heads, 500000.0, factor))
        for i in range(layers):
            for hf, gg in names.items():
                t = f.get_tensor(f"model.layers.{i}.{hf}.weight")
                if hf == "self_attn.q_proj":
                    t = permute(t, heads)
                elif hf == "self_attn.k_proj":
                    t = permute(t, kv)
                put(f"blk.{i}.{gg}.weight", t)
        put("output_norm.weight", f.get_tensor("model.norm.weight"))
        put("output.weight", f.get_tensor("lm_head.weight"))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
    w.close()


def quantize(llama_cpp, src, dst, dtype, threads):
    p = llama_cpp.llama_model_quantize_default_params()
    p.nthread = threads
    p.ftype = FTYPE[dtype]
    p.output_tensor_type = GGML_TYPE[dtype]  # llama.cpp would pick q6_K/q8_0 for `output`; omni quantizes lm_head too
    p.token_embedding_type = GGML_TYPE["f16"]
    p.pure = True  # no per-tensor mixing: every matrix in the named format, as omni does
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), p)
    if rc != 0:
        raise SystemExit(f"llama_model_quantize({dtype}) failed: {rc}")


def tensor_types(path):
    import gguf

    r = gguf.GGUFReader(path)
    return sorted({(t.name.split(".")[-2] if t.name.startswith("blk.") else t.name, t.tensor_type.name)
                   for t in r.tensors})


def bench_model(res, llama_cpp, rid, path, vocab, threads, n_prefill, do_prefill, extra):
    from llama_cpp import Llama

    t = time.perf_counter()
    llm = Llama(model_path=path, n_ctx=512, n_batch=512, n_ubatch=512, n_threads=threads,
                n_threads_batch=threads, logits_all=False, verbose=False)
    load_ms = (time.perf_counter() - t) * 1e3
    ids = token_ids(PREFILL, vocab)

    def argmax_last():
        # The last position's logits straight from llama.cpp (llama-cpp-python 0.3.36's
        # `Llama.scores` stays zero without logits_all).
        return int(np.argmax(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(vocab,))))

    def prefill():
        llm.reset()
        llm.eval(ids)
        return argmax_last()

    def step(tok):
        llm.eval([tok])
        return argmax_last()

    tok = prefill()
    for _ in range(2):
        tok = step(tok)
    res.mark()
    pre = []
    for _ in range(max(1, n_prefill)):
        t = time.perf_counter()
        tok = prefill()
        pre.append((time.perf_counter() - t) * 1e3)
    if do_prefill:
        res.row(f"{rid}_prefill", pre, tokens=PREFILL, tokens_per_s=PREFILL / (statistics.median(pre) / 1e3),
                load_ms=load_ms, **extra)
    toks, dec = [tok], []
    for _ in range(DECODE_STEPS):
        t = time.perf_counter()
        tok = step(tok)
        dec.append((time.perf_counter() - t) * 1e3)
        toks.append(tok)
    res.row(f"{rid}_decode", dec, context=PREFILL, load_ms=load_ms, check_tokens=toks, **extra)
    del llm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", default="llm,llm8b")
    ap.add_argument("--dtypes", default="f16,q8_0,q4_0")
    ap.add_argument("--prefill-runs", type=int, default=int(os.environ.get("OMNI_BENCH_PREFILL_RUNS", "3")))
    a = ap.parse_args()
    import llama_cpp

    threads = int(os.environ.get("BENCH_THREADS", "2"))
    llama_cpp.llama_backend_init()
    sysinfo = llama_cpp.llama_print_system_info().decode().strip()
    base = {"cpu": cpu_line(), "impl": f"llama.cpp via llama-cpp-python {llama_cpp.__version__}",
            "llama_system_info": sysinfo, "threads": threads}
    print(f"llama.cpp bench: llama-cpp-python {llama_cpp.__version__}, threads {threads}\n  {sysinfo}", file=sys.stderr)
    res = Results(a.out)
    gdir = os.path.join(a.dir, "gguf")
    os.makedirs(gdir, exist_ok=True)
    for group in a.rows.split(","):
        if group not in MODELS:
            continue
        prefix, fname, hidden, layers, heads, kv, ffn, vocab, factor = MODELS[group]
        st = os.path.join(a.dir, fname)
        if not os.path.exists(st):
            print(f"  {st} missing (run the omni bench first); no {group} rows", file=sys.stderr)
            continue
        f16 = os.path.join(gdir, f"{prefix}_f16.gguf")
        if not os.path.exists(f16):
            t = time.perf_counter()
            write_gguf_f16(st, f16 + ".partial", hidden, layers, heads, kv, ffn, vocab, factor)
            os.rename(f16 + ".partial", f16)
            print(f"  wrote {f16} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        for d in a.dtypes.split(","):
            path = f16 if d == "f16" else os.path.join(gdir, f"{prefix}_{d}.gguf")
            if not os.path.exists(path):
                t = time.perf_counter()
                quantize(llama_cpp, f16, path, d, threads)
                print(f"  quantized {path} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
            types = tensor_types(path)
            print(f"[{prefix}_{d}] tensor types: {types}", file=sys.stderr)
            bench_model(res, llama_cpp, f"{prefix}_{d}", path, vocab, threads, a.prefill_runs,
                        group == "llm", {**base, "gguf_tensor_types": types})


if __name__ == "__main__":
    main()
