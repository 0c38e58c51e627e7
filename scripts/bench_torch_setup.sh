#!/usr/bin/env bash
# Python venv for the PyTorch side of scripts/bench.sh (scripts/bench_torch.py): torch (CPU use of
# the PyPI wheel), transformers 4.43 (Llama), openai-whisper (the encoder), safetensors, and
# fairseq's CodeGenerator for the vocoder row (fairseq-fixed 0.12.3.1 installs on Python 3.11
# only without its pinned dependencies, as tests/reference/requirements.txt describes).
# Idempotent: does nothing when the venv already has these pins. Not run by CI (~6 GB download).
#   TORCH_VENV  where (default /work/venv/ref, bench.sh's default PYTHON)
set -euo pipefail
VENV="${TORCH_VENV:-/work/venv/ref}"
PINS=(torch==2.15.0 numpy==2.4.6 safetensors==0.8.0 openai-whisper==20250625
      transformers==4.43.4 tokenizers==0.19.1)
FAIRSEQ_DEPS=(cython==3.3.1 hydra-core==1.3.2 omegaconf==2.3.0 bitarray==3.12.3
              sacrebleu==2.6.0 scikit-learn==1.9.1)
FAIRSEQ=fairseq-fixed==0.12.3.1

want="${PINS[*]} ${FAIRSEQ_DEPS[*]} $FAIRSEQ"
[ -f "$VENV/.pins" ] && [ "$(cat "$VENV/.pins")" = "$want" ] && exit 0
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "${PINS[@]}" "${FAIRSEQ_DEPS[@]}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/pip" download -q --no-deps "$FAIRSEQ" -d "$tmp"
"$VENV/bin/pip" install -q --no-deps --no-build-isolation "$tmp"/fairseq*
"$VENV/bin/python" -c "import torch, whisper, transformers; \
from fairseq.models.text_to_speech.codehifigan import CodeGenerator" 2>/dev/null
echo "$want" > "$VENV/.pins"
