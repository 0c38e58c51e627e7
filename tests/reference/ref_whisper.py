"""Whisper encoder + speech adaptor fixtures, built from openai-whisper itself.

Writes, under tests/fixtures/whisper/:
- tiny/tiny.pt           openai layout (`dims` + `model_state_dict`, encoder AND decoder keys), f32
  tiny/io.safetensors    mel input [80, 100] (random), expected encoder output
- tiny_hf/model.safetensors + config.json
                         the same weights in the HF transformers layout (`model.encoder.*`),
                         checked here against transformers' own WhisperEncoder
- v3layers/encoder.pt    large-v3's structure (128 mels, 1500 positions, head width 64,
                         4 blocks) at width 128, stored in fp16 as the published .pt is
  v3layers/omni/model.safetensors + config.json
                         the LLaMA-Omni layout: `model.speech_projector.linear1|linear2`
                         (k = 5) and a `model.speech_encoder.*` copy of the encoder
  v3layers/io.safetensors   whisper log-mel of the espeak clip (30 s padded), expected
                         encoder output [1500, 128] and adaptor output [300, 64]
"""
import dataclasses
import json
import os
import wave

import numpy as np
import torch
import torch.nn as nn
import whisper
from whisper.model import ModelDimensions, Whisper
from safetensors.torch import save_file as save_torch

import common


