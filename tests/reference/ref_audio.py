"""Audio frontend fixtures, computed with openai-whisper's own `whisper.audio`.

Writes:
- tests/fixtures/speech/question.wav   espeak-ng speech ("What is the capital of France, and
                                       why is it famous?"), 16 kHz mono 16-bit PCM. Made with
                                       `espeak-ng` + `sox -D` (no dither, so it is reproducible).
- tests/fixtures/audio/mel.safetensors
    mel_80, mel_128          whisper's shipped `assets/mel_filters.npz` filterbanks [n_mels, 201]
    speech_mel128_head       log_mel_spectrogram(pad_or_trim(question), n_mels=128)  [128, 3000],
                             its first frames [128, H]; every later frame is the constant
    speech_mel128_tail       floor value (the padded silence), stored as [1]
    noise                    2 s of seeded Gaussian noise (std 0.1), 16 kHz            [32000]
    noise_mel80_30s_head     log_mel_spectrogram(pad_or_trim(noise), n_mels=80)      [80, 3000],
    noise_mel80_30s_tail     stored the same way (head [80, H] + tail constant [1])
    noise_raw_len            1.3 s = 20800 (first samples of `noise`, not padded)      [1] (i64)
    noise_raw_mel80          log_mel_spectrogram(noise[:20800], n_mels=80)           [80, 130]

The speech input is the wav itself, read as whisper.load_audio returns it (int16 / 32768).
Requires the espeak-ng and sox binaries (apt-get install -y espeak-ng sox).
"""
import os
import shutil
import subprocess
import tempfile
import wave

import numpy as np
import torch
import whisper
from whisper.audio import N_SAMPLES, log_mel_spectrogram, pad_or_trim

import common

QUESTION = "What is the capital of France, and why is it famous?"
NOISE_RAW_LEN = 20800  # 1.3 s at 16 kHz


def make_question_wav(path):
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found: apt-get install -y espeak-ng sox")
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "q.wav")
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", raw, QUESTION], check=True)
        # -D: no dither, so the output bytes are the same on every run.
        subprocess.run(["sox", raw, "-D", "-r", "16000", "-c", "1", "-b", "16", path], check=True)


def read_wav_int16(path):
    """The wav as whisper.load_audio gives it: mono 16 kHz int16 / 32768 (f32)."""
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == 16000
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def filters(n_mels):
    path = os.path.join(os.path.dirname(whisper.__file__), "assets", "mel_filters.npz")
    with np.load(path, allow_pickle=False) as f:
        return np.asarray(f[f"mel_{n_mels}"], dtype=np.float32)


def split_head_tail(mel):
    """[n_mels, 3000] -> (first H frames, constant value of frames H..): keeps the fixture small.
    The frames fed by the zero padding all equal max - 8 exactly; this is checked here."""
    mel = mel.numpy()
    tail = mel[0, -1]
    const = np.all(mel == tail, axis=0)
    h = mel.shape[1]
    while h > 0 and const[h - 1]:
        h -= 1
    assert h < mel.shape[1] - 1000, "expected a long constant (padded) tail"
    return mel[:, :h], np.array([tail], dtype=np.float32)


def generate():
    common.seed(0)
    wav_path = common.out_path("speech", "question.wav")
    make_question_wav(wav_path)
    speech = read_wav_int16(wav_path)

    rng = np.random.default_rng(1234)
    noise = (0.1 * rng.standard_normal(32000)).astype(np.float32)

    def logmel(x, n_mels):
        with torch.no_grad():
            return log_mel_spectrogram(torch.from_numpy(np.ascontiguousarray(x)), n_mels=n_mels)

    speech_mel = logmel(pad_or_trim(speech, N_SAMPLES), 128)
    noise_mel = logmel(pad_or_trim(noise, N_SAMPLES), 80)
    noise_raw_mel = logmel(noise[:NOISE_RAW_LEN], 80)
    assert tuple(speech_mel.shape) == (128, 3000)
    assert tuple(noise_mel.shape) == (80, 3000)
    assert tuple(noise_raw_mel.shape) == (80, NOISE_RAW_LEN // 160)
    speech_head, speech_tail = split_head_tail(speech_mel)
    noise_head, noise_tail = split_head_tail(noise_mel)

    common.save_arrays(common.out_path("audio", "mel.safetensors"), {
        "mel_80": filters(80),
        "mel_128": filters(128),
        "speech_mel128_head": speech_head,
        "speech_mel128_tail": speech_tail,
        "noise": noise,
        "noise_mel80_30s_head": noise_head,
        "noise_mel80_30s_tail": noise_tail,
        "noise_raw_len": np.array([NOISE_RAW_LEN], dtype=np.int64),
        "noise_raw_mel80": noise_raw_mel,
    })
    print(f"audio: question.wav {len(speech)} samples; mel heads {speech_head.shape} "
          f"{noise_head.shape}, tails {speech_tail[0]:.6f} {noise_tail[0]:.6f}")


if __name__ == "__main__":
    generate()
