"""One training step of each stage, PyTorch side of scripts/bench_train.sh.

    python scripts/bench_train_torch.py make DIR   # random model + batch (the shape below)
    python scripts/bench_train_torch.py run DIR    # times the steps, prints JSON lines

Shape (stated in benches/RESULTS.md): the mid-size model's widths
(scripts/make_midsize_model.py: Llama-3.2-1B's 2048 wide, 32/8 heads, FFN 8192,
vocab 128256; adaptor k = 5, 6400 -> 2048 -> 2048; speech decoder 2 x 2048, 16
heads, FFN 5504) with LAYERS of the LLM's 16 layers: full fine-tuning of the
16-layer model needs ~25 GB (f32 weights + grads + two AdamW moments) on each
side, more than this machine has. The batch: 2 examples, 300 speech positions
(a 30 s question), PROMPT + ANSWER tokens, UNITS units per answer; the Whisper
encoder is frozen and its output is an input (random), as in tests/training.rs.

Step = forward + backward of the stage's loss (tests/reference/ref_train.py:
stage 1 the response-only CE of `LlamaForCausalLM` through the adaptor, stage 2
`SpeechGeneratorCTC.forward` on the frozen LLM's hidden states), global-norm
clipping at 1, `torch.optim.AdamW` step, zero_grad. f32, BENCH_THREADS threads.
"""
import glob
import json
import os
import statistics
import sys
import time

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))

LAYERS = int(os.environ.get("OMNI_TRAIN_BENCH_LAYERS", "2"))
PROMPT, ANSWER, UNITS, FRAMES, BATCH = 40, 60, 150, 1500, 2


def config():
    return {
        "architectures": ["OmniSpeech2SLlamaForCausalLM"], "model_type": "omni_speech2s_llama",
        "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": LAYERS,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "max_position_embeddings": 131072, "hidden_act": "silu", "attention_bias": False,
        "mlp_bias": False, "tie_word_embeddings": False, "torch_dtype": "float32",
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
        "speech_encoder_type": "whisper", "speech_encoder_ds_rate": 5,
        "speech_encoder_hidden_size": 1280, "speech_projector_type": "linear",
        "speech_generator_type": "ctc", "ctc_decoder_config": "(2,2048,16,5504)",
        "ctc_upsample_factor": 25, "ctc_loss_weight": 1.0, "unit_vocab_size": 1000,
    }


def make(out):
    torch.manual_seed(0)
    os.makedirs(os.path.join(out, "model"), exist_ok=True)
    cfg = config()
    with open(os.path.join(out, "model", "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    llm, proj, gen = build(cfg)
    sd = {k: v.contiguous() for k, v in llm.state_dict().items()}
    sd.update({f"model.speech_projector.{k}": v.contiguous() for k, v in proj.state_dict().items()})
    sd.update({f"speech_generator.{k}": v.contiguous() for k, v in gen.state_dict().items()})
    save_file(sd, os.path.join(out, "model", "model.safetensors"), metadata={"format": "pt"})
    b = {"enc_outs": torch.randn(BATCH, FRAMES, 1280)}
    for i in range(BATCH):
        prompt = [128000, 128000] + torch.randint(0, 128000, (PROMPT - 3,)).tolist()
        ids = prompt[:10] + [-200] + prompt[10:] + torch.randint(0, 128000, (ANSWER,)).tolist()
        lab = [-100] * PROMPT + ids[PROMPT:]
        b[f"ids.{i}"] = torch.tensor(ids)
        b[f"labels.{i}"] = torch.tensor(lab)
        b[f"units.{i}"] = torch.randint(0, 1000, (UNITS,))
    save_file(b, os.path.join(out, "batch.safetensors"))
    print(f"wrote {out}: {sum(v.numel() for v in sd.values()) / 1e6:.0f} M parameters")


def build(cfg):
    from transformers import LlamaConfig, LlamaForCausalLM
    from ref_train import SpeechGeneratorCTC
    from ref_whisper import EncoderProjectorConcat
    hf = LlamaConfig(**{k: v for k, v in cfg.items() if k != "architectures"})
    hf._attn_implementation = "sdpa"
    llm = LlamaForCausalLM(hf).float()
    proj = EncoderProjectorConcat(5, 1280, cfg["hidden_size"], 2048).float()
    gen = SpeechGeneratorCTC(hf).float()
    return llm, proj, gen


def load(out):
    with open(os.path.join(out, "model", "config.json")) as f:
        cfg = json.load(f)
    llm, proj, gen = build(cfg)
    sd = load_file(os.path.join(out, "model", "model.safetensors"))
    llm.load_state_dict({k: v for k, v in sd.items() if k.startswith("model.layers") or k in
                         ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight")})
    proj.load_state_dict({k[len("model.speech_projector."):]: v for k, v in sd.items()
                          if k.startswith("model.speech_projector.")})
    gen.load_state_dict({k[len("speech_generator."):]: v for k, v in sd.items()
                         if k.startswith("speech_generator.")})
    return cfg, llm, proj, gen


def run(out):
    from ref_train import IGNORE_INDEX, prepare
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    runs = int(os.environ.get("OMNI_TRAIN_BENCH_RUNS", "3"))
    cfg, llm, proj, gen = load(out)
    b = load_file(os.path.join(out, "batch.safetensors"))
    ids = [b[f"ids.{i}"].tolist() for i in range(BATCH)]
    labels = [b[f"labels.{i}"].tolist() for i in range(BATCH)]
    enc = b["enc_outs"]
    speech_lens = [FRAMES // 5] * BATCH
    u = [b[f"units.{i}"] for i in range(BATCH)]
    tgt = torch.full((BATCH, max(len(x) for x in u)), IGNORE_INDEX, dtype=torch.long)
    for i, x in enumerate(u):
        tgt[i, :len(x)] = x

    def stage1_params():
        return list(proj.parameters()) + list(llm.parameters())

    results = []
    stages = [int(x) for x in os.environ.get("OMNI_TRAIN_BENCH_STAGES", "1,2").split(",") if x]
    for stage in stages:
        # Each stage starts from the weights on disk, as the omni side does (stage 2
        # after stage 1's steps would read hidden states of an updated LLM).
        cfg, llm, proj, gen = load(out)
        params = stage1_params() if stage == 1 else list(gen.parameters())
        opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
        times, losses = [], []
        for r in range(runs + 1):
            t0 = time.perf_counter()
            if stage == 1:
                x, lab, att = prepare(llm, proj, enc, speech_lens, ids, labels)
                loss = llm(inputs_embeds=x, attention_mask=att, labels=lab).loss
            else:
                with torch.no_grad():
                    x, lab, att = prepare(llm, proj, enc, speech_lens, ids, labels)
                    hidden = llm(inputs_embeds=x, attention_mask=att,
                                 output_hidden_states=True).hidden_states[-1]
                loss = gen(hidden, lab, tgt)[0]
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            dt = time.perf_counter() - t0
            losses.append(loss.item())
            if r > 0:  # the first is a warm-up
                times.append(dt)
        line = {"side": "torch", "stage": stage, "runs": runs, "median_s": statistics.median(times),
                "times_s": times, "first_loss": losses[0], "layers": LAYERS,
                "torch": torch.__version__, "threads": torch.get_num_threads()}
        print(json.dumps(line), flush=True)
        results.append(line)
    return results


if __name__ == "__main__":
    {"make": make, "run": run}[sys.argv[1]](sys.argv[2])
