"""Python binding of omni (LLaMA-Omni runtime) over libomni's C API, with ctypes only.

    import omni
    with omni.Model("Llama-3.1-8B-Omni", "vocoder", device="cpu", dtype="f16") as model:
        with model.session(max_new_tokens=256, endpointing=False) as s:
            s.push(samples, 16000)          # numpy array, list/array('f') of floats, array('h') or int16 bytes
            s.end_turn()
            for ev in s.events(timeout=60):  # stops after TurnDone / Interrupted
                if isinstance(ev, omni.Text):
                    print(ev.text, end="", flush=True)
                elif isinstance(ev, omni.Audio):
                    play(ev.pcm, ev.sample_rate)  # numpy float32 array (array('f') without numpy)

libomni.so is looked up in: $OMNI_LIB (a file or a folder), $CARGO_TARGET_DIR/release, then
target/release and target/debug of the repository holding this file, then the system's library path.
Build it with `cargo build --release -p omni-ffi`.

Errors of the C API raise a subclass of OmniError per status (IoError, ModelError, AudioError,
InvalidArgumentError, SessionFailedError, ...; .status is a Status, plus the library's message). A Model or
Session is thread-safe as the C API is: push from any thread, poll from another; close() must not
overlap other calls on the same object. ctypes releases the GIL during each C call.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import math
import os
import sys
import time
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

try:  # optional
    import numpy as _np
except ImportError:  # pragma: no cover - numpy is optional
    _np = None

ABI_VERSION = 2



class Status(IntEnum):
    """OmniStatus: the result of every fallible C call."""

    OK = 0
    ERR_NULL_ARGUMENT = 1
    ERR_INVALID_ARGUMENT = 2
    ERR_STRUCT_SIZE = 3
    ERR_IO = 4
    ERR_MODEL = 5
    ERR_AUDIO = 6
    ERR_DEVICE = 7
    ERR_SESSION_FAILED = 8
    ERR_INTERNAL = 9


class EventType(IntEnum):
    """OmniEventType."""

    SPEECH_STARTED = 1
    SPEECH_ENDED = 2
    TURN_STARTED = 3
    TEXT = 4
    UNITS = 5
    AUDIO = 6
    TURN_DONE = 7
    INTERRUPTED = 8
    WARNING = 9
    ERROR = 10


class ErrorCode(IntEnum):
    """OmniErrorCode of an ErrorEvent."""

    NONE = 0
    NO_SPEECH = 1
    INVALID_INPUT = 2
    MODEL = 3
    INTERNAL = 4


class InterruptReason(IntEnum):
    """OmniInterruptReason of an Interrupted event."""

    NONE = 0
    BARGE_IN = 1
    CANCEL = 2
    RESUMED = 3


class LogLevel(IntEnum):
    """OmniLogLevel."""

    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4


NO_TOKEN = 0xFFFFFFFF  # Text.token of text flushed at the end of an answer (no token of its own)

_DTYPES = {"f32": 0, "float32": 0, "fp32": 0, "f16": 1, "float16": 1, "fp16": 1, "half": 1, "bf16": 2, "bfloat16": 2, "q8_0": 3, "q8": 3, "q4_0": 4, "q4": 4}


class OmniError(RuntimeError):
    """A failed libomni call: `status` is the Status, `message` the library's explanation. Raised as the
    subclass of its status (OmniError.for_status)."""

    def __init__(self, status: int, message: str):
        self.status = Status(status) if status in Status._value2member_map_ else status
        self.status_name = _lib.omni_status_str(status).decode() if _lib else str(status)
        self.message = message
        super().__init__(f"{self.status_name}: {message}")

    @staticmethod
    def for_status(status: int, message: str) -> "OmniError":
        return _ERRORS.get(status, OmniError)(status, message)


class NullArgumentError(OmniError, ValueError):
    """A required pointer was NULL (a closed object)."""


class InvalidArgumentError(OmniError, ValueError):
    """An argument or option out of its domain."""


class StructSizeError(OmniError):
    """An options struct of an unknown size."""


class IoError(OmniError, OSError):
    """A file is missing or unreadable."""


class ModelError(OmniError):
    """A model file or config that cannot be used."""


class AudioError(OmniError, ValueError):
    """Audio that cannot be used (NaN, bad rate, bad file)."""


class DeviceError(OmniError):
    """The device is not available."""


class SessionFailedError(OmniError):
    """The session cannot go on; create a new one."""


class InternalError(OmniError):
    """A bug in omni (a caught panic)."""


_ERRORS = {
    Status.ERR_NULL_ARGUMENT: NullArgumentError,
    Status.ERR_INVALID_ARGUMENT: InvalidArgumentError,
    Status.ERR_STRUCT_SIZE: StructSizeError,
    Status.ERR_IO: IoError,
    Status.ERR_MODEL: ModelError,
    Status.ERR_AUDIO: AudioError,
    Status.ERR_DEVICE: DeviceError,
    Status.ERR_SESSION_FAILED: SessionFailedError,
    Status.ERR_INTERNAL: InternalError,
}


# ----------------------------------------------------------------------------- C declarations


class _ModelOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("device", ctypes.c_char_p),
        ("dtype", ctypes.c_int32),
        ("speech_encoder", ctypes.c_char_p),
    ]


class _SessionOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("max_new_tokens", ctypes.c_uint32),
        ("temperature", ctypes.c_float),
        ("top_p", ctypes.c_float),
        ("seed", ctypes.c_uint64),
        ("first_chunk_units", ctypes.c_uint32),
        ("chunk_units", ctypes.c_uint32),
        ("endpointing", ctypes.c_int32),
        ("trailing_silence_ms", ctypes.c_uint32),
        ("vad_threshold", ctypes.c_float),
        ("barge_in", ctypes.c_int32),
        ("system_prompt", ctypes.c_char_p),
        ("user_message", ctypes.c_char_p),
        ("max_context", ctypes.c_uint32),
        ("event_capacity", ctypes.c_uint32),
        ("resume_grace_ms", ctypes.c_uint32),
        ("speculative_start", ctypes.c_int32),
        ("max_turn_s", ctypes.c_uint32),
    ]


class _Timings(ctypes.Structure):
    _fields_ = [
        ("encode_ms", ctypes.c_double),
        ("prefill_ms", ctypes.c_double),
        ("first_text_ms", ctypes.c_double),
        ("first_audio_ms", ctypes.c_double),
        ("total_ms", ctypes.c_double),
        ("speech_decoder_ms", ctypes.c_double),
        ("vocoder_ms", ctypes.c_double),
        ("tokens_per_s", ctypes.c_double),
        ("audio_s", ctypes.c_double),
        ("real_time_factor", ctypes.c_double),
        ("tokens", ctypes.c_int64),
        ("units", ctypes.c_int64),
    ]


class _Event(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("type", ctypes.c_int32),
        ("turn", ctypes.c_uint32),
        ("text", ctypes.c_void_p),
        ("text_len", ctypes.c_size_t),
        ("token", ctypes.c_uint32),
        ("units", ctypes.POINTER(ctypes.c_uint32)),
        ("n_units", ctypes.c_size_t),
        ("pcm", ctypes.c_void_p),
        ("n_pcm", ctypes.c_size_t),
        ("sample_rate", ctypes.c_uint32),
        ("seq", ctypes.c_uint32),
        ("at_ms", ctypes.c_uint64),
        ("audio_ms", ctypes.c_uint64),
        ("timings", _Timings),
        ("error_code", ctypes.c_int32),
        ("recoverable", ctypes.c_bool),
        ("message", ctypes.c_char_p),
        ("interrupt_reason", ctypes.c_int32),
        ("endpoint_wait_ms", ctypes.c_double),
        ("speculative", ctypes.c_bool),
    ]


_LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int32, ctypes.c_char_p, ctypes.c_void_p)
_PROGRESS = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p)
_Status = ctypes.c_int32
_P = ctypes.c_void_p  # opaque OmniModel* / OmniSession*


def _library_candidates() -> list:
    names = {"darwin": ["libomni.dylib"], "win32": ["omni.dll"]}.get(sys.platform, ["libomni.so"])
    out = []
    env = os.environ.get("OMNI_LIB")
    if env:
        p = Path(env)
        out += [p / n for n in names] if p.is_dir() else [p]
    if os.environ.get("CARGO_TARGET_DIR"):
        out += [Path(os.environ["CARGO_TARGET_DIR"]) / "release" / n for n in names]
    root = Path(__file__).resolve().parents[2]
    for profile in ("release", "debug"):
        out += [root / "target" / profile / n for n in names]
    return out


def _load_library() -> ctypes.CDLL:
    tried = []
    for p in _library_candidates():
        tried.append(str(p))
        if p.is_file():
            return ctypes.CDLL(str(p))
    found = ctypes.util.find_library("omni")
    if found:
        return ctypes.CDLL(found)
    raise OSError(
        "libomni not found (build it with `cargo build --release -p omni-ffi`, or set OMNI_LIB); tried: "
        + ", ".join(tried)
    )


def _declare(lib: ctypes.CDLL) -> None:
    sig = {
        "omni_last_error": (ctypes.c_char_p, []),
        "omni_status_str": (ctypes.c_char_p, [ctypes.c_int32]),
        "omni_version": (ctypes.c_char_p, []),
        "omni_abi_version": (ctypes.c_uint32, []),
        "omni_model_options_default": (_Status, [ctypes.POINTER(_ModelOptions)]),
        "omni_model_load": (
            _Status,
            [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_ModelOptions), _PROGRESS, ctypes.c_void_p,
             ctypes.POINTER(_P)],
        ),
        "omni_model_free": (None, [_P]),
        "omni_session_options_default": (_Status, [_P, ctypes.POINTER(_SessionOptions)]),
        "omni_session_new": (_Status, [_P, ctypes.POINTER(_SessionOptions), ctypes.POINTER(_P)]),
        "omni_session_push_f32": (_Status, [_P, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32]),
        "omni_session_push_i16": (_Status, [_P, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32]),
        "omni_session_end_turn": (_Status, [_P]),
        "omni_set_log_callback": (_Status, [_LOG_FN, ctypes.c_int32, ctypes.c_void_p]),
        "omni_session_push_text": (_Status, [_P, ctypes.c_char_p]),
        "omni_session_played": (_Status, [_P, ctypes.c_uint32, ctypes.c_uint64]),
        "omni_session_cancel": (_Status, [_P]),
        "omni_session_reset": (_Status, [_P]),
        "omni_session_poll": (_Status, [_P, ctypes.c_int32, ctypes.POINTER(ctypes.POINTER(_Event))]),
        "omni_session_is_busy": (_Status, [_P, ctypes.POINTER(ctypes.c_bool)]),
        "omni_session_free": (None, [_P]),
        "omni_event_free": (None, [ctypes.POINTER(_Event)]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


_lib: Optional[ctypes.CDLL] = None
_lib = _load_library()
_declare(_lib)
if _lib.omni_abi_version() < ABI_VERSION:
    raise ImportError(f"libomni has C ABI {_lib.omni_abi_version()}, this binding needs {ABI_VERSION}")


def _check(status: int) -> None:
    """Raises OmniError for a failed call (reads the message on this thread, right after the call)."""
    if status != Status.OK:
        raise OmniError.for_status(status, (_lib.omni_last_error() or b"").decode("utf-8", "replace"))


def version() -> str:
    """The library version."""
    return _lib.omni_version().decode()


def abi_version() -> int:
    """The library's C ABI version (this binding needs ABI_VERSION)."""
    return _lib.omni_abi_version()


