#!/usr/bin/env python3
"""Answer one spoken question with omni's Python binding (ctypes over libomni.so).

    python examples/python/chat.py question.wav [--model DIR --vocoder DIR] [--output answer.wav]
                                   [--device cpu] [--dtype f32|f16|bf16] [--max-new-tokens N]

Streams the WAV (16-bit PCM, any rate, mono or mixed down) into a session in 20 ms chunks, ends the
turn, prints the answer's text as it streams and writes its audio to answer.wav (stdlib `wave`).
Defaults to the demo model (tests/fixtures/omni_tiny + tests/fixtures/vocoder/tiny: random weights,
gibberish by design). Needs libomni: `cargo build --release -p omni-ffi` (or set OMNI_LIB).
"""

import argparse
import array
import sys
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
import omni  # noqa: E402


def read_wav(path):
    """Mono int16 samples and the rate of a 16-bit PCM WAV."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise SystemExit(f"{path}: need 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        ch, rate = w.getnchannels(), w.getframerate()
        pcm = array.array("h")
        pcm.frombytes(w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        pcm.byteswap()
    if ch > 1:
        pcm = array.array("h", (sum(pcm[i:i + ch]) // ch for i in range(0, len(pcm), ch)))
    return pcm, rate


def write_wav(path, pcm, rate):
    """Float samples in [-1, 1] as a 16-bit mono WAV."""
    out = array.array("h", (int(max(-1.0, min(1.0, x)) * 32767) for x in pcm))
    if sys.byteorder == "big":
        out.byteswap()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(out.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("question", nargs="?", default=str(ROOT / "tests/fixtures/speech/question.wav"))
    ap.add_argument("--model", default=str(ROOT / "tests/fixtures/omni_tiny"))
    ap.add_argument("--vocoder", default=str(ROOT / "tests/fixtures/vocoder/tiny"))
    ap.add_argument("--output", default="answer.wav")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--max-new-tokens", type=int, default=None)
    a = ap.parse_args()

    pcm, rate = read_wav(a.question)
    print(f"omni {omni.version()}: {a.question} ({len(pcm) / rate:.2f} s at {rate} Hz)", file=sys.stderr)

    def progress(stage, done, total):
        print(f"\rloading {stage:<16} {done}/{total}", end="\n" if done == total else "", file=sys.stderr)

    opts = {"endpointing": False}  # this script ends the turn itself
    if a.max_new_tokens:
        opts["max_new_tokens"] = a.max_new_tokens
    answer, answer_rate = array.array("f"), 16000
    with omni.Model(a.model, a.vocoder, device=a.device, dtype=a.dtype, progress=progress) as model:
        with model.session(**opts) as s:
            chunk = max(1, rate // 50)  # 20 ms, as a microphone delivers it
            for i in range(0, len(pcm), chunk):
                s.push(pcm[i:i + chunk], rate)
            s.end_turn()
            for ev in s.events(timeout=600):
                if isinstance(ev, omni.Text):
                    print(ev.text, end="", flush=True)
                elif isinstance(ev, omni.Audio):
                    answer.extend(ev.pcm)
                    answer_rate = ev.sample_rate
                    print(f"\n  [audio chunk {ev.seq}: {len(ev.pcm)} samples]", file=sys.stderr)
                elif isinstance(ev, omni.TurnDone):
                    t = ev.timings
                    ms = lambda x: "-" if x is None else f"{x:.1f} ms"  # noqa: E731
                    print()
                    print(f"turn {ev.turn} done: first text {ms(t.first_text_ms)}, first audio {ms(t.first_audio_ms)}, "
                          f"total {t.total_ms:.1f} ms, {t.tokens} tokens, {t.units} units, RTF {t.real_time_factor:.2f}",
                          file=sys.stderr)
                    break
                elif isinstance(ev, omni.Interrupted):
                    print(f"\nanswer interrupted ({ev.reason})", file=sys.stderr)
                    break
                elif isinstance(ev, omni.ErrorEvent):
                    raise SystemExit(f"error ({ev.code}): {ev.message}")
                elif isinstance(ev, omni.WarningEvent):
                    print(f"\nwarning: {ev.message}", file=sys.stderr)
            else:
                raise SystemExit("no answer within 10 minutes")
    write_wav(a.output, answer, answer_rate)
    print(f"wrote {a.output} ({len(answer) / answer_rate:.2f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