def randomize(model, seed):
    """Random weights everywhere, LayerNorm gains and all biases included, so a
    swapped or ignored parameter shows up in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                base = 1.0 if ("ln" in name and name.endswith("weight")) else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def openai_to_hf(sd):
    """openai-whisper encoder keys -> HF transformers keys (prefix model.encoder.)."""
    out = {}
    for k, v in sd.items():
        if not k.startswith("encoder."):
            continue
        k = k[len("encoder."):]
        k = (k.replace("positional_embedding", "embed_positions.weight")
              .replace("blocks.", "layers.")
              .replace("attn.query", "self_attn.q_proj")
              .replace("attn.key", "self_attn.k_proj")
              .replace("attn.value", "self_attn.v_proj")
              .replace("attn.out", "self_attn.out_proj")
              .replace("attn_ln", "self_attn_layer_norm")
              .replace("mlp.0", "fc1")
              .replace("mlp.2", "fc2")
              .replace("mlp_ln", "final_layer_norm")
              .replace("ln_post", "layer_norm"))
        out["model.encoder." + k] = v
    return out


def save_pt(path, dims, model, dtype):
    sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": sd}, path)


def read_wav_whisper_style(path):
    """Mono int16 WAV -> float32 / 32768, as whisper.load_audio gives."""
    with wave.open(path, "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0


def gen_tiny():
    common.seed(1)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=50, n_audio_state=64, n_audio_head=4, n_audio_layer=2,
                           n_vocab=100, n_text_ctx=16, n_text_state=64, n_text_head=4, n_text_layer=1)
    model = Whisper(dims)
    randomize(model, 11)
    model.eval()
    mel = torch.randn(1, 80, 100)
    with torch.no_grad():
        out = model.encoder(mel)[0]
    save_pt(common.out_path("whisper", "tiny", "tiny.pt"), dims, model, torch.float32)
    common.save_arrays(common.out_path("whisper", "tiny", "io.safetensors"), {"mel": mel[0], "encoder_out": out})

    # The same weights in the HF layout, checked against transformers' encoder.
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder as HfEncoder
    cfg = WhisperConfig(num_mel_bins=80, d_model=64, encoder_layers=2, encoder_attention_heads=4,
                        encoder_ffn_dim=256, max_source_positions=50, decoder_layers=1,
                        decoder_attention_heads=4, decoder_ffn_dim=256, vocab_size=100,
                        max_target_positions=16)
    hf_sd = openai_to_hf(model.state_dict())
    hf = HfEncoder(cfg).eval()
    missing, unexpected = hf.load_state_dict({k[len("model.encoder."):]: v for k, v in hf_sd.items()}, strict=True)
    with torch.no_grad():
        hf_out = hf(mel).last_hidden_state[0]
    err = (hf_out - out).abs().max().item()
    assert err < 1e-5, f"HF layout check failed: {err}"
    d = common.out_path("whisper", "tiny_hf", "model.safetensors")
    save_torch({k: v.contiguous() for k, v in hf_sd.items()}, d)
    cfg_d = cfg.to_dict()
    with open(os.path.join(os.path.dirname(d), "config.json"), "w") as f:
        json.dump({k: cfg_d[k] for k in ["model_type", "num_mel_bins", "d_model", "encoder_layers",
                                         "encoder_attention_heads", "encoder_ffn_dim",
                                         "max_source_positions", "vocab_size"]}, f, indent=2)


class EncoderProjectorConcat(nn.Module):
    """LLaMA-Omni's speech adaptor, restated from
    omni_speech/model/speech_projector/speech_projector.py (same module names)."""

    def __init__(self, k, encoder_dim, llm_dim, hidden=2048):
        super().__init__()
        self.k = k
        self.linear1 = nn.Linear(encoder_dim * k, hidden)
        self.relu = nn.ReLU()
        self.linear2 = nn.Linear(hidden, llm_dim)

    def forward(self, x):
        batch_size, seq_len, dim = x.size()
        num_frames_to_discard = seq_len % self.k
        if num_frames_to_discard > 0:
            x = x[:, :-num_frames_to_discard, :]
        seq_len = x.size(1)
        x = x.contiguous().view(batch_size, seq_len // self.k, dim * self.k)
        return self.linear2(self.relu(self.linear1(x)))


def gen_v3layers():
    common.seed(2)
    dims = ModelDimensions(n_mels=128, n_audio_ctx=1500, n_audio_state=128, n_audio_head=2, n_audio_layer=4,
                           n_vocab=100, n_text_ctx=16, n_text_state=128, n_text_head=2, n_text_layer=1)
    model = Whisper(dims)
    randomize(model, 22)
    # Stored in fp16 like the published large-v3.pt; the reference output is computed
    # in f32 from exactly those fp16 values.
    model = model.half().float().eval()
    wav = read_wav_whisper_style(os.path.join(common.FIXTURES, "speech", "question.wav"))
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(wav)), n_mels=128)
    with torch.no_grad():
        enc = model.encoder(mel[None])
    save_pt(common.out_path("whisper", "v3layers", "encoder.pt"), dims, model, torch.float16)

    proj = EncoderProjectorConcat(5, 128, 64, hidden=96)
    randomize(proj, 33)
    proj = proj.half().float().eval()
    with torch.no_grad():
        ad = proj(enc)
        # The remainder rule: 1499 frames drop 4 and give 299 outputs.
        ad_odd = proj(enc[:, :1499])
    omni = {"model.speech_projector." + k: v.half().contiguous() for k, v in proj.state_dict().items()}
    for k, v in model.state_dict().items():
        if k.startswith("encoder."):
            omni["model.speech_encoder." + k[len("encoder."):]] = v.half().contiguous()
    d = common.out_path("whisper", "v3layers", "omni", "model.safetensors")
    save_torch(omni, d, metadata={"format": "pt"})
    with open(os.path.join(os.path.dirname(d), "config.json"), "w") as f:
        json.dump({"model_type": "omni_speech2s_llama", "speech_encoder": "../encoder.pt",
                   "speech_encoder_type": "whisper", "speech_encoder_ds_rate": 5,
                   "speech_encoder_hidden_size": 128, "speech_projector_type": "linear",
                   "hidden_size": 64}, f, indent=2)
    common.save_arrays(common.out_path("whisper", "v3layers", "io.safetensors"),
                       {"mel": mel, "encoder_out": enc[0], "adaptor_out": ad[0], "adaptor_out_1499": ad_odd[0]})


def generate():
    gen_tiny()
    gen_v3layers()


if __name__ == "__main__":
    generate()
