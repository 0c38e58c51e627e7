#!/usr/bin/env python3
"""PyTorch CPU peer of `benches/omni_bench.rs`, and the report that compares them.

    bench_torch.py run --dir DIR --out torch.jsonl [--rows mel,whisper,llm,llm8b,sd,vocoder]
    bench_torch.py report --omni omni.jsonl --torch torch.jsonl --md benches/RESULTS.md

`run` loads the random-weight checkpoints the Rust bench wrote under DIR (same
weights, same shapes, same inputs where it matters), times the same work with the
same warm-up / repetition counts, and writes JSON lines with the same row ids.
Threads: torch.set_num_threads($BENCH_THREADS, default 2).
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

PREFILL = 340
DECODE_STEPS = 16


def token_ids(n, vocab):
    m = min(vocab, 128000)
    return [(i * 7919 + 13) % m for i in range(n)]


def rng_uniform(seed, n):
    """The Rust bench's `Rng(seed)` (SplitMix64) `uniform()` draws in [-1, 1), as f32."""
    import numpy as np

    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 / (1 << 24)) - np.float32(1.0)


def test_audio(n):
    """The Rust bench's 30 s signal (two tones plus noise)."""
    import numpy as np

    t = np.arange(n, dtype=np.float32) / np.float32(16000.0)
    x = np.float32(0.3) * np.sin(np.float32(2 * np.pi * 220.0) * t) + np.float32(0.1) * np.sin(
        np.float32(2 * np.pi * 1234.5) * t)
    return (x + np.float32(0.05) * rng_uniform(42, n)).astype(np.float32)


def cpu_snapshot():
    """(busy jiffies of the machine, jiffies of this process, time)."""
    try:
        with open("/proc/stat") as f:
            v = [float(x) for x in f.readline().split()[1:9]]
        busy = sum(v) - v[3] - v[4]
    except OSError:
        busy = float("nan")
    t = os.times()
    return busy, (t.user + t.system) * 100.0, time.perf_counter()


def torch_isa():
    """What PyTorch's CPU kernels use: ATen's dispatch level and the oneDNN/MKL caps set in the
    environment (a run with PyTorch held to AVX2 sets ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA,
    MKL_ENABLE_INSTRUCTIONS)."""
    if "torch" not in sys.modules:
        return None
    import torch
    caps = [f"{k}={os.environ[k]}" for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                                             "MKL_ENABLE_INSTRUCTIONS") if os.environ.get(k)]
    return torch.backends.cpu.get_cpu_capability() + (f" ({', '.join(caps)})" if caps else "")


class Results:
    """JSON lines; `other_cores` = mean cores other processes kept busy since the previous row."""

    def __init__(self, path):
        self.f = open(path, "w")
        self.last = cpu_snapshot()

    def mark(self):
        self.last = cpu_snapshot()

    def row(self, rid, samples_ms, **extra):
        med = statistics.median(samples_ms)
        now = cpu_snapshot()
        secs = max(now[2] - self.last[2], 1e-3)
        other = round(max(0.0, ((now[0] - self.last[0]) - (now[1] - self.last[1])) / 100.0 / secs), 2)
        self.last = now
        obj = {"id": rid, "median_ms": med, "n": len(samples_ms),
               "samples_ms": [round(x, 3) for x in samples_ms], "load1": os.getloadavg()[0],
               "other_cores": other, **extra}
        if torch_isa() is not None:
            obj["torch_isa"] = torch_isa()
        self.f.write(json.dumps(obj) + "\n")
        self.f.flush()
        print(f"  {rid}: median {med:.1f} ms over {len(samples_ms)} runs (other processes: {other:.2f} cores)",
              file=sys.stderr)


def time_n(warm, n, fn):
    for _ in range(warm):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def load_st(path, dtype=None, prefix=""):
    from safetensors.torch import load_file

    sd = load_file(path)
    out = {}
    for k, v in sd.items():
        if not k.startswith(prefix):
            continue
        out[k[len(prefix):]] = v.to(dtype) if dtype is not None else v
    return out