def _cstr(s: Optional[Union[str, os.PathLike]]) -> Optional[bytes]:
    if s is None:
        return None
    return os.fsencode(s) if isinstance(s, os.PathLike) else str(s).encode("utf-8")


# ----------------------------------------------------------------------------- events


@dataclass
class Timings:
    """Per-turn timings in ms from the end of the user's speech (None where absent)."""

    encode_ms: float
    prefill_ms: float
    first_text_ms: Optional[float]
    first_audio_ms: Optional[float]
    total_ms: float
    speech_decoder_ms: float
    vocoder_ms: float
    tokens_per_s: float
    audio_s: float
    real_time_factor: float
    tokens: int
    units: int
    # End of speech -> the endpointer committed the turn (0 for explicit and text turns).
    endpoint_wait_ms: float = 0.0
    # Whether encoder and prefill ran speculatively, during the endpoint wait.
    speculative: bool = False


@dataclass
class Event:
    """Base class of the events."""


@dataclass
class SpeechStarted(Event):
    at_ms: int


@dataclass
class SpeechEnded(Event):
    at_ms: int


@dataclass
class TurnStarted(Event):
    turn: int
    audio_ms: int


@dataclass
class Text(Event):
    """One generated token and the text it completes (may be empty)."""

    turn: int
    text: str
    token: int


