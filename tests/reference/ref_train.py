"""Training losses and gradients of the tiny Omni model (tests/fixtures/omni_tiny),
for the two training stages of LLaMA-Omni.

tests/fixtures/train_tiny/golden.safetensors holds a batch of 3 examples of
different lengths (inputs), the two losses and the gradient of every trainable
tensor, named by its published key, in PyTorch layout ([out, in] for linears):

  stage 1 (adaptor + LLM, Whisper encoder frozen: its outputs are inputs here):
    response-only cross-entropy of `LlamaForCausalLM` (transformers 4.43.4) on the
    embeddings `prepare_inputs_labels_for_speech_and_text` builds (right padding,
    speech block spliced at -200 with IGNORE_INDEX labels), labels masked as
    `preprocess_llama_3` masks them. Gradients: `s1.grad.<key>`.
  AdamW: `torch.optim.AdamW` (lr 1e-3, weight decay 0.1), two steps with given
    gradients on three speech-decoder tensors: `adamw.g1.*`, `adamw.g2.*`, `adamw.after.*`.
  stage 2 (speech decoder only, LLM frozen): `SpeechGeneratorCTC.forward`
    restated below (training path: the hidden states at the answer's label
    positions, upsampled to max(λ·n, units) by `_uniform_assignment`, CTC with
    blank = unit_vocab_size, reduction sum, zero_infinity, / number of target
    units). Example 2's target is infeasible (too many repeats for its frames):
    zero_infinity makes its loss and gradient 0. Gradients: `s2.grad.<key>`.

References: omni_speech/model/language_model/omni_speech2s_llama.py (forward),
omni_speech/model/omni_speech_arch.py (encode_speech,
prepare_inputs_labels_for_speech_and_text), omni_speech/datasets/preprocess.py
(preprocess_llama_3), omni_speech/model/speech_generator/speech_generator.py
(SpeechGeneratorCTC.upsample/forward). The decoder layers are transformers'
`LlamaDecoderLayer` with sdpa and the 4-d causal + key-padding mask that the
reference's flash_attention_2 applies from its 2-d attention mask.
"""
import copy
import glob
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaDecoderLayer

import common
from ref_whisper import EncoderProjectorConcat

IGNORE_INDEX = -100
SPEECH_TOKEN_INDEX = -200
SRC = os.path.join(common.FIXTURES, "omni_tiny")