# ------------------------------------------------------------------ rows

def bench_mel(res):
    import torch
    import whisper

    print("[mel]", file=sys.stderr)
    audio = torch.from_numpy(test_audio(30 * 16000))

    def run():
        m = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio), n_mels=128)
        assert m.shape == (128, 3000)

    res.row("mel", time_n(2, 10, run))


def bench_whisper(res, d):
    import torch
    from whisper.model import AudioEncoder

    for rid, fname, (n_mels, c, heads, layers), n in [
        ("whisper_base", "whisper_base.safetensors", (80, 512, 8, 6), 5),
        ("whisper_v3_4l", "whisper_v3_4layers.safetensors", (128, 1280, 20, 4), 3),
    ]:
        print(f"[{rid}]", file=sys.stderr)
        t = time.perf_counter()
        enc = AudioEncoder(n_mels, 1500, c, heads, layers)
        enc.load_state_dict(load_st(os.path.join(d, fname), torch.float32))
        enc.eval()
        load_ms = (time.perf_counter() - t) * 1e3
        res.mark()
        mel = torch.from_numpy(rng_uniform(7, n_mels * 3000)).view(1, n_mels, 3000)
        holder = {}

        def run():
            with torch.no_grad():
                y = enc(mel).numpy()
            assert y.shape == (1, 1500, c)
            holder["check"] = float(abs(y).astype("float64").mean())

        res.row(rid, time_n(1, n, run), load_ms=load_ms, check_mean_abs=holder["check"])


def llama_config(hidden, layers, heads, kv, ffn, vocab, factor):
    from transformers import LlamaConfig

    cfg = LlamaConfig(
        hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
        rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": factor, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        max_position_embeddings=131072, tie_word_embeddings=False, hidden_act="silu",
    )
    cfg._attn_implementation = "sdpa"
    return cfg


def load_llama(cfg, path, dtype):
    """LlamaForCausalLM with the checkpoint's weights (no random init pass)."""
    import torch
    from transformers import LlamaForCausalLM

    from transformers.modeling_utils import no_init_weights

    with no_init_weights():  # uninitialised parameters, replaced below
        model = LlamaForCausalLM(cfg)
    model.load_state_dict(load_st(path, dtype), assign=True)
    return model.eval()


def bench_llm_model(res, rid, model, n_prefill, load_ms, do_prefill):
    import torch
    from transformers import DynamicCache

    ids = torch.tensor([token_ids(PREFILL, model.config.vocab_size)])

    def prefill():
        # The base model, then lm_head on the last position only: the same work as
        # omni (transformers 4.43's LlamaForCausalLM would project all 340 positions).
        cache = DynamicCache()
        out = model.model(input_ids=ids, past_key_values=cache, use_cache=True)
        logits = model.lm_head(out.last_hidden_state[:, -1:, :]).float()
        return out.past_key_values, int(logits[0, -1].argmax())

    def step(cache, tok):
        out = model(input_ids=torch.tensor([[tok]]), past_key_values=cache, use_cache=True)
        return int(out.logits[0, -1].float().argmax())

    with torch.no_grad():
        cache, tok = prefill()
        for _ in range(2):
            tok = step(cache, tok)
        del cache
        pre, last = [], None
        for _ in range(max(1, n_prefill)):
            t = time.perf_counter()
            last = prefill()
            pre.append((time.perf_counter() - t) * 1e3)
        if do_prefill:
            med = statistics.median(pre)
            res.row(f"{rid}_prefill", pre, tokens=PREFILL, tokens_per_s=PREFILL / (med / 1e3), load_ms=load_ms)
        cache, tok = last
        toks = [tok]
        dec = []
        for _ in range(DECODE_STEPS):
            t = time.perf_counter()
            tok = step(cache, tok)
            dec.append((time.perf_counter() - t) * 1e3)
            toks.append(tok)
        res.row(f"{rid}_decode", dec, context=PREFILL, load_ms=load_ms, check_tokens=toks)


