"""Course narration: the player the notebooks use (``from mdn_course.narration import play``),
the author-side builder (``build``: text-to-speech, manifest, pack) and their command line (``cli``)."""
from .player import NarrationPackError, download_pack, find_audio, find_transcript, play

__all__ = ["play", "find_audio", "find_transcript", "download_pack", "NarrationPackError"]
