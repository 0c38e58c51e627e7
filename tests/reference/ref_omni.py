"""The tiny LLaMA-Omni fixture model: every part, random weights (fixed seeds),
written in the published layouts, with the reference's outputs.

tests/fixtures/omni_tiny/
  config.json            model_type omni_speech2s_llama, HF Llama fields (GQA 4/2,
                         llama3 rope_scaling), speech fields, ctc_decoder_config
  model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json
                         fp16, keys model.embed_tokens, model.layers.N.*, model.norm,
                         lm_head, model.speech_projector.*, model.speech_encoder.*
                         (openai names), speech_generator.*
  speech_encoder.pt      openai-whisper checkpoint of the same encoder (config.speech_encoder)
  tokenizer.json, tokenizer_config.json   the tiny Llama-3-style tokenizer
  golden.safetensors     reference values (see `generate()`)
tests/fixtures/omni_tiny_bf16/   the LLM alone, one bf16 model.safetensors

References: openai-whisper `AudioEncoder`; the adaptor restated from
omni_speech/model/speech_projector/speech_projector.py; transformers 4.43.4
`LlamaForCausalLM` (+ `generate`); the speech decoder restated from
omni_speech/model/speech_generator/speech_generator.py on transformers'
`LlamaDecoderLayer`. The reference hard-codes flash_attention_2 with an all-ones
mask, i.e. causal attention; here the layers run with sdpa and no mask, which
transformers 4.43 also makes causal.
"""
import copy
import json
import os
import shutil

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import whisper
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.models.llama.modeling_llama import LlamaDecoderLayer
from whisper.model import ModelDimensions, Whisper

import common
from ref_whisper import EncoderProjectorConcat, randomize, read_wav_whisper_style, save_pt

OUT = "omni_tiny"
VOCAB = 512
UNIT_GAIN = 1.0
EMBED_GAIN = 4.0  # token embeddings large enough to steer a random LLM
SPEECH_TOKEN_INDEX = -200


