"""Unit HiFi-GAN vocoder fixtures, built from fairseq's own CodeGenerator.

Uses the real `fairseq.models.text_to_speech.codehifigan.CodeGenerator` (fairseq-fixed
0.12.3.1 on PyPI; install with `pip download --no-deps fairseq-fixed==0.12.3.1` then
`pip install --no-deps --no-build-isolation fairseq_fixed-0.12.3.1.tar.gz`, after
`pip install cython hydra-core==1.3.2 omegaconf==2.3.0 bitarray sacrebleu scikit-learn`).
It imports as is on torch 2.15 / numpy 2: no stub or restatement is needed.

The generator has the published structure (upsample rates [5,4,4,2,2], kernels
[11,8,8,4,4], ResBlock1 with kernels [3,7,11] and dilations [1,3,5], 1000 units, a
duration predictor) at a small width (upsample_initial_channel 32, embedding 16,
duration predictor hidden 16), random weights with a fixed seed.

Writes, under tests/fixtures/vocoder/:
- tiny/g_00500000        torch pickle {"generator": state_dict} with weight-norm parameters
                         (`weight_g`, `weight_v`), as the published checkpoint
  tiny/config.json       the published config format (fields of the LJ vocoder's config.json)
- tiny_folded/g_00500000 the same generator after `remove_weight_norm()` (plain `weight`
                         keys), + config.json: a checkpoint already folded by a user
- tiny/io.safetensors
    units          [30]   unit ids (repeats included, the CTC collapse does not dedup
                          non-adjacent repeats)
    durations      [30]   fairseq's predicted durations, `clamp(round(exp(d) - 1), min=1)`
    log_dur        [30]   the duration predictor's raw output
    wav            [N]    `gen(code=units, dur_prediction=True)` (eval mode, weight norm
                          removed, as `CodeHiFiGANVocoder.__init__` does)
    chunk_sizes    [3]    12, 12, 6: the reference's streaming split of `units`
    wav_chunks     [M]    the three chunks vocoded on their own and concatenated, as
                          LLaMA-Omni's gradio_web_server does (np.concatenate of wav_list)
    units_long     [240]  a longer unit sequence for the streaming-quality test
    durations_long [240]  its durations (its waveform is left out to keep the fixture small:
                          the streaming test compares with omni's own whole-utterance output,
                          itself checked against `wav`)
"""
import json
import os

import numpy as np
import torch

from fairseq.models.text_to_speech.codehifigan import CodeGenerator

import common

# The published config.json format (the LJ vocoder's file carries these training keys
# too; CodeGenerator ignores them), at a small width.
CONFIG = {
    "resblock": "1",
    "num_gpus": 0,
    "batch_size": 16,
    "learning_rate": 0.0002,
    "adam_b1": 0.8,
    "adam_b2": 0.99,
    "lr_decay": 0.999,
    "seed": 1234,
    "upsample_rates": [5, 4, 4, 2, 2],
    "upsample_kernel_sizes": [11, 8, 8, 4, 4],
    "upsample_initial_channel": 32,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "num_embeddings": 1000,
    "embedding_dim": 16,
    "model_in_dim": 16,
    "segment_size": 8960,
    "code_hop_size": 320,
    "f0": False,
    "num_mels": 80,
    "num_freq": 1025,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "dur_prediction_weight": 1.0,
    "dur_predictor_params": {
        "encoder_embed_dim": 16,
        "var_pred_hidden_dim": 16,
        "var_pred_kernel_size": 3,
        "var_pred_dropout": 0.5,
    },
    "sampling_rate": 16000,
    "fmin": 0,
    "fmax": 8000,
    "fmax_for_loss": None,
    "num_workers": 4,
    "dist_config": {"dist_backend": "nccl", "dist_url": "env://"},
}