def bench_llm(res, d, n_prefill):
    import torch

    cfg = llama_config(2048, 16, 32, 8, 8192, 128256, 32.0)
    path = os.path.join(d, "llama1b_f16.safetensors")
    for dtype, name in [(torch.float32, "f32"), (torch.float16, "f16")]:
        print(f"[llm1b_{name}]", file=sys.stderr)
        t = time.perf_counter()
        model = load_llama(cfg, path, dtype)
        load_ms = (time.perf_counter() - t) * 1e3
        res.mark()
        bench_llm_model(res, f"llm1b_{name}", model, n_prefill, load_ms, True)
        del model


def bench_llm8b_layer(res, d):
    import torch

    print("[llm8b_layer_f16]", file=sys.stderr)
    cfg = llama_config(4096, 1, 32, 8, 14336, 256, 8.0)
    t = time.perf_counter()
    model = load_llama(cfg, os.path.join(d, "llama8b_1layer_f16.safetensors"), torch.float16)
    load_ms = (time.perf_counter() - t) * 1e3
    res.mark()
    bench_llm_model(res, "llm8b_layer_f16", model, 1, load_ms, False)


class SpeechGeneratorCTC:
    """LLaMA-Omni's SpeechGeneratorCTC restated for inference (sdpa instead of
    flash-attention: there is no flash-attention on a CPU): input_proj, 2
    LlamaDecoderLayers from a copy of the LLM config, output_proj."""

    def __init__(self, llm_cfg, sd, n_layers=2, dim=4096, heads=32, ffn=11008, upsample=25, units=1000):
        import copy

        import torch
        from torch import nn
        from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

        cfg = copy.deepcopy(llm_cfg)
        cfg.hidden_size, cfg.num_hidden_layers = dim, n_layers
        cfg.num_attention_heads = cfg.num_key_value_heads = heads
        cfg.intermediate_size = ffn
        cfg._attn_implementation = "sdpa"
        self.upsample, self.units = upsample, units
        from transformers.modeling_utils import no_init_weights

        with no_init_weights():  # uninitialised parameters, replaced below
            self.input_proj = nn.Linear(llm_cfg.hidden_size, dim)
            self.layers = nn.ModuleList([LlamaDecoderLayer(cfg, i) for i in range(n_layers)])
            self.output_proj = nn.Linear(dim, units + 1)
        for name, mod in [("input_proj", self.input_proj), ("layers", self.layers), ("output_proj", self.output_proj)]:
            sub = {k[len(name) + 1:]: v for k, v in sd.items() if k.startswith(name + ".")}
            mod.load_state_dict(sub, assign=True)
        self.rotary = LlamaRotaryEmbedding(config=cfg)

    def run(self, reps, cache=None, start=0):
        """CTC frame labels of the hidden states `reps` [n, 4096] placed after `start`
        cached frames. With no cache it is the reference's `predict` (causal self-attention
        over all frames)."""
        import torch
        import torch.nn.functional as F

        x = reps.repeat_interleave(self.upsample, dim=0).unsqueeze(0)  # uniform assignment, integer ratio
        n = x.shape[1]
        pos = torch.arange(start, start + n).unsqueeze(0)
        x = self.input_proj(x)
        cos_sin = self.rotary(x, pos)
        mask = None
        if start > 0:
            # Causal over cache + new frames; sdpa's is_causal would align top-left.
            allowed = torch.arange(start + n).unsqueeze(0) <= pos.view(-1, 1)
            mask = torch.zeros(1, 1, n, start + n, dtype=x.dtype).masked_fill(~allowed, torch.finfo(x.dtype).min)
        for layer in self.layers:
            x = layer(x, attention_mask=mask, position_ids=pos, past_key_value=cache,
                      use_cache=cache is not None, cache_position=pos[0], position_embeddings=cos_sin)[0]
        logits = self.output_proj(x)
        return F.log_softmax(logits.float(), dim=-1).argmax(dim=-1)[0]


