"""Regenerates every golden fixture under tests/fixtures/.

    python -m venv .venv && .venv/bin/pip install -r tests/reference/requirements.txt
    .venv/bin/python tests/reference/make_fixtures.py [name ...]

Each generator builds small random-weight modules with a fixed seed from the
reference implementations (openai-whisper, transformers, a faithful restatement
of the LLaMA-Omni adaptor), writes their weights in the published file layouts
and key names, and saves inputs and expected outputs. CI only reads the files.
"""
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ref_audio  # noqa: E402
import ref_omni  # noqa: E402
import ref_vocoder  # noqa: E402
import ref_tokenizer  # noqa: E402
import ref_train  # noqa: E402
import ref_whisper  # noqa: E402

GENERATORS = {
    "audio": ref_audio.generate,
    "whisper": ref_whisper.generate,
    "vocoder": ref_vocoder.generate,
    "tokenizer": ref_tokenizer.generate,
    # needs the tiny tokenizer and the speech clip: keep it after "tokenizer" and "audio"
    "omni": ref_omni.generate,
    # reads the omni_tiny fixture: keep it after "omni"
    "train": ref_train.generate,
}

if __name__ == "__main__":
    names = sys.argv[1:] or list(GENERATORS)
    for n in names:
        print(f"== {n}", flush=True)
        GENERATORS[n]()