def round_params_fp16(module):
    """Rounds parameters (not buffers) to fp16, as stored. `module.half().float()`
    would also round the rotary `inv_freq` buffer, which is recomputed in f32 at load."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.half().float())
    return module


def build_llm(hf_cfg, seed):
    torch.manual_seed(seed)
    llm = LlamaForCausalLM(hf_cfg)
    with torch.no_grad():
        for n, p in llm.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) * (EMBED_GAIN if "embed" in n else 1.0) / p.shape[1] ** 0.5)
    return round_params_fp16(llm).eval()


def question_embeds(llm, wm, proj):
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(common.FIXTURES, "tokenizer", "tiny", "tokenizer.json"),
                                  bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    prompt_ids = tokenizer_speech_token(tok, llama3_prompt())
    wav = read_wav_whisper_style(os.path.join(common.FIXTURES, "speech", "question.wav"))
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(wav)), n_mels=128)
    with torch.no_grad():
        enc = wm.encoder(mel[None])
        speech = proj(enc)[0]                                    # [300, 64]
        sp = prompt_ids.index(SPEECH_TOKEN_INDEX)
        emb = llm.get_input_embeddings()
        before = emb(torch.tensor(prompt_ids[:sp]))
        after = emb(torch.tensor(prompt_ids[sp + 1:]))
        embeds = torch.cat([before, speech, after])[None]
    return prompt_ids, mel, enc, speech, embeds


def pick_llm(hf_cfg, wm, proj):
    """A random LLM whose greedy answer is varied (random models often lock onto
    one token): the first seed from 53 giving 32 tokens with >= 12 distinct ones."""
    eos = hf_cfg.eos_token_id
    for seed in range(53, 253):
        llm = build_llm(hf_cfg, seed)
        embeds = question_embeds(llm, wm, proj)[-1]
        with torch.no_grad():
            out = llm.generate(inputs_embeds=embeds, max_new_tokens=32, do_sample=False, num_beams=1,
                               eos_token_id=eos, pad_token_id=0)
        toks = out[0].tolist()
        if len(toks) == 32 and len(set(toks)) >= 12:
            print(f"omni_tiny: LLM seed {seed}", flush=True)
            return llm
    raise RuntimeError("no varied LLM seed found")


def tiny_special_ids():
    path = os.path.join(common.FIXTURES, "tokenizer", "tiny", "tokenizer.json")
    with open(path) as f:
        tok = json.load(f)
    ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
    return ids


def llm_config_dict(ids):
    return {
        "architectures": ["OmniSpeech2SLlamaForCausalLM"],
        "model_type": "omni_speech2s_llama",
        "hidden_size": 64,
        "intermediate_size": 160,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": VOCAB,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "max_position_embeddings": 131072,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "bos_token_id": ids["<|begin_of_text|>"],
        "eos_token_id": [ids["<|end_of_text|>"], ids["<|eom_id|>"], ids["<|eot_id|>"]],
        "pad_token_id": None,
        # LLaMA-Omni fields
        "speech_encoder": "speech_encoder.pt",
        "speech_encoder_type": "whisper",
        "speech_encoder_ds_rate": 5,
        "speech_encoder_hidden_size": 64,
        "speech_projector_type": "linear",
        "speech_generator_type": "ctc",
        "ctc_decoder_config": "(2,64,4,160)",
        "ctc_upsample_factor": 25,
        "ctc_loss_weight": 1.0,
        "unit_vocab_size": 1000,
        "tokenizer_model_max_length": 2048,
    }


class SpeechGeneratorCTC(nn.Module):
    """Restatement of the reference SpeechGeneratorCTC (inference path)."""

    def __init__(self, config):
        super().__init__()
        n_layers, n_dims, n_heads, n_inter = map(int, config.ctc_decoder_config[1:-1].split(","))
        c = copy.deepcopy(config)
        c.hidden_size, c.num_hidden_layers = n_dims, n_layers
        c.num_attention_heads = c.num_key_value_heads = n_heads
        c.intermediate_size = n_inter
        c._attn_implementation = "sdpa"
        self.upsample_factor = config.ctc_upsample_factor
        self.input_proj = nn.Linear(config.hidden_size, n_dims)
        self.layers = nn.ModuleList([LlamaDecoderLayer(c, i) for i in range(n_layers)])
        self.unit_vocab_size = config.unit_vocab_size
        self.output_proj = nn.Linear(n_dims, config.unit_vocab_size + 1)

    def predict(self, reps):  # reps [N, hidden]
        up_len = reps.shape[0] * self.upsample_factor
        idx = (torch.arange(up_len) / (up_len / reps.shape[0])).long()  # _uniform_assignment
        h = reps[idx][None]
        pos = torch.arange(up_len)[None]
        h = self.input_proj(h)
        for layer in self.layers:
            h = layer(h, attention_mask=None, position_ids=pos)[0]
        logits = self.output_proj(h)
        return F.log_softmax(logits.float(), dim=-1).argmax(-1)[0], logits[0]


def ctc_postprocess(pred, blank):
    out, prev = [], None
    for p in pred.tolist():
        if p != prev:
            out.append(p)
        prev = p
    return [p for p in out if p != blank]


def tokenizer_speech_token(tokenizer, prompt):
    """Restatement of omni_speech/datasets/preprocess.py::tokenizer_speech_token."""
    chunks = [tokenizer(c).input_ids for c in prompt.split("<speech>")]
    ids, offset = [], 0
    if len(chunks) > 0 and len(chunks[0]) > 0 and chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        ids.append(chunks[0][0])
    sep = [SPEECH_TOKEN_INDEX] * (offset + 1)
    inter = [x for sub in zip(chunks, [sep] * len(chunks)) for x in sub][:-1]
    for x in inter:
        ids.extend(x[offset:])
    return ids


SYSTEM = ("You are a helpful language and speech assistant. You are able to understand the speech "
          "content that the user provides, and assist the user with a variety of tasks using natural language.")
USER = "<speech>\nPlease directly answer the questions in the user's speech."


def llama3_prompt(system=SYSTEM, user=USER):
    return ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" + system + "<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n" + user.strip() + "<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n")


def generate():
    ids = tiny_special_ids()
    cfgd = llm_config_dict(ids)
    out_dir = os.path.join(common.FIXTURES, OUT)
    os.makedirs(out_dir, exist_ok=True)

    # --- speech encoder (large-v3 structure at width 64) + adaptor
    common.seed(5)
    dims = ModelDimensions(n_mels=128, n_audio_ctx=1500, n_audio_state=64, n_audio_head=1, n_audio_layer=2,
                           n_vocab=64, n_text_ctx=8, n_text_state=64, n_text_head=1, n_text_layer=1)
    wm = Whisper(dims)
    randomize(wm, 51)
    wm = wm.half().float().eval()
    save_pt(os.path.join(out_dir, "speech_encoder.pt"), dims, wm, torch.float16)
    proj = EncoderProjectorConcat(5, 64, 64, hidden=128)
    randomize(proj, 52)
    proj = proj.half().float().eval()

    # --- LLM
    hf_cfg = LlamaConfig(**{k: v for k, v in cfgd.items() if k not in ("architectures", "model_type")})
    hf_cfg.ctc_decoder_config = cfgd["ctc_decoder_config"]
    hf_cfg.ctc_upsample_factor = cfgd["ctc_upsample_factor"]
    hf_cfg.unit_vocab_size = cfgd["unit_vocab_size"]
    llm = pick_llm(hf_cfg, wm, proj)
    torch.manual_seed(54)
    gen = SpeechGeneratorCTC(hf_cfg)
    randomize(gen, 55)
    with torch.no_grad():
        for layer in gen.layers:  # RMSNorm gains near 1
            layer.input_layernorm.weight.add_(1.0)
            layer.post_attention_layernorm.weight.add_(1.0)
        gen.output_proj.bias[-1] += 0.3  # some blanks, as a trained CTC head emits
        gen.output_proj.weight.mul_(UNIT_GAIN)  # frame-to-frame variety: a few units per token
    gen = round_params_fp16(gen).eval()

    # --- shards in the published key layout
    sd = {}
    for k, v in llm.state_dict().items():
        sd[k] = v
    for k, v in proj.state_dict().items():
        sd["model.speech_projector." + k] = v
    for k, v in wm.state_dict().items():
        if k.startswith("encoder."):
            sd["model.speech_encoder." + k[len("encoder."):]] = v
    for k, v in gen.state_dict().items():
        if "rotary_emb" in k:
            continue
        sd["speech_generator." + k] = v
    sd = {k: v.half().contiguous() for k, v in sd.items()}
    keys = sorted(sd)
    shard1 = [k for k in keys if k.startswith("model.embed_tokens") or k.startswith("model.layers.0.")
              or k.startswith("model.speech_")]
    shard2 = [k for k in keys if k not in shard1]
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    weight_map = {}
    for name, ks in zip(names, [shard1, shard2]):
        save_file({k: sd[k] for k in ks}, os.path.join(out_dir, name), metadata={"format": "pt"})
        weight_map.update({k: name for k in ks})
    total = sum(v.numel() * 2 for v in sd.values())
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfgd, f, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": cfgd["bos_token_id"], "eos_token_id": cfgd["eos_token_id"],
                   "do_sample": True, "temperature": 0.6, "top_p": 0.9}, f, indent=2)
    for fn in ["tokenizer.json", "tokenizer_config.json"]:
        src = os.path.join(common.FIXTURES, "tokenizer", "tiny", fn)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(out_dir, fn))

    # bf16 single-file copy of the LLM
    bdir = os.path.join(common.FIXTURES, OUT + "_bf16")
    os.makedirs(bdir, exist_ok=True)
    save_file({k: v.bfloat16().contiguous() for k, v in llm.state_dict().items()},
              os.path.join(bdir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(bdir, "config.json"), "w") as f:
        json.dump({k: v for k, v in cfgd.items() if not k.startswith(("speech", "ctc", "unit"))} | {"model_type": "llama"}, f, indent=2)
    llm_bf = LlamaForCausalLM(hf_cfg)
    llm_bf.load_state_dict({k: v.bfloat16().float() for k, v in llm.state_dict().items()})
    llm_bf.eval()

    # --- the reference forward path on the espeak question
    prompt_ids, mel, enc, speech, embeds = question_embeds(llm, wm, proj)
    with torch.no_grad():
        full = llm(inputs_embeds=embeds, output_hidden_states=True)
        prefill_logits = full.logits[0]
        out = llm.generate(inputs_embeds=embeds, max_new_tokens=32, do_sample=False, num_beams=1,
                           output_hidden_states=True, return_dict_in_generate=True,
                           eos_token_id=cfgd["eos_token_id"], pad_token_id=0)
        tokens = out.sequences[0].tolist()
        hs = out.hidden_states
        reps = torch.cat([hs[0][-1][:, -1:, :]] + [hs[i][-1] for i in range(1, len(hs))], dim=1)[0]
        pred, ctc_logits = gen.predict(reps)
        units = ctc_postprocess(pred, cfgd["unit_vocab_size"])
        # units after the first 7 states only: prefix stability of the causal decoder
        pred7, _ = gen.predict(reps[:7])
        bf_logits = llm_bf(inputs_embeds=embeds.bfloat16().float()).logits[0, -4:]
    print(f"omni_tiny: prompt {len(prompt_ids)} ids -> {embeds.shape[1]} positions; "
          f"{len(tokens)} tokens; {len(units)} units", flush=True)
    common.save_arrays(os.path.join(out_dir, "golden.safetensors"), {
        "prompt_ids": np.array(prompt_ids, dtype=np.int64),
        "mel": mel,
        "encoder_out": enc[0],
        "speech_embeds": speech,
        "prefill_logits_last16": prefill_logits[-16:],
        "prefill_hidden_last": full.hidden_states[-1][0, -1],
        "greedy_tokens": np.array(tokens, dtype=np.int64),
        "speech_decoder_inputs": reps,
        "ctc_pred": pred.numpy().astype(np.int64),
        "ctc_logits_first50": ctc_logits[:50],
        "units": np.array(units, dtype=np.int64),
        "ctc_pred_7": pred7.numpy().astype(np.int64),
        "bf16_logits_last4": bf_logits,
    })