def bench_speech_decoder(res, d, n_full):
    import torch
    from transformers import DynamicCache

    print("[speech decoder]", file=sys.stderr)
    llm_cfg = llama_config(4096, 32, 32, 8, 14336, 128256, 8.0)
    t = time.perf_counter()
    sd = load_st(os.path.join(d, "speech_decoder_f16.safetensors"), torch.float32, prefix="speech_generator.")
    gen = SpeechGeneratorCTC(llm_cfg, sd)
    load_ms = (time.perf_counter() - t) * 1e3
    res.mark()
    tokens, lam = 50, 25
    import numpy as np

    reps = torch.from_numpy(rng_uniform(11, tokens * 4096) * np.float32(1.7)).view(tokens, 4096)
    with torch.no_grad():
        gen.run(reps[:2])  # warm-up
        holder = {}

        def full():
            # The reference's way: re-run over all 50 x 25 frames (a DynamicCache is
            # filled on the way, as omni's run fills its cache, for the rows below).
            holder["cache"] = DynamicCache()
            labels = gen.run(reps, cache=holder["cache"])
            assert labels.shape[0] == tokens * lam
            holder["check"] = labels[-lam:].tolist()

        res.row("sd_full_f32", time_n(0, n_full, full), tokens=tokens, frames=tokens * lam, load_ms=load_ms,
                check_last_labels=holder["check"])
        cache = holder["cache"]
        before = (tokens - 1) * lam
        last = reps[tokens - 1:tokens]

        def inc():
            cache.crop(before)
            labels = gen.run(last, cache=cache, start=before)
            assert labels.shape[0] == lam
            holder["check"] = labels.tolist()

        res.row("sd_inc_f32", time_n(2, 10, inc), context_frames=before, load_ms=load_ms,
                check_last_labels=holder["check"])


def bench_vocoder(res, d):
    import torch

    print("[vocoder]", file=sys.stderr)
    with open(os.path.join(d, "vocoder_config.json")) as f:
        cfg = json.load(f)
    t = time.perf_counter()
    try:
        from fairseq.models.text_to_speech.codehifigan import CodeGenerator
        impl = "fairseq CodeGenerator"
    except Exception as e:  # pragma: no cover - depends on the environment
        print(f"  fairseq not importable ({e}); no vocoder row", file=sys.stderr)
        return
    gen = CodeGenerator(cfg)
    gen.remove_weight_norm()  # as CodeHiFiGANVocoder.__init__ does
    gen.load_state_dict(load_st(os.path.join(d, "vocoder_folded.safetensors"), torch.float32))
    gen.eval()
    load_ms = (time.perf_counter() - t) * 1e3
    res.mark()
    units = torch.tensor([[(i * 397 + 11) % 1000 for i in range(40)]])
    holder = {}

    def run():
        with torch.no_grad():
            wav = gen(code=units, dur_prediction=True)
        holder["samples"] = wav.numel()
        holder["rms"] = float(wav.double().pow(2).mean().sqrt())

    times = time_n(2, 10, run)
    audio_s = holder["samples"] / 16000.0
    med = statistics.median(times)
    res.row("vocoder40", times, units=40, samples=holder["samples"], audio_s=audio_s,
            rtf=med / 1e3 / audio_s, load_ms=load_ms, impl=impl, check_rms=holder["rms"])


