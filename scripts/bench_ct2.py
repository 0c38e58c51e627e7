#!/usr/bin/env python3
"""CTranslate2 anchor for the Whisper encoder (`scripts/bench.sh quant` with the `whisper` rows).

    bench_ct2.py convert --dir /tmp/omni_bench           # Python with torch + transformers + ctranslate2
    bench_ct2.py run --dir /tmp/omni_bench --out benches/raw/ct2.jsonl   # Python with ctranslate2 + numpy

`convert` builds a transformers WhisperForConditionalGeneration whose encoder holds the
openai-whisper-layout random weights that `benches/omni_bench.rs` wrote (whisper_base.safetensors,
whisper_v3_4layers.safetensors; the decoder, which the bench never runs, is a random 1-layer
one because CTranslate2's converter needs a whole model) and converts it with CTranslate2's
TransformersConverter (float32 storage) under DIR/ct2/. `run` times `model.encode()` on the same
mel input as the omni row (the bench's Rng(7) uniform draws, [1, n_mels, 3000]) with compute
types float32 and int8, intra_threads=$BENCH_THREADS (default 2): 1 warm-up + N runs, median;
`check_mean_abs` (mean |y| of the encoder output) is cross-checked against omni's in the report.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import Results, rng_uniform  # noqa: E402
from bench_llamacpp import cpu_line  # noqa: E402

# id, file, (n_mels, width, heads, layers), timed runs (as the omni rows)
SHAPES = [
    ("whisper_base", "whisper_base.safetensors", (80, 512, 8, 6), 5),
    ("whisper_v3_4l", "whisper_v3_4layers.safetensors", (128, 1280, 20, 4), 3),
]


def hf_whisper(st_path, n_mels, width, heads, layers):
    import torch
    from safetensors.torch import load_file
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    cfg = WhisperConfig(num_mel_bins=n_mels, d_model=width, encoder_layers=layers, encoder_attention_heads=heads,
                        decoder_layers=1, decoder_attention_heads=heads, encoder_ffn_dim=4 * width,
                        decoder_ffn_dim=4 * width, max_source_positions=1500, vocab_size=51865)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(cfg).eval()
    sd = load_file(st_path)
    m = {"conv1.weight": "conv1.weight", "conv1.bias": "conv1.bias", "conv2.weight": "conv2.weight",
         "conv2.bias": "conv2.bias", "positional_embedding": "embed_positions.weight",
         "ln_post.weight": "layer_norm.weight", "ln_post.bias": "layer_norm.bias"}
    sub = {"attn.query": "self_attn.q_proj", "attn.key": "self_attn.k_proj", "attn.value": "self_attn.v_proj",
           "attn.out": "self_attn.out_proj", "attn_ln": "self_attn_layer_norm", "mlp.0": "fc1", "mlp.2": "fc2",
           "mlp_ln": "final_layer_norm"}
    for i in range(layers):
        for a, b in sub.items():
            for p in ("weight", "bias"):
                m[f"blocks.{i}.{a}.{p}"] = f"layers.{i}.{b}.{p}"
    enc = {}
    for k, v in sd.items():
        enc[m[k]] = v.float()
    missing, unexpected = model.model.encoder.load_state_dict(enc, strict=False)
    # openai-whisper's attn.key has no bias, like HF's k_proj: nothing else may be missing.
    assert not unexpected and not missing, (missing, unexpected)
    return model


def cmd_convert(a):
    import ctranslate2
    from ctranslate2.converters import TransformersConverter

    class Tok:  # the converter reads a vocabulary; the encoder never uses it
        additional_special_tokens = []

        def get_vocab(self):
            return {f"<t{i}>": i for i in range(51865)}

    for rid, fname, shape, _ in SHAPES:
        st = os.path.join(a.dir, fname)
        out = os.path.join(a.dir, "ct2", rid)
        if not os.path.exists(st) or os.path.exists(os.path.join(out, "model.bin")):
            continue
        t = time.perf_counter()
        model = hf_whisper(st, *shape)
        hf_dir = os.path.join(a.dir, "ct2", rid + "_hf")
        model.config.save_pretrained(hf_dir)

        class Conv(TransformersConverter):
            def load_model(self, *args, **kwargs):
                return model

            def load_tokenizer(self, *args, **kwargs):
                return Tok()

        Conv(hf_dir).convert(out, quantization="float32", force=True)
        print(f"  converted {rid} (ctranslate2 {ctranslate2.__version__}) in {time.perf_counter() - t:.0f} s",
              file=sys.stderr)


def cmd_run(a):
    import ctranslate2
    import numpy as np

    threads = int(os.environ.get("BENCH_THREADS", "2"))
    res = Results(a.out)
    base = {"cpu": cpu_line(), "impl": f"CTranslate2 {ctranslate2.__version__}", "threads": threads,
            "ct2_cpu_compute_types": sorted(ctranslate2.get_supported_compute_types("cpu"))}
    print(f"ctranslate2 {ctranslate2.__version__}, intra_threads {threads}", file=sys.stderr)
    for rid, _, (n_mels, width, _, _), n in SHAPES:
        path = os.path.join(a.dir, "ct2", rid)
        if not os.path.exists(os.path.join(path, "model.bin")):
            print(f"  {path} missing (run `convert` first); no {rid} rows", file=sys.stderr)
            continue
        mel = rng_uniform(7, n_mels * 3000).reshape(1, n_mels, 3000)
        feats = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel))
        for ct in a.compute_types.split(","):
            t = time.perf_counter()
            model = ctranslate2.models.Whisper(path, device="cpu", compute_type=ct, intra_threads=threads,
                                               inter_threads=1)
            load_ms = (time.perf_counter() - t) * 1e3
            holder = {}

            def run():
                y = np.array(model.encode(feats, to_cpu=True))
                assert y.shape == (1, 1500, width), y.shape
                holder["check"] = float(np.abs(y).astype(np.float64).mean())

            run()
            res.mark()
            times = []
            for _ in range(n):
                t = time.perf_counter()
                run()
                times.append((time.perf_counter() - t) * 1e3)
            res.row(f"{rid}_ct2_{ct}", times, load_ms=load_ms, compute_type=ct, check_mean_abs=holder["check"],
                    **base)
            del model


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert")
    c.add_argument("--dir", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dir", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--compute-types", default="float32,int8")
    a = p.parse_args()
    cmd_convert(a) if a.cmd == "convert" else cmd_run(a)


if __name__ == "__main__":
    main()