@dataclass
class Units(Event):
    turn: int
    units: list


@dataclass
class Audio(Event):
    """Answer audio: mono float32 PCM (a numpy array when numpy is installed, else array('f'))."""

    turn: int
    seq: int
    pcm: Any
    sample_rate: int


@dataclass
class TurnDone(Event):
    turn: int
    text: str
    timings: Timings


@dataclass
class Interrupted(Event):
    turn: int
    reason: InterruptReason  # BARGE_IN, CANCEL or RESUMED (the question continued; see Session.played)
    text: str


@dataclass
class WarningEvent(Event):
    message: str


@dataclass
class ErrorEvent(Event):
    code: ErrorCode  # NO_SPEECH, INVALID_INPUT, MODEL, INTERNAL
    message: str
    recoverable: bool


def _enum(cls, v: int):
    return cls(v) if v in cls._value2member_map_ else v


def _text(ev: _Event) -> str:
    return ctypes.string_at(ev.text, ev.text_len).decode("utf-8", "replace") if ev.text else ""


def _convert(ev: _Event) -> Event:
    t = ev.type
    if t == EventType.SPEECH_STARTED:
        return SpeechStarted(ev.at_ms)
    if t == EventType.SPEECH_ENDED:
        return SpeechEnded(ev.at_ms)
    if t == EventType.TURN_STARTED:
        return TurnStarted(ev.turn, ev.audio_ms)
    if t == EventType.TEXT:
        return Text(ev.turn, _text(ev), ev.token)
    if t == EventType.UNITS:
        return Units(ev.turn, ev.units[: ev.n_units] if ev.n_units else [])
    if t == EventType.AUDIO:
        raw = ctypes.string_at(ev.pcm, ev.n_pcm * 4) if ev.n_pcm else b""
        if _np is not None:
            pcm = _np.frombuffer(raw, dtype=_np.float32).copy()
        else:
            pcm = array.array("f")
            pcm.frombytes(raw)
        return Audio(ev.turn, ev.seq, pcm, ev.sample_rate)
    if t == EventType.TURN_DONE:
        tm = ev.timings
        opt = lambda x: None if x < 0 else x  # noqa: E731
        timings = Timings(
            tm.encode_ms, tm.prefill_ms, opt(tm.first_text_ms), opt(tm.first_audio_ms), tm.total_ms,
            tm.speech_decoder_ms, tm.vocoder_ms, tm.tokens_per_s, tm.audio_s, tm.real_time_factor,
            tm.tokens, tm.units, ev.endpoint_wait_ms, bool(ev.speculative),
        )
        return TurnDone(ev.turn, _text(ev), timings)
    if t == EventType.INTERRUPTED:
        return Interrupted(ev.turn, _enum(InterruptReason, ev.interrupt_reason), _text(ev))
    msg = (ev.message or b"").decode("utf-8", "replace")
    if t == EventType.WARNING:
        return WarningEvent(msg)
    if t == EventType.ERROR:
        return ErrorEvent(_enum(ErrorCode, ev.error_code), msg, bool(ev.recoverable))
    return WarningEvent(f"unknown event type {t}")


