#!/usr/bin/env python3
"""Tests of the ctypes binding (bindings/python/omni.py) on the demo model; system python3, no numpy.

    python3 tests/python/test_binding.py      (needs libomni: cargo build --release -p omni-ffi)

Ends with "N passed, N failed"; exit status 1 on any failure.
"""

import array
import ctypes
import math
import sys
import threading
import unittest
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
try:  # the installed package (`pip install bindings/python`, as .ci/run does)
    import omni
except ImportError:  # or the source tree
    sys.path.insert(0, str(ROOT / "bindings" / "python"))
    import omni  # noqa: E402

MODEL = ROOT / "tests/fixtures/omni_tiny"
VOCODER = ROOT / "tests/fixtures/vocoder/tiny"
QUESTION = ROOT / "tests/fixtures/speech/question.wav"
TURNS = ROOT / "tests/fixtures/turns"


def question():
    with wave.open(str(QUESTION), "rb") as w:
        return w.readframes(w.getnframes()), w.getframerate()


def run_turn(s, timeout=120):
    """Drains one turn: (events by class name, TurnDone or Interrupted or None)."""
    seen = {}
    last = None
    for ev in s.events(timeout=timeout):
        seen.setdefault(type(ev).__name__, []).append(ev)
        last = ev
    return seen, last if isinstance(last, (omni.TurnDone, omni.Interrupted)) else None


