"""Writes a mid-size LLaMA-Omni model with random weights, in the published layouts,
for the latency benchmark (scripts/latency.sh). Real layer structure, fewer/narrower
layers so that it runs on a 2-core CPU:

- Whisper encoder: large-v3 structure (128 mels, 1280 wide, 20 heads, 1500 positions)
  with 4 of the 32 blocks, as an openai `.pt` (fp16);
- adaptor: k = 5, 6400 -> 2048 -> 2048;
- LLM: the Llama-3.2-1B shape (2048 wide, 16 layers, 32 heads / 8 KV heads, FFN 8192,
  vocab 128256, llama3 RoPE scaling) with the real Llama-3.1 tokenizer;
- speech decoder: 2 layers, 2048 wide, 16 heads, FFN 5504 (the real one is 2 x 4096);
- vocoder: the published config (512 channels), random weights.

    python scripts/make_midsize_model.py OUT_DIR [--no-vocoder]

`--no-vocoder` skips the vocoder (it needs fairseq); use the demo vocoder
(tests/fixtures/vocoder/tiny) with the model then, and say so.
"""
import dataclasses
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rnd(*shape, scale=None):
    fan_in = shape[-1] if len(shape) > 1 else 1
    s = scale if scale is not None else fan_in ** -0.5
    return (torch.randn(*shape) * s).half()


def main(out):
    torch.manual_seed(0)
    model = os.path.join(out, "model")
    os.makedirs(model, exist_ok=True)
    H, L, NH, KV, FFN, V = 2048, 16, 32, 8, 8192, 128256
    HD = H // NH
    sd = {"model.embed_tokens.weight": rnd(V, H, scale=1.0), "model.norm.weight": torch.ones(H).half(),
          "lm_head.weight": rnd(V, H)}
    for i in range(L):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = torch.ones(H).half()
        sd[p + "post_attention_layernorm.weight"] = torch.ones(H).half()
        sd[p + "self_attn.q_proj.weight"] = rnd(NH * HD, H)
        sd[p + "self_attn.k_proj.weight"] = rnd(KV * HD, H)
        sd[p + "self_attn.v_proj.weight"] = rnd(KV * HD, H)
        sd[p + "self_attn.o_proj.weight"] = rnd(H, NH * HD)
        sd[p + "mlp.gate_proj.weight"] = rnd(FFN, H)
        sd[p + "mlp.up_proj.weight"] = rnd(FFN, H)
        sd[p + "mlp.down_proj.weight"] = rnd(H, FFN)
    sd["model.speech_projector.linear1.weight"] = rnd(2048, 6400)
    sd["model.speech_projector.linear1.bias"] = torch.zeros(2048).half()
    sd["model.speech_projector.linear2.weight"] = rnd(H, 2048)
    sd["model.speech_projector.linear2.bias"] = torch.zeros(H).half()
    D, SNH, SFFN = 2048, 16, 5504
    sd["speech_generator.input_proj.weight"] = rnd(D, H)
    sd["speech_generator.input_proj.bias"] = torch.zeros(D).half()
    for i in range(2):
        p = f"speech_generator.layers.{i}."
        sd[p + "input_layernorm.weight"] = torch.ones(D).half()
        sd[p + "post_attention_layernorm.weight"] = torch.ones(D).half()
        for n in ["q", "k", "v", "o"]:
            sd[p + f"self_attn.{n}_proj.weight"] = rnd(D, D)
        sd[p + "mlp.gate_proj.weight"] = rnd(SFFN, D)
        sd[p + "mlp.up_proj.weight"] = rnd(SFFN, D)
        sd[p + "mlp.down_proj.weight"] = rnd(D, SFFN)
    sd["speech_generator.output_proj.weight"] = rnd(1001, D, scale=4 * D ** -0.5)
    sd["speech_generator.output_proj.bias"] = torch.zeros(1001).half()
    keys = sorted(sd)
    half = len(keys) // 2
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    wm = {}
    for name, ks in zip(names, [keys[:half], keys[half:]]):
        save_file({k: sd[k].contiguous() for k in ks}, os.path.join(model, name), metadata={"format": "pt"})
        wm.update({k: name for k in ks})
    with open(os.path.join(model, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(v.numel() * 2 for v in sd.values())}, "weight_map": wm}, f)
    cfg = {
        "model_type": "omni_speech2s_llama", "hidden_size": H, "intermediate_size": FFN,
        "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": KV, "vocab_size": V,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192},
        "max_position_embeddings": 131072, "hidden_act": "silu", "tie_word_embeddings": False,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
        "speech_encoder": "large-v3-4layers.pt", "speech_encoder_type": "whisper", "speech_encoder_ds_rate": 5,
        "speech_encoder_hidden_size": 1280, "speech_projector_type": "linear", "speech_generator_type": "ctc",
        "ctc_decoder_config": f"(2,{D},{SNH},{SFFN})", "ctc_upsample_factor": 25, "unit_vocab_size": 1000,
    }
    with open(os.path.join(model, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    tok = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "llama3_1")
    for fn in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(tok, fn), os.path.join(model, fn))

    from whisper.model import ModelDimensions, Whisper
    dims = ModelDimensions(n_mels=128, n_audio_ctx=1500, n_audio_state=1280, n_audio_head=20, n_audio_layer=4,
                           n_vocab=51866, n_text_ctx=448, n_text_state=1280, n_text_head=20, n_text_layer=1)
    w = Whisper(dims)
    wsd = {k: v.half() for k, v in w.state_dict().items() if k.startswith("encoder.")}
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": wsd}, os.path.join(model, cfg["speech_encoder"]))

    if "--no-vocoder" in sys.argv:
        print("wrote", out, "(no vocoder)")
        return
    voc = os.path.join(out, "vocoder")
    os.makedirs(voc, exist_ok=True)
    sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
    import ref_vocoder  # noqa: E402
    ref_vocoder.generate_full(voc)  # the published config, random weights
    print("wrote", out)


if __name__ == "__main__":
    main(sys.argv[1])