# ----------------------------------------------------------------------------- model and session


class Model:
    """A loaded model, shared by any number of sessions (thread-safe).

    progress: optional callable(stage: str, done: int, total: int), called during loading; an exception
    it raises is re-raised after loading stops.
    """

    def __init__(
        self,
        model_dir: Union[str, os.PathLike],
        vocoder_dir: Union[str, os.PathLike],
        device: str = "cpu",
        dtype: str = "f32",
        speech_encoder: Optional[Union[str, os.PathLike]] = None,
        progress: Optional[Callable[[str, int, int], Any]] = None,
    ):
        self._ptr = None
        if dtype.lower() not in _DTYPES:
            raise ValueError(f"dtype {dtype!r} is not one of f32, f16, bf16, q8_0, q4_0")
        opts = _ModelOptions(struct_size=ctypes.sizeof(_ModelOptions))
        _check(_lib.omni_model_options_default(ctypes.byref(opts)))
        opts.device = _cstr(device)
        opts.dtype = _DTYPES[dtype.lower()]
        opts.speech_encoder = _cstr(speech_encoder)
        failure = []

        def on_progress(stage, done, total, _user):
            if progress is not None and not failure:
                try:
                    progress(stage.decode("utf-8", "replace"), done, total)
                except BaseException as e:  # noqa: BLE001 - re-raised below, never into C
                    failure.append(e)

        cb = _PROGRESS(on_progress)
        out = _P()
        status = _lib.omni_model_load(_cstr(model_dir), _cstr(vocoder_dir), ctypes.byref(opts), cb, None,
                                      ctypes.byref(out))
        _check(status)
        self._ptr = out
        if failure:
            self.close()
            raise failure[0]

    def _handle(self) -> _P:
        if not self._ptr:
            raise ValueError("the model is closed")
        return self._ptr

    def default_session_options(self) -> dict:
        """The session options' defaults for this model, as a dict (strings None = built-in default)."""
        o = _SessionOptions(struct_size=ctypes.sizeof(_SessionOptions))
        _check(_lib.omni_session_options_default(self._handle(), ctypes.byref(o)))
        d = {name: getattr(o, name) for name, _ in _SessionOptions._fields_ if name != "struct_size"}
        d["endpointing"], d["barge_in"] = bool(d["endpointing"]), bool(d["barge_in"])
        return d

    def session(self, **options) -> "Session":
        """A new session. Options (all optional): max_new_tokens, temperature, top_p, seed,
        first_chunk_units, chunk_units, endpointing (bool), trailing_silence_ms, vad_threshold,
        barge_in (bool), system_prompt, user_message, max_context, event_capacity, resume_grace_ms,
        speculative_start (bool), max_turn_s. endpointing=False is explicit mode (files, push-to-talk)."""
        return Session(self, **options)

    def close(self) -> None:
        """Frees the model (sessions made from it stay usable). Idempotent."""
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr and _lib is not None:  # _lib is None during interpreter shutdown
            _lib.omni_model_free(ptr)

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()