def cmd_run(a):
    import torch

    threads = int(os.environ.get("BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    print(f"torch bench: torch {torch.__version__}, threads {torch.get_num_threads()}, dir {a.dir}", file=sys.stderr)
    rows = set(a.rows.split(","))
    res = Results(a.out)
    t = time.perf_counter()
    if "mel" in rows:
        bench_mel(res)
    if "whisper" in rows:
        bench_whisper(res, a.dir)
    if "llm" in rows:
        bench_llm(res, a.dir, a.prefill_runs)
    if "llm8b" in rows:
        bench_llm8b_layer(res, a.dir)
    if "sd" in rows:
        bench_speech_decoder(res, a.dir, a.sd_full_runs)
    if "vocoder" in rows:
        bench_vocoder(res, a.dir)
    print(f"torch bench done in {time.perf_counter() - t:.0f} s", file=sys.stderr)


# ------------------------------------------------------------------ report

def read_jsonl(paths):
    """Rows of one or more JSON-lines files (comma-separated); for an id measured more
    than once, the run least disturbed by other processes wins (then the latest)."""
    out = {}
    for path in paths.split(","):
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    old = out.get(r["id"])
                    if old is None or r.get("other_cores", 0) <= old.get("other_cores", 0) + 0.05:
                        out[r["id"]] = r
    return out


GROUPS = {"mel": "mel", "whisper": "whisper", "llm1b": "llm", "llm8b": "llm8b", "sd": "sd", "vocoder40": "vocoder"}


def cmd_busy(a):
    """Prints the row groups of a results file measured while others kept >= 0.25 cores busy."""
    groups = []
    for rid, r in read_jsonl(a.results).items():
        if r.get("other_cores", 0) >= 0.25:
            g = GROUPS.get(rid.split("_")[0])
            if g and g not in groups:
                groups.append(g)
    print(",".join(groups))


def fmt_ms(ms):
    if ms >= 10000:
        return f"{ms / 1000:.1f} s"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    return f"{ms:.1f} ms"


def machine_line():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    date = subprocess.run(["date", "-u", "+%Y-%m-%d %H:%M UTC"], capture_output=True, text=True).stdout.strip()
    line = (f"Machine: `nproc` = {nproc}, CPU: {cpu}, {platform.system()} {platform.machine()}, {date}; "
            f"threads: {os.environ.get('BENCH_THREADS', '2')} on both sides (RAYON_NUM_THREADS / torch.set_num_threads)")
    try:
        import torch
        line += f"; torch {torch.__version__} (CPU kernels: {torch_isa()})"
    except ImportError:
        pass
    try:
        import transformers
        line += f", transformers {transformers.__version__}"
    except ImportError:
        pass
    if os.environ.get("BENCH_LOAD"):
        line += f"; {os.environ['BENCH_LOAD']}"
    if os.environ.get("BENCH_WALL"):
        line += f"; wall time: {os.environ['BENCH_WALL']}"
    return line + "."


# (id, what, shape, how the cell is shown)
ROWS = [
    ("mel", "Log-mel, 30 s audio", "128 mels × 3000 frames (pad_or_trim + STFT + filterbank + log)", "ms"),
    ("whisper_base", "Whisper encoder, whisper-base shape, f32", "80 mels, 512 wide, 8 heads, 6 layers, 3000 frames → 1500", "ms"),
    ("whisper_v3_4l", "Whisper encoder, large-v3 shape, 4 of 32 layers, f32", "128 mels, 1280 wide, 20 heads, 4 layers, 3000 frames (×8 ≈ full, see below)", "ms"),
    ("llm1b_f32_prefill", "LLM prefill, Llama-3.2-1B shape, f32", "340 tokens → first token; hidden 2048, 16 layers, 32/8 heads, ffn 8192, vocab 128256", "prefill"),
    ("llm1b_f32_decode", "LLM decode, Llama-3.2-1B shape, f32", "1 token at context 340–356, logits read back", "ms/token"),
    ("llm1b_f16_prefill", "LLM prefill, Llama-3.2-1B shape, f16", "as above", "prefill"),
    ("llm1b_f16_decode", "LLM decode, Llama-3.2-1B shape, f16", "as above", "ms/token"),
    ("llm8b_layer_f16_decode", "LLM decode, ONE Llama-3.1-8B layer, f16", "hidden 4096, 32/8 heads, ffn 14336, context 340 (×32 ≈ the 8B's layer time)", "ms/token"),
    ("sd_inc_f32", "Speech decoder per LLM token, incremental (KV cache), f32", "2 layers, 4096 wide, 32 heads, ffn 11008; 25 new frames against 1225 cached (token 50)", "ms/token"),
    ("sd_full_f32", "Speech decoder per LLM token, reference way (re-run all frames), f32", "same; all 1250 frames at token 50", "ms/token"),
    ("vocoder40", "Vocoder (CodeHiFiGAN + duration predictor), 40 units, f32", "upsample 5·4·4·2·2, 512 ch, ResBlock1 3/7/11; 40 units × 2 frames → 1.6 s audio", "vocoder"),
]


def cell(r, kind):
    if r is None:
        return "not measured"
    s = cell_value(r, kind)
    if r.get("other_cores", 0) >= 0.25:
        s += f" ⚠ others busy {r['other_cores']:.1f} cores"
    return s


def cell_value(r, kind):
    m = r["median_ms"]
    n = r["n"]
    if kind == "prefill":
        return f"{fmt_ms(m)} ({r['tokens'] / (m / 1e3):.0f} tok/s) [N={n}]"
    if kind == "vocoder":
        return f"{fmt_ms(m)} (RTF {r['rtf']:.3f}) [N={n}]"
    if kind == "ms/token":
        return f"{fmt_ms(m)}/token [N={n}]"
    return f"{fmt_ms(m)} [N={n}]"


def cmd_report(a):
    om, to = read_jsonl(a.omni), read_jsonl(a.torch)
    lines = [
        "| what | shape | omni (median) | PyTorch (median) | omni/PyTorch |",
        "|---|---|---|---|---|",
    ]
    for rid, what, shape, kind in ROWS:
        o, t = om.get(rid), to.get(rid)
        ratio = f"{o['median_ms'] / t['median_ms']:.2f}" if o and t else "–"
        lines.append(f"| {what} | {shape} | {cell(o, kind)} | {cell(t, kind)} | {ratio} |")
    # Derived rows.
    o, t = om.get("sd_inc_f32"), to.get("sd_full_f32")
    if o and t:
        lines.append(
            f"| Speech decoder per token, as shipped: omni incremental vs reference re-run | token 50 | "
            f"{fmt_ms(o['median_ms'])}/token | {fmt_ms(t['median_ms'])}/token | {o['median_ms'] / t['median_ms']:.3f} |")
    table = "\n".join(lines)
    notes = []
    o, t = om.get("whisper_v3_4l"), to.get("whisper_v3_4l")
    if o and t:
        notes.append(f"Whisper large-v3, full 32 layers (4-layer time ×8, conv stem counted 8× so slightly high): "
                     f"omni ≈ {fmt_ms(o['median_ms'] * 8)}, PyTorch ≈ {fmt_ms(t['median_ms'] * 8)} per 30 s window.")
    o, t = om.get("llm8b_layer_f16_decode"), to.get("llm8b_layer_f16_decode")
    if o and t:
        notes.append(f"Llama-3.1-8B f16 decode, layers only (one layer ×32, without embedding/lm_head): "
                     f"omni ≈ {fmt_ms(o['median_ms'] * 32)}/token, PyTorch ≈ {fmt_ms(t['median_ms'] * 32)}/token.")
    checks = []
    for rid, key in [("whisper_base", "check_mean_abs"), ("whisper_v3_4l", "check_mean_abs"), ("vocoder40", "check_rms")]:
        o, t = om.get(rid, {}).get(key), to.get(rid, {}).get(key)
        if o is not None and t is not None:
            checks.append(f"{rid} {key[6:]} {o:.5g} vs {t:.5g}")
    for rid, key in [("llm1b_f32_decode", "check_tokens"), ("llm1b_f16_decode", "check_tokens"),
                     ("llm8b_layer_f16_decode", "check_tokens"), ("sd_full_f32", "check_last_labels"),
                     ("sd_inc_f32", "check_last_labels")]:
        o, t = om.get(rid, {}).get(key), to.get(rid, {}).get(key)
        if o is not None and t is not None:
            same = sum(a == b for a, b in zip(o, t))
            checks.append(f"{rid} {key[6:]} equal {same}/{len(t)}")
    if checks:
        notes.append("Same weights and inputs on both sides; output cross-check (omni vs PyTorch): " + "; ".join(checks) + ".")
    v = to.get("vocoder40")
    if v:
        notes.append(f"PyTorch vocoder: {v.get('impl', '?')} (the real class, weight norm removed as CodeHiFiGANVocoder does).")
    text = table + "\n\n" + machine_line() + "\n" + ("\n" + "\n".join(f"- {n}" for n in notes) + "\n" if notes else "")
    print(text)
    if a.md:
        body = ""
        if os.path.exists(a.md):
            with open(a.md) as f:
                body = f.read()
        start, end = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
        block = f"{start}\n{text}\n{end}"
        if start in body and end in body:
            body = body[: body.index(start)] + block + body[body.index(end) + len(end):]
        else:
            body = "# omni vs PyTorch CPU\n\n" + block + "\n" + body
        with open(a.md, "w") as f:
            f.write(body)


# Quantized weights (omni only; llama.cpp as the anchor when its rows exist).
QUANT_ROWS = [
    ("llm1b_{d}_decode", "LLM decode, Llama-3.2-1B shape", "ms/token"),
    ("llm1b_{d}_prefill", "LLM prefill, Llama-3.2-1B shape, 340 tokens", "prefill"),
    ("llm8b_layer_{d}_decode", "LLM decode, ONE Llama-3.1-8B layer", "ms/token"),
]


def cmd_quant(a):
    """Table of f16 / q8_0 / q4_0 rows (`scripts/bench.sh quant`), ratios to f16
    through burn's matmul (`f16burn`, the path before omni-kernels) measured in the
    same run, the llama.cpp anchor (`scripts/bench_llamacpp.py`, same ids; omni's
    f16burn row is compared with llama.cpp's f16), the CTranslate2 Whisper-encoder
    anchor (`scripts/bench_ct2.py`), and the CPU line every row recorded."""
    om = read_jsonl(a.omni)
    lc = read_jsonl(a.llamacpp) if a.llamacpp else {}
    ct = read_jsonl(a.ct2) if a.ct2 else {}
    lines = ["| what | dtype | omni (median) | omni tok/s | ratio to f16 (burn) | llama.cpp (median) | omni/llama.cpp |",
             "|---|---|---|---|---|---|---|"]
    checks, targets = [], []
    for pat, what, kind in QUANT_ROWS:
        base = om.get(pat.format(d="f16burn")) or om.get(pat.format(d="f16"))
        for d in ["f16burn", "f16", "q8_0", "q4_0"]:
            r = om.get(pat.format(d=d))
            if r is None:
                continue
            toks = r["tokens"] / (r["median_ms"] / 1e3) if kind == "prefill" else 1e3 / r["median_ms"]
            ratio = f"{r['median_ms'] / base['median_ms']:.2f}" if base else "–"
            l = lc.get(pat.format(d="f16" if d == "f16burn" else d))
            lcell = cell(l, kind) if l else "not measured"
            lratio = f"{r['median_ms'] / l['median_ms']:.2f}" if l else "–"
            lines.append(f"| {what} | {d} | {cell(r, kind)} | {toks:.1f} | {ratio} | {lcell} | {lratio} |")
            if l and d != "f16burn":
                speed = l["median_ms"] / r["median_ms"]
                targets.append(f"{what} {d}: omni at {speed:.2f}× llama.cpp's tokens/s")
            if l and r.get("check_tokens") and l.get("check_tokens") and d != "f16burn":
                o, t = r["check_tokens"], l["check_tokens"]
                m = r.get("first_token_margin")
                margin = f" (omni's first-token margin {m:.3g})" if m is not None and o[:1] != t[:1] else ""
                checks.append(f"{pat.format(d=d)} {sum(x == y for x, y in zip(o, t))}/{len(t)}{margin}")
    cpus = sorted({r.get("cpu", "?") for r in om.values()})
    text = "\n".join(lines) + "\n\n" + machine_line() + "\n\nCPU and kernels as recorded by the rows: " + "; ".join(f"`{c}`" for c in cpus) + "\n"
    if lc:
        l = next(iter(lc.values()))
        text += (f"\nllama.cpp anchor: {l.get('impl', '?')}, {l.get('threads', '?')} threads, CPU `{l.get('cpu', '?')}`; "
                 f"`llama_print_system_info()`: `{l.get('llama_system_info', '?')}`\n")
        if targets:
            text += "\n- Speed against llama.cpp (same run, same weights, same token ids; target ≥ 0.90×): " + "; ".join(targets) + ".\n"
        if checks:
            text += "- Greedy tokens equal, omni vs llama.cpp (first token of the prefill + 16 decode steps, same format): " + "; ".join(checks) + ".\n"
        for pat in ("llm1b_{d}_decode", "llm8b_layer_{d}_decode"):
            f16 = lc.get(pat.format(d="f16"), {}).get("check_tokens")
            if f16:
                same = [f"{d} {sum(x == y for x, y in zip(lc[pat.format(d=d)]['check_tokens'], f16))}/{len(f16)}"
                        for d in ("q8_0", "q4_0") if pat.format(d=d) in lc]
                if same:
                    text += f"- llama.cpp's own {pat.format(d='*')} tokens vs its f16: " + ", ".join(same) + ".\n"
    if ct:
        rows = ["", "| Whisper encoder, 30 s mel, f32 activations | omni f32 (median) | CTranslate2 float32 | omni/CT2 | CTranslate2 int8 | omni/CT2 int8 | mean abs(y): omni / CT2 f32 / CT2 int8 |",
                "|---|---|---|---|---|---|---|"]
        for rid, what in [("whisper_base", "whisper-base shape (80 mels, 512 wide, 6 layers)"),
                          ("whisper_v3_4l", "large-v3 shape, 4 of 32 layers (128 mels, 1280 wide)")]:
            o, c32, c8 = om.get(rid), ct.get(f"{rid}_ct2_float32"), ct.get(f"{rid}_ct2_int8")
            if not o or not (c32 or c8):
                continue
            rat = lambda c: f"{o['median_ms'] / c['median_ms']:.2f}" if c else "–"
            chk = " / ".join(f"{x['check_mean_abs']:.5f}" if x else "–" for x in (o, c32, c8))
            rows.append(f"| {what} | {cell(o, 'ms')} | {cell(c32, 'ms')} | {rat(c32)} | {cell(c8, 'ms')} | {rat(c8)} | {chk} |")
        c = next(iter(ct.values()))
        text += "\n".join(rows) + (f"\n\nCTranslate2 anchor: {c.get('impl', '?')}, intra_threads {c.get('threads', '?')}, "
                                    f"CPU `{c.get('cpu', '?')}`, CPU compute types {c.get('ct2_cpu_compute_types', '?')}\n")
    print(text)
    if a.md:
        with open(a.md) as f:
            body = f.read()
        start, end = "<!-- quant-table:start -->", "<!-- quant-table:end -->"
        block = f"{start}\n{text}\n{end}"
        if start in body and end in body:
            body = body[: body.index(start)] + block + body[body.index(end) + len(end):]
        else:
            body = body + "\n## Quantized weights (q8_0, q4_0)\n\n" + block + "\n"
        with open(a.md, "w") as f:
            f.write(body)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dir", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--rows", default="mel,whisper,llm,llm8b,sd,vocoder")
    r.add_argument("--prefill-runs", type=int, default=int(os.environ.get("OMNI_BENCH_PREFILL_RUNS", "3")))
    r.add_argument("--sd-full-runs", type=int, default=int(os.environ.get("OMNI_BENCH_SD_FULL_RUNS", "3")))
    q = sub.add_parser("report")
    q.add_argument("--omni", required=True, help="JSON-lines file(s), comma-separated")
    q.add_argument("--torch", required=True, help="JSON-lines file(s), comma-separated")
    q.add_argument("--md")
    qq = sub.add_parser("quant")
    qq.add_argument("--omni", required=True)
    qq.add_argument("--llamacpp")
    qq.add_argument("--ct2")
    qq.add_argument("--md")
    b = sub.add_parser("busy")
    b.add_argument("results")
    a = p.parse_args()
    if a.cmd == "run":
        cmd_run(a)
    elif a.cmd == "busy":
        cmd_busy(a)
    elif a.cmd == "quant":
        cmd_quant(a)
    else:
        cmd_report(a)


if __name__ == "__main__":
    main()
