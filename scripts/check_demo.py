"""Checks the JSON event stream of `omni demo --json` (read from stdin) and the WAV it wrote."""
import json
import sys
import wave

events = [json.loads(line) for line in sys.stdin if line.strip()]
kinds = [e["event"] for e in events]
assert "turn_started" in kinds, kinds
assert kinds[-1] == "turn_done", f"last event is {kinds[-1]}"
first_audio = kinds.index("audio")
last_text = len(kinds) - 1 - kinds[::-1].index("text")
assert first_audio < last_text, "audio should start before the text is complete"
done = events[-1]["timings"]
assert done["first_audio_ms"] is not None and done["first_audio_ms"] <= done["total_ms"]
samples = sum(e["samples"] for e in events if e["event"] == "audio")
with wave.open(sys.argv[1]) as w:
    assert w.getframerate() == 16000 and w.getnchannels() == 1
    assert w.getnframes() == samples, (w.getnframes(), samples)
print(f"demo ok: {kinds.count('text')} tokens, {kinds.count('audio')} audio chunks, {samples} samples, "
      f"first audio {done['first_audio_ms']} ms after end of speech")