class Binding(unittest.TestCase):
    model = None

    @classmethod
    def setUpClass(cls):
        cls.stages = []
        cls.model = omni.Model(MODEL, VOCODER, progress=lambda st, d, t: cls.stages.append((st, d, t)))

    @classmethod
    def tearDownClass(cls):
        cls.model.close()

    def session(self, **kw):
        kw.setdefault("max_new_tokens", 16)
        kw.setdefault("endpointing", False)
        return self.model.session(**kw)

    def test_files_with_silence_and_pauses_are_one_explicit_turn(self):
        for name in ("trailing_silence.wav", "trailing_noise.wav", "pause_0_9s.wav", "leading_silence.wav"):
            with wave.open(str(TURNS / name), "rb") as w:
                pcm, rate = w.readframes(w.getnframes()), w.getframerate()
            with self.session() as s:
                s.push(pcm, rate)
                s.end_turn()
                seen, last = run_turn(s)
                self.assertIsInstance(last, omni.TurnDone, name)
                self.assertNotIn("Error", seen, name)
                self.assertGreater(sum(len(a.pcm) for a in seen["Audio"]), 0, name)

    def test_live_paused_question_is_one_answer(self):
        with wave.open(str(TURNS / "pause_0_9s.wav"), "rb") as w:
            pcm, rate = w.readframes(w.getnframes()), w.getframerate()
        with self.session(endpointing=True) as s:
            self.assertEqual(self.model.default_session_options()["resume_grace_ms"], 1500)
            s.played(1, 0)  # nothing of turn 1 played yet
            for i in range(0, len(pcm), 640):
                s.push(pcm[i : i + 640], rate)
            kinds = []
            while True:
                ev = s.poll(5.0)
                if ev is None:
                    break
                kinds.append(type(ev).__name__)
            self.assertEqual(kinds.count("TurnDone"), 1, kinds)
            self.assertEqual(kinds.count("Interrupted"), 0, kinds)

    def test_text_turns_and_played_reports(self):
        with self.session() as s:
            s.push_text("What is the capital of France?")
            seen, last = run_turn(s)
            self.assertIsInstance(last, omni.TurnDone)
            self.assertIn("Audio", seen)
            self.assertGreaterEqual(last.timings.endpoint_wait_ms, 0.0)
            s.played(last.turn, 0)
            s.push_text("And of Germany?")
            _, last2 = run_turn(s)
            self.assertIsInstance(last2, omni.TurnDone)
            self.assertEqual(last2.turn, 2)
            with self.assertRaises(omni.OmniError):
                s.push_text("   ")

    def test_cancel_right_after_end_turn_applies(self):
        raw, rate = question()
        with self.session() as s:
            s.push(raw, rate)
            s.end_turn()
            self.assertTrue(s.busy)
            s.cancel()
            seen, last = run_turn(s)
            self.assertIsInstance(last, omni.Interrupted)
            self.assertEqual(last.reason, omni.InterruptReason.CANCEL)
            self.assertNotIn("TurnDone", seen)

    def test_each_status_raises_its_exception_class(self):
        with self.assertRaises(omni.IoError) as cm:
            omni.Model(ROOT / "no/such/model", VOCODER)
        self.assertEqual(cm.exception.status, omni.Status.ERR_IO)
        self.assertIsInstance(cm.exception, OSError)
        with self.session() as s:
            with self.assertRaises(omni.AudioError):
                s.push([0.0, float("nan")], 16000)
            with self.assertRaises(omni.InvalidArgumentError):
                s.push_text("")
        with self.assertRaises(omni.InvalidArgumentError):
            self.model.session(max_new_tokens=100000)
        for status, cls in omni._ERRORS.items():
            self.assertIs(type(omni.OmniError.for_status(status, "m")), cls)
            self.assertIsInstance(omni.OmniError.for_status(status, "m"), omni.OmniError)

    def test_events_use_enums_and_numpy_audio_when_available(self):
        with self.session() as s:
            s.push_text("Hi.")
            seen, last = run_turn(s)
        audio = seen["Audio"][0].pcm
        if omni._np is not None:
            self.assertEqual(audio.dtype, omni._np.float32)
        else:
            self.assertEqual(audio.typecode, "f")
        self.assertIsInstance(omni.EventType.AUDIO, int)
        self.assertFalse(hasattr(omni, "Warning") or hasattr(omni, "Error"), "no event class shadows a builtin")
        with self.session() as s:
            saved, omni._np = omni._np, None
            try:
                s.push_text("Hi.")
                seen, _ = run_turn(s)
                self.assertEqual(seen["Audio"][0].pcm.typecode, "f")
            finally:
                omni._np = saved

    def test_log_callback_receives_the_librarys_messages(self):
        got = []
        omni.set_log_callback(lambda level, msg: got.append((level, msg)), omni.LogLevel.INFO)
        try:
            omni.Model(MODEL, VOCODER).close()
        finally:
            omni.set_log_callback(None)
        self.assertTrue(any(l == omni.LogLevel.INFO and "loaded" in m for l, m in got), got)

    def test_version(self):
        self.assertEqual(omni.abi_version(), omni.ABI_VERSION)
        self.assertRegex(omni.version(), r"^\d+\.\d+\.\d+")

    def test_progress(self):
        names = {s for s, _, _ in self.stages}
        self.assertTrue({"speech encoder", "vocoder"} <= names, names)
        self.assertTrue(all(0 <= d <= t for _, d, t in self.stages))

    def test_full_turn(self):
        pcm, rate = question()
        with self.session() as s:
            for i in range(0, len(pcm), 640):  # 20 ms of int16 bytes at 16 kHz
                s.push(pcm[i:i + 640], rate)
            s.end_turn()
            seen, end = run_turn(s)
        self.assertIsInstance(end, omni.TurnDone, seen.keys())
        self.assertEqual(end.turn, 1)
        texts = seen.get("Text", [])
        self.assertTrue(1 <= len(texts) <= 16)
        audio = seen.get("Audio", [])
        self.assertTrue(audio)
        self.assertEqual([a.seq for a in audio], list(range(len(audio))))
        for a in audio:
            self.assertEqual(a.sample_rate, 16000)
            self.assertIsInstance(a.pcm, array.array if omni._np is None else omni._np.ndarray)
            self.assertTrue(all(math.isfinite(x) and abs(x) <= 1.0 for x in a.pcm))
        t = end.timings
        self.assertGreater(t.total_ms, 0)
        self.assertEqual(t.tokens, len(texts))
        self.assertEqual(t.units, sum(len(u.units) for u in seen.get("Units", [])))
        self.assertIsNotNone(t.first_audio_ms)
        self.assertIn("TurnStarted", seen)

    def test_push_kinds(self):
        pcm, rate = question()
        h = array.array("h")
        h.frombytes(pcm)
        if sys.byteorder == "big":
            h.byteswap()
        with self.session() as s:
            s.push(pcm[:640], rate)                                  # bytes
            s.push(bytearray(pcm[640:1280]), rate)                   # bytearray
            s.push(h[640:960], rate)                                 # array('h')
            s.push(array.array("f", (x / 32768 for x in h[960:1280])), rate)  # array('f')
            s.push([x / 32768 for x in h[1280:1600]], rate)          # list of floats
            s.push(array.array("d", [0.0] * 160), 8000)              # array('d'), another rate
            s.push([], rate)                                         # empty: no-op
            s.push(b"", rate)
            s.push(h[1600:], rate)
            s.end_turn()
            _, end = run_turn(s)
            self.assertIsInstance(end, omni.TurnDone)

    @unittest.skipUnless(omni._np is not None, "numpy is not installed")
    def test_push_numpy(self):
        np = omni._np
        pcm, rate = question()
        x = np.frombuffer(pcm, dtype="<i2")
        with self.session() as s:
            s.push(x[:8000], rate)                                     # int16
            s.push((x[8000:16000] / 32768.0).astype(np.float64), rate)  # float64 -> f32
            s.push((x[16000::1] / 32768.0).astype(np.float32), rate)   # float32
            with self.assertRaises(ValueError):
                s.push(np.zeros((2, 10), np.float32), rate)
            s.end_turn()
            _, end = run_turn(s)
            self.assertIsInstance(end, omni.TurnDone)

    def test_bad_audio_raises(self):
        with self.session() as s:
            with self.assertRaises(omni.OmniError) as cm:
                s.push([0.0, float("nan"), 0.0], 16000)
            self.assertEqual(cm.exception.status, omni.Status.ERR_AUDIO)
            self.assertEqual(cm.exception.status_name, "OMNI_ERR_AUDIO")
            self.assertIn("not finite", str(cm.exception))
            for rate in (0, 7):
                with self.assertRaises(omni.OmniError) as cm:
                    s.push([0.0] * 160, rate)
                self.assertEqual(cm.exception.status, omni.Status.ERR_AUDIO)
                self.assertIn(f"{rate} Hz", cm.exception.message)
            with self.assertRaises(ValueError):
                s.push(b"\x00\x01\x02", 16000)  # odd number of bytes
            with self.assertRaises(TypeError):
                s.push("not audio", 16000)
            s.push([0.0] * 160, 16000)  # the session is still fine

    def test_double_end_turn_and_cancel(self):
        with self.session() as s:
            s.cancel()  # nothing running: no-op
            self.assertFalse(s.busy)
            s.end_turn()
            s.end_turn()
            errors = [s.poll(5), s.poll(5)]
            for e in errors:
                self.assertIsInstance(e, omni.ErrorEvent)
                self.assertEqual(e.code, omni.ErrorCode.NO_SPEECH)
                self.assertTrue(e.recoverable)
            self.assertIsNone(s.poll(0))
            s.reset()

    def test_cancel_turn(self):
        pcm, rate = question()
        with self.session(max_new_tokens=256) as s:
            s.push(pcm, rate)
            s.end_turn()
            result = None
            for ev in s.events(timeout=120):
                if isinstance(ev, omni.Text):
                    s.cancel()
                if isinstance(ev, (omni.TurnDone, omni.Interrupted)):
                    result = ev
            self.assertIsNotNone(result)
            if isinstance(result, omni.Interrupted):
                self.assertEqual(result.reason, omni.InterruptReason.CANCEL)

    def test_bad_options_raise(self):
        with self.assertRaises(omni.OmniError) as cm:
            self.model.session(top_p=0.0)
        self.assertEqual(cm.exception.status, omni.Status.ERR_INVALID_ARGUMENT)
        self.assertIn("top_p", cm.exception.message)
        with self.assertRaises(omni.OmniError):
            self.model.session(chunk_units=0)
        with self.assertRaises(TypeError):
            self.model.session(no_such_option=1)
        d = self.model.default_session_options()
        self.assertEqual(d["max_new_tokens"], 256)
        self.assertIs(d["endpointing"], True)
        with self.model.session(system_prompt="Be brief.", seed=7, temperature=0.7, top_p=0.9) as s:
            self.assertFalse(s.busy)

    def test_load_errors_raise(self):
        with self.assertRaises(omni.OmniError) as cm:
            omni.Model("/nonexistent/omni", VOCODER)
        self.assertEqual(cm.exception.status, omni.Status.ERR_IO)
        self.assertIn("/nonexistent/omni", cm.exception.message)
        with self.assertRaises(omni.OmniError) as cm:
            omni.Model(MODEL, VOCODER, device="tpu")
        self.assertEqual(cm.exception.status, omni.Status.ERR_DEVICE)
        with self.assertRaises(ValueError):
            omni.Model(MODEL, VOCODER, dtype="int4")

        def bad_progress(stage, done, total):
            raise KeyError("from the callback")

        with self.assertRaises(KeyError):
            omni.Model(MODEL, VOCODER, progress=bad_progress)

    def test_missing_speech_encoder_is_an_io_error(self):
        # A missing file is ERR_IO (it was ERR_MODEL), a present but malformed one ERR_MODEL.
        for path in ("/nonexistent/whisper.pt", ""):
            with self.assertRaises(omni.OmniError) as cm:
                omni.Model(MODEL, VOCODER, speech_encoder=path)
            self.assertEqual(cm.exception.status, omni.Status.ERR_IO, cm.exception.message)
        with self.assertRaises(omni.OmniError) as cm:
            omni.Model(MODEL, VOCODER, speech_encoder=MODEL / "config.json")
        self.assertEqual(cm.exception.status, omni.Status.ERR_MODEL, cm.exception.message)

    def test_quantized_dtypes_load_and_answer(self):
        # q8_0 / q4_0 travel as OMNI_DTYPE_Q8_0 (3) / OMNI_DTYPE_Q4_0 (4).
        self.assertEqual((omni._DTYPES["q8_0"], omni._DTYPES["q4_0"]), (3, 4))
        for dt in ("q8_0", "q4_0"):
            with omni.Model(MODEL, VOCODER, dtype=dt) as m:
                with m.session() as s:
                    self.assertFalse(s.busy)

    def test_closed_objects(self):
        s = self.session()
        s.close()
        s.close()  # idempotent
        with self.assertRaises(ValueError):
            s.end_turn()
        with self.assertRaises(ValueError):
            s.push([0.0], 16000)

    def test_null_arguments_at_the_c_level(self):
        lib = omni._lib
        out = omni._P()
        self.assertEqual(lib.omni_model_load(None, None, None, omni._PROGRESS(), None, ctypes.byref(out)),
                         omni.Status.ERR_NULL_ARGUMENT)
        self.assertIn(b"model_dir", lib.omni_last_error())
        self.assertFalse(out)
        self.assertEqual(lib.omni_session_end_turn(None), omni.Status.ERR_NULL_ARGUMENT)
        self.assertEqual(lib.omni_session_push_f32(None, None, 0, 16000), omni.Status.ERR_NULL_ARGUMENT)
        self.assertEqual(lib.omni_session_poll(None, 0, None), omni.Status.ERR_NULL_ARGUMENT)
        self.assertEqual(lib.omni_model_options_default(None), omni.Status.ERR_NULL_ARGUMENT)
        small = omni._ModelOptions(struct_size=4)
        self.assertEqual(lib.omni_model_options_default(ctypes.byref(small)), omni.Status.ERR_STRUCT_SIZE)
        with self.session() as s:
            self.assertEqual(lib.omni_session_push_f32(s._ptr, None, 10, 16000), omni.Status.ERR_NULL_ARGUMENT)
            self.assertEqual(lib.omni_session_push_f32(s._ptr, None, 2**64 - 1, 16000), omni.Status.ERR_NULL_ARGUMENT)
            buf = (ctypes.c_float * 4)()
            self.assertEqual(lib.omni_session_push_f32(s._ptr, buf, 2**64 - 1, 16000),
                             omni.Status.ERR_INVALID_ARGUMENT)
            self.assertEqual(lib.omni_session_is_busy(s._ptr, None), omni.Status.ERR_NULL_ARGUMENT)
        lib.omni_session_free(None)
        lib.omni_model_free(None)
        lib.omni_event_free(None)

    def test_two_sessions_two_threads(self):
        pcm, rate = question()
        results = [None, None]

        def drive(i):
            with self.session() as s:
                s.push(pcm, rate)
                s.end_turn()
                results[i] = run_turn(s)[1]

        threads = [threading.Thread(target=drive, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        self.assertTrue(all(isinstance(r, omni.TurnDone) for r in results), results)
        self.assertEqual(results[0].text, results[1].text)  # greedy: same question, same answer


if __name__ == "__main__":
    runner = unittest.TextTestRunner(verbosity=2)
    result = runner.run(unittest.defaultTestLoader.loadTestsFromTestCase(Binding))
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed - len(result.skipped)} passed, {failed} failed")
    sys.exit(1 if failed else 0)
