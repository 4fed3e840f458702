"""Where the course lives on the web: the one setting every badge, install cell and download follows.

Change ``GITHUB_REPO`` (and ``BRANCH``) here when the repository moves, then run
``python -m mdn_course sync-notebooks`` to rewrite the lessons' Colab badges and
install cells; ``tests/test_colab.py`` fails until that is done. Everything else
(the narration pack URL, the Colab addresses) is derived from these two values.

Two environment variables point a run somewhere else without editing anything,
which is how the tests use a local stand-in:

* ``MDN_COURSE_REPO_URL``: the git URL the Colab install cell clones;
* ``MDN_COURSE_NARRATION_URL``: the narration pack zip the player downloads
  (read by :mod:`mdn_course.narration.player`).

Standard library only: the narration player imports this in a bare Colab runtime.
"""
from __future__ import annotations

__all__ = ["GITHUB_REPO", "BRANCH", "REPO_URL", "PACK_ASSET", "PACK_URL", "ENV_REPO_URL", "colab_url",
           "github_url"]

#: GitHub "owner/name" of the course repository.
GITHUB_REPO = "mdn-course/mdn-course"
#: The branch Colab badges open.
BRANCH = "main"

#: What the Colab install cell clones (overridden by ``$MDN_COURSE_REPO_URL``).
REPO_URL = f"https://github.com/{GITHUB_REPO}"
#: Environment variable that overrides :data:`REPO_URL` in the install cell.
ENV_REPO_URL = "MDN_COURSE_REPO_URL"

#: File name of the narration pack attached to every GitHub release
#: (built by ``python -m mdn_course narration pack narration-pack.zip``).
PACK_ASSET = "narration-pack.zip"
#: The narration pack the player downloads when the audio is not on disk: the asset of the latest release.
PACK_URL = f"{REPO_URL}/releases/latest/download/{PACK_ASSET}"


def colab_url(notebook_name: str) -> str:
    """The "Open in Colab" address of ``notebooks/<notebook_name>`` on :data:`BRANCH`."""
    return f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/{BRANCH}/notebooks/{notebook_name}"


def github_url(path: str) -> str:
    """The web address of a file of the repository on :data:`BRANCH` (``path`` relative to its root)."""
    return f"{REPO_URL}/blob/{BRANCH}/{path}"