def randomize(gen, seed):
    """Random weights that keep the signal O(0.1..1) through all five stages (fairseq's
    own init, N(0, 0.01), would give a near-silent output that hides errors), and a
    duration predictor whose durations spread over 1..4."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in gen.named_parameters():
            if name.endswith("weight_v"):
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.endswith("weight_g"):
                # Gain per output channel (per input channel for ConvTranspose1d).
                # (The transposed convs' norm runs over [out, k] per input channel.)
                base = {"ups": 2.0, "resblocks": 1.0, "conv_post": 1.5}.get(name.split(".")[0], 1.0)
                p.copy_(base * (0.8 + 0.4 * torch.rand(p.shape, generator=g)))
            elif name == "dict.weight":
                p.copy_(torch.randn(p.shape, generator=g))
            elif name.startswith("dur_predictor."):
                if ".ln" in name and name.endswith("weight"):
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
                elif name == "dur_predictor.proj.weight":
                    p.copy_(0.06 * torch.randn(p.shape, generator=g))
                elif name == "dur_predictor.proj.bias":
                    p.fill_(1.0)
                elif name.endswith("bias"):
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
                else:
                    fan_in = p[0].numel()
                    p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            else:
                raise AssertionError(f"unexpected parameter {name}")


def run(gen, units):
    """What CodeHiFiGANVocoder.forward(x, dur_prediction=True) does for valid codes."""
    code = torch.LongTensor(units).view(1, -1)
    with torch.no_grad():
        x = gen.dict(code).transpose(1, 2)
        log_dur = gen.dur_predictor(x.transpose(1, 2))
        dur = torch.clamp(torch.round(torch.exp(log_dur) - 1).long(), min=1)
        wav = gen(code=code, dur_prediction=True).detach().squeeze()
    return wav, dur.view(-1), log_dur.view(-1)


def write_checkpoint(dirname, state_dict):
    d = common.out_path("vocoder", dirname, "config.json")
    with open(d, "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    torch.save({"generator": state_dict}, common.out_path("vocoder", dirname, "g_00500000"))


def generate():
    common.seed(0)
    gen = CodeGenerator(CONFIG)
    randomize(gen, 1234)
    write_checkpoint("tiny", {k: v.clone() for k, v in gen.state_dict().items()})

    # As CodeHiFiGANVocoder.__init__: eval, then remove_weight_norm.
    gen.eval()
    gen.remove_weight_norm()
    write_checkpoint("tiny_folded", {k: v.clone() for k, v in gen.state_dict().items()})

    rng = np.random.RandomState(7)
    units = [int(u) for u in rng.randint(0, 1000, size=30)]
    units[10] = units[4]            # non-adjacent repeats
    units[20] = units[4]
    units[25] = 999                 # the last valid id
    units[3] = 0
    wav, dur, log_dur = run(gen, units)
    assert 1 in dur.tolist() and max(dur.tolist()) >= 3, dur.tolist()

    sizes = [12, 12, 6]
    chunks, pos = [], 0
    for s in sizes:
        w, _, _ = run(gen, units[pos:pos + s])
        chunks.append(w.numpy())
        pos += s
    wav_chunks = np.concatenate(chunks)

    units_long = [int(u) for u in rng.randint(0, 1000, size=240)]
    wav_long, dur_long, _ = run(gen, units_long)

    print("durations", dur.tolist())
    print("wav", wav.shape, "std", float(wav.std()), "max", float(wav.abs().max()))
    print("long durations histogram", np.bincount(dur_long.numpy()).tolist(),
          "wav_long", wav_long.shape, "std", float(wav_long.std()))

    common.save_arrays(common.out_path("vocoder", "tiny", "io.safetensors"), {
        "units": np.array(units, dtype=np.int64),
        "durations": dur.numpy().astype(np.int64),
        "log_dur": log_dur,
        "wav": wav,
        "chunk_sizes": np.array(sizes, dtype=np.int64),
        "wav_chunks": wav_chunks.astype(np.float32),
        "units_long": np.array(units_long, dtype=np.int64),
        "durations_long": dur_long.numpy().astype(np.int64),
    })


def generate_full(outdir, n_units=100):
    """A full-size (published widths: 512 channels, 128-dim embeddings) random vocoder
    in `outdir` (not a committed fixture, ~55 MB): for the full-size check and timing of
    `tests/vocoder.rs::full_size_vocoder_matches_fairseq` (OMNI_VOCODER_FULL=outdir)."""
    import time
    cfg = dict(CONFIG, upsample_initial_channel=512, embedding_dim=128, model_in_dim=128,
               dur_predictor_params=dict(CONFIG["dur_predictor_params"], encoder_embed_dim=128,
                                         var_pred_hidden_dim=128))
    common.seed(0)
    gen = CodeGenerator(cfg)
    randomize(gen, 99)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    torch.save({"generator": gen.state_dict()}, os.path.join(outdir, "g_00500000"))
    gen.eval()
    gen.remove_weight_norm()
    units = [int(u) for u in np.random.RandomState(3).randint(0, 1000, size=n_units)]
    wav, dur, _ = run(gen, units)
    t = time.perf_counter()
    reps = 3
    for _ in range(reps):
        run(gen, units)
    dt = (time.perf_counter() - t) / reps
    print(f"full-size: {len(units)} units -> {wav.numel() / 16000:.2f} s audio; PyTorch "
          f"{torch.__version__} CPU ({torch.get_num_threads()} threads): {dt * 1e3:.0f} ms "
          f"(RTF {dt / (wav.numel() / 16000):.3f})")
    common.save_arrays(os.path.join(outdir, "io.safetensors"), {
        "units": np.array(units, dtype=np.int64),
        "durations": dur.numpy().astype(np.int64),
        "wav": wav,
    })


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "--full":
        generate_full(sys.argv[2])
    else:
        generate()