class Session:
    """One conversation: push audio in, read events out. Use Model.session(**options)."""

    def __init__(self, model: Model, **options):
        self._ptr = None
        o = _SessionOptions(struct_size=ctypes.sizeof(_SessionOptions))
        _check(_lib.omni_session_options_default(model._handle(), ctypes.byref(o)))
        known = {name for name, _ in _SessionOptions._fields_} - {"struct_size"}
        for k, v in options.items():
            if k not in known:
                raise TypeError(f"unknown session option {k!r} (known: {', '.join(sorted(known))})")
            if k in ("system_prompt", "user_message"):
                v = _cstr(v)
            elif k in ("endpointing", "barge_in", "speculative_start"):
                v = int(bool(v))
            setattr(o, k, v)
        out = _P()
        _check(_lib.omni_session_new(model._handle(), ctypes.byref(o), ctypes.byref(out)))
        self._ptr = out

    def _handle(self) -> _P:
        if not self._ptr:
            raise ValueError("the session is closed")
        return self._ptr

    def push(self, samples, sample_rate: int = 16000) -> None:
        """Pushes mono audio at sample_rate Hz: a numpy array (int16 or float), a list/tuple of floats in
        [-1, 1], array('f' | 'd' | 'h'), or bytes-like int16 little-endian PCM. Copied by the library."""
        h = self._handle()
        if _np is not None and isinstance(samples, _np.ndarray):
            if samples.ndim != 1:
                raise ValueError(f"samples must be 1-D (mono), got shape {samples.shape}")
            if samples.dtype == _np.int16:
                a = _np.ascontiguousarray(samples)
                _check(_lib.omni_session_push_i16(h, a.ctypes.data, a.size, sample_rate))
            else:
                a = _np.ascontiguousarray(samples, dtype=_np.float32)
                _check(_lib.omni_session_push_f32(h, a.ctypes.data, a.size, sample_rate))
            return
        if isinstance(samples, (bytes, bytearray, memoryview)):
            raw = bytes(samples)
            if len(raw) % 2:
                raise ValueError("int16 PCM bytes must have an even length")
            a = array.array("h")
            a.frombytes(raw)
            if sys.byteorder == "big":
                a.byteswap()
        elif isinstance(samples, array.array) and samples.typecode in ("h", "f"):
            a = samples
        else:
            a = array.array("f", samples)
        fn = _lib.omni_session_push_i16 if a.typecode == "h" else _lib.omni_session_push_f32
        ptr = a.buffer_info()[0] if len(a) else None
        _check(fn(h, ptr, len(a), sample_rate))

    def end_turn(self) -> None:
        """Ends the user's turn now: the turn is every sample pushed since the last one (nothing trimmed);
        the answer streams as events (a turn without speech gives an Error(code="no_speech") event)."""
        _check(_lib.omni_session_end_turn(self._handle()))

    def push_text(self, text: str) -> None:
        """A typed user turn, answered with text and speech like a spoken one, in the same history."""
        _check(_lib.omni_session_push_text(self._handle(), text.encode("utf-8")))

    def played(self, turn: int, samples: int) -> None:
        """Reports that the app has played the first `samples` samples of `turn`'s answer audio. An
        interrupted answer keeps in the history only the tokens whose audio was played."""
        _check(_lib.omni_session_played(self._handle(), turn, samples))

    def cancel(self) -> None:
        """Stops every committed turn (the answer being generated and those waiting; no-op when none)."""
        _check(_lib.omni_session_cancel(self._handle()))

    def reset(self) -> None:
        """Forgets the conversation: cancels committed turns, drops pending input, clears the history."""
        _check(_lib.omni_session_reset(self._handle()))

    @property
    def busy(self) -> bool:
        """Whether a committed turn has not had its last event yet (true from end_turn on)."""
        b = ctypes.c_bool()
        _check(_lib.omni_session_is_busy(self._handle(), ctypes.byref(b)))
        return b.value

    def poll(self, timeout: Optional[float] = 0.0) -> Optional[Event]:
        """The next event, waiting up to `timeout` seconds (None: until one comes); None on timeout."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            # Waits in slices of <= 100 ms so Ctrl-C stays responsive.
            if deadline is None:
                ms = 100
            else:
                ms = max(0, min(100, math.ceil((deadline - time.monotonic()) * 1000)))
            out = ctypes.POINTER(_Event)()
            _check(_lib.omni_session_poll(self._handle(), ms, ctypes.byref(out)))
            if out:
                try:
                    return _convert(out.contents)
                finally:
                    _lib.omni_event_free(out)
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def events(self, timeout: Optional[float] = None, until_turn_end: bool = True) -> Iterator[Event]:
        """Yields events as they arrive. Stops after TurnDone or Interrupted (unless until_turn_end is
        False), after a non-recoverable Error, or when no event comes within `timeout` seconds
        (None: wait as long as it takes)."""
        while True:
            ev = self.poll(timeout)
            if ev is None:
                return
            yield ev
            if until_turn_end and isinstance(ev, (TurnDone, Interrupted)):
                return
            if isinstance(ev, ErrorEvent) and not ev.recoverable:
                return

    def close(self) -> None:
        """Frees the session (stops its answer, joins its worker). Idempotent."""
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr and _lib is not None:  # _lib is None during interpreter shutdown
            _lib.omni_session_free(ptr)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()


def set_log_callback(fn: Optional[Callable[[LogLevel, str], None]], max_level: LogLevel = LogLevel.WARN) -> None:
    """Routes omni's log messages (model loads, turn warnings and failures) to fn(level, message), from
    any thread; None stops them. Exceptions raised by fn are printed and swallowed."""
    global _log_cb
    if fn is None:
        _check(_lib.omni_set_log_callback(_LOG_FN(), int(max_level), None))  # a NULL function pointer
        _log_cb = None
        return

    def call(level, message, _user):
        try:
            fn(_enum(LogLevel, level), (message or b"").decode("utf-8", "replace"))
        except Exception:  # noqa: BLE001 - must not unwind into C
            import traceback

            traceback.print_exc()

    cb = _LOG_FN(call)
    _check(_lib.omni_set_log_callback(cb, int(max_level), None))
    _log_cb = cb  # kept alive while set


_log_cb = None

__all__ = [
    "ABI_VERSION", "NO_TOKEN", "Audio", "AudioError", "DeviceError", "ErrorCode", "ErrorEvent", "Event",
    "EventType", "InternalError", "InterruptReason", "Interrupted", "InvalidArgumentError", "IoError",
    "LogLevel", "Model", "ModelError", "NullArgumentError", "OmniError", "Session", "SessionFailedError",
    "SpeechEnded", "SpeechStarted", "Status", "StructSizeError", "Text", "Timings", "TurnDone", "TurnStarted",
    "Units", "WarningEvent", "abi_version", "set_log_callback", "version",
]