def load_tiny():
    with open(os.path.join(SRC, "config.json")) as f:
        cfg = json.load(f)
    sd = {}
    for p in sorted(glob.glob(os.path.join(SRC, "model-*.safetensors"))):
        sd.update({k: v.float() for k, v in load_file(p).items()})
    hf = LlamaConfig(**{k: v for k, v in cfg.items() if k not in ("architectures",)})
    hf._attn_implementation = "sdpa"
    llm = LlamaForCausalLM(hf)
    llm.load_state_dict({k: v for k, v in sd.items() if k.startswith("model.layers") or k in
                         ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight")})
    hidden = sd["model.speech_projector.linear1.weight"].shape[0]
    proj = EncoderProjectorConcat(cfg["speech_encoder_ds_rate"], cfg["speech_encoder_hidden_size"],
                                  cfg["hidden_size"], hidden)
    proj.load_state_dict({k[len("model.speech_projector."):]: v for k, v in sd.items()
                          if k.startswith("model.speech_projector.")})
    gen = SpeechGeneratorCTC(hf)
    gen.load_state_dict({k[len("speech_generator."):]: v for k, v in sd.items() if k.startswith("speech_generator.")})
    return cfg, llm.float(), proj.float(), gen.float()


def lengths_to_padding_mask(lens):
    bsz, max_lens = lens.size(0), torch.max(lens).item()
    mask = torch.arange(max_lens).view(1, max_lens)
    return mask.expand(bsz, -1) >= lens.view(bsz, 1).expand(-1, max_lens)


def uniform_assignment(src_lens, tgt_lens):
    tgt_indices = torch.arange(torch.max(tgt_lens)).expand(len(tgt_lens), -1)
    ratio = tgt_lens / src_lens
    return (tgt_indices / ratio.view(-1, 1)).long()


def causal_padding_mask(valid, dtype=torch.float32):
    """[B, T] bool valid keys -> 4-d additive mask: causal and no padded keys."""
    b, t = valid.shape
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    ok = causal[None] & valid[:, None, :]
    m = torch.zeros(b, 1, t, t, dtype=dtype)
    return m.masked_fill(~ok[:, None], torch.finfo(dtype).min)


class SpeechGeneratorCTC(nn.Module):
    """Restatement of the reference `SpeechGeneratorCTC` (training path)."""

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

    def upsample(self, reps, tgt_units):
        src_lens = torch.LongTensor([len(r) for r in reps])
        up_lens = src_lens * self.upsample_factor
        tgt_lens = tgt_units.ne(IGNORE_INDEX).long().sum(dim=-1)
        up_lens = torch.max(up_lens, tgt_lens)
        reps = torch.nn.utils.rnn.pad_sequence(reps, batch_first=True)
        padding_mask = lengths_to_padding_mask(up_lens)
        mapped = uniform_assignment(src_lens, up_lens).masked_fill(padding_mask, 0)
        copied = torch.gather(reps, 1, mapped.unsqueeze(-1).expand(*mapped.size(), reps.size(-1)))
        copied = copied.masked_fill(padding_mask.unsqueeze(-1), 0)
        pos = torch.arange(0, max(up_lens)).unsqueeze(0).expand(len(reps), -1)
        return copied, ~padding_mask, pos

    def forward(self, tgt_reps, labels, tgt_units, ctc_dtype=torch.float32):
        reps = [r[l != IGNORE_INDEX] for r, l in zip(tgt_reps, labels)]
        h, attention_mask, pos = self.upsample(reps, tgt_units)
        h = self.input_proj(h)
        mask4 = causal_padding_mask(attention_mask, h.dtype)
        for layer in self.layers:
            h = layer(h, attention_mask=mask4, position_ids=pos)[0]
        lprobs = F.log_softmax(self.output_proj(h).float(), dim=-1, dtype=torch.float32).to(ctc_dtype)
        ctc_lens = attention_mask.long().sum(dim=-1)
        tgt_lens = tgt_units.ne(IGNORE_INDEX).long().sum(dim=-1)
        tgt_flat = tgt_units.masked_select(~lengths_to_padding_mask(tgt_lens))
        per = F.ctc_loss(lprobs.transpose(0, 1), tgt_flat, ctc_lens, tgt_lens, reduction="none",
                         zero_infinity=True, blank=self.unit_vocab_size)
        loss = F.ctc_loss(lprobs.transpose(0, 1), tgt_flat, ctc_lens, tgt_lens, reduction="sum",
                          zero_infinity=True, blank=self.unit_vocab_size)
        return loss / tgt_lens.sum().item(), per, ctc_lens


def preprocess_labels(prompt, answer):
    """`preprocess_llama_3` on ids already tokenized: the instruction part
    (everything up to and including the assistant header) is IGNORE_INDEX."""
    ids = prompt + answer
    target = list(ids)
    target[0] = IGNORE_INDEX
    instruction_len = len(prompt) - 1
    for i in range(1, 1 + instruction_len):
        target[i] = IGNORE_INDEX
    return ids, target


def prepare(llm, proj, enc_outs, speech_lens, ids_list, labels_list):
    """`encode_speech` (encoder frozen: `enc_outs` are its outputs, padded) +
    `prepare_inputs_labels_for_speech_and_text`, right padding."""
    feats = proj(enc_outs)
    feats = [feats[i, :speech_lens[i]] for i in range(len(ids_list))]
    emb = llm.get_input_embeddings()
    embeds, labels = [], []
    for b, (ids, lab) in enumerate(zip(ids_list, labels_list)):
        sp = ids.index(SPEECH_TOKEN_INDEX)
        e = torch.cat([emb(torch.tensor(ids[:sp])), feats[b], emb(torch.tensor(ids[sp + 1:]))])
        l = torch.tensor(lab[:sp] + [IGNORE_INDEX] * speech_lens[b] + lab[sp + 1:])
        embeds.append(e)
        labels.append(l)
    n = max(len(e) for e in embeds)
    x = torch.zeros(len(embeds), n, embeds[0].shape[1])
    lab = torch.full((len(embeds), n), IGNORE_INDEX, dtype=torch.long)
    att = torch.zeros(len(embeds), n, dtype=torch.long)
    for b, (e, l) in enumerate(zip(embeds, labels)):
        x[b, :len(e)] = e
        lab[b, :len(l)] = l
        att[b, :len(e)] = 1
    return x, lab, att


def grads(prefix, named):
    return {f"{prefix}{k}": p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for k, p in named}


def generate():
    common.seed(140)
    cfg, llm, proj, gen = load_tiny()
    k, enc_dim, vocab = cfg["speech_encoder_ds_rate"], cfg["speech_encoder_hidden_size"], cfg["vocab_size"]
    bos = cfg["bos_token_id"]
    # Three examples: encoder frames (k = 5: 22 drops 2), prompt lengths, answer lengths.
    frames = [22, 30, 15]
    prompt_lens = [(3, 4), (5, 2), (2, 6)]   # tokens before / after the speech placeholder
    answer_lens = [5, 3, 2]
    enc_outs = torch.zeros(3, max(frames), enc_dim)
    ids_list, labels_list, speech_lens = [], [], []
    for b in range(3):
        enc_outs[b, :frames[b]] = torch.randn(frames[b], enc_dim)
        before = [bos, bos] + torch.randint(0, vocab, (prompt_lens[b][0],)).tolist()
        after = torch.randint(0, vocab, (prompt_lens[b][1],)).tolist()
        answer = torch.randint(0, vocab, (answer_lens[b],)).tolist()
        ids, lab = preprocess_labels(before + [SPEECH_TOKEN_INDEX] + after, answer)
        ids_list.append(ids)
        labels_list.append(lab)
        # encode_speech: Whisper halves the mel length; here the encoder frames are given.
        speech_lens.append(frames[b] // k)
    # Units: 0 has repeats (feasible: 125 frames), 1 needs more frames than 3·25 (up_len = 80,
    # a non-integer ratio), 2 has 50 frames but needs 50 + 49 (all equal): infeasible.
    units = [
        torch.randint(0, 1000, (40,)).tolist()[:35] + [7, 7, 7, 9, 9],
        torch.randint(0, 1000, (80,)).tolist(),
        [5] * 50,
    ]
    tgt = torch.full((3, max(len(u) for u in units)), IGNORE_INDEX, dtype=torch.long)
    for b, u in enumerate(units):
        tgt[b, :len(u)] = torch.tensor(u)

    # Stage 1: CE through adaptor + LLM.
    x, lab, att = prepare(llm, proj, enc_outs, speech_lens, ids_list, labels_list)
    out = llm(inputs_embeds=x, attention_mask=att, labels=lab, output_hidden_states=True)
    out.loss.backward()
    s1 = grads("s1.grad.", [(f"model.speech_projector.{n}", p) for n, p in proj.named_parameters()]
               + list(llm.named_parameters()))
    # Stage 2: CTC through the speech decoder, LLM frozen.
    with torch.no_grad():
        x, lab, att = prepare(llm, proj, enc_outs, speech_lens, ids_list, labels_list)
        hidden = llm(inputs_embeds=x, attention_mask=att, output_hidden_states=True).hidden_states[-1]
    # In float64, CTC included: the reference casts the log-probs to f32 for
    # F.ctc_loss, whose gradients are then ~2e-4 (relative) off the exact ones with
    # these loss magnitudes (~700 nats per example); f64 gives the exact values of
    # the same formula to check against (omni runs its CTC in f64 where it can).
    gen64 = copy.deepcopy(gen).double()
    ctc, per, ctc_lens = gen64(hidden.double(), lab, tgt, torch.float64)
    ctc.backward()
    s2 = grads("s2.grad.", [(f"speech_generator.{n}", p) for n, p in gen64.named_parameters()])
    print(f"train_tiny: lm loss {out.loss.item():.6f}, ctc loss {ctc.item():.6f}, per-example {per.tolist()}, "
          f"frames {ctc_lens.tolist()}")
    assert per[2].item() == 0.0 and per[0].item() > 0 and per[1].item() > 0

    # torch.optim.AdamW, two steps, on three tensors of the speech decoder (2-d linear
    # weight, its bias, a norm weight); step 1 uses the stage-2 gradients, step 2 other ones.
    names = ["output_proj.weight", "output_proj.bias", "layers.1.input_layernorm.weight"]
    params = dict(gen.named_parameters())
    g1 = {n: s2[f"s2.grad.speech_generator.{n}"].float() for n in names}
    g2 = {n: -0.5 * g1[n] + 1e-3 * torch.randn_like(g1[n]) for n in names}
    ps = [params[n] for n in names]
    opt = torch.optim.AdamW(ps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    for g in (g1, g2):
        for n in names:
            params[n].grad = g[n].clone()
        opt.step()
    adamw = {f"adamw.g1.speech_generator.{n}": g1[n] for n in names}
    adamw.update({f"adamw.g2.speech_generator.{n}": g2[n] for n in names})
    adamw.update({f"adamw.after.speech_generator.{n}": params[n].detach().clone() for n in names})

    arrays = {
        "enc_outs": enc_outs, "speech_lens": torch.tensor(speech_lens), "frames": torch.tensor(frames),
        "units": tgt, "lm_loss": out.loss.detach().reshape(1), "ctc_loss": ctc.detach().reshape(1),
        "ctc_per_example": per.detach(), "ctc_frames": ctc_lens, "labels_padded": lab, "hidden": hidden,
    }
    for b in range(3):
        arrays[f"ids.{b}"] = torch.tensor(ids_list[b])
        arrays[f"labels.{b}"] = torch.tensor(labels_list[b])
    arrays.update(s1)
    arrays.update(s2)
    arrays.update(adamw)
    common.save_arrays(common.out_path("train_tiny", "golden.safetensors"), arrays)


if __name__ == "__main__":
    generate()
