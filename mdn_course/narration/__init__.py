"""Course narration. What lessons use (standard library only): ``player`` (``play``: show a segment),
``locate`` (find its transcript and audio), ``pack`` (validate and download the narration pack).
What authors use: ``build`` (text-to-speech, manifest, staleness, the pack) and ``cli``
(``python -m mdn_course narration ...``)."""
from .locate import find_audio, find_transcript
from .pack import NarrationPackError, download_pack
from .player import play

__all__ = ["play", "find_audio", "find_transcript", "download_pack", "NarrationPackError"]
