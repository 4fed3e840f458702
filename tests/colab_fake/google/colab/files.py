"""``files.download``: in Colab the browser downloads the file; here it lands in ``$COLAB_STANDIN_DOWNLOADS``."""
import os
import shutil

from . import CALLS


def download(filename):
    CALLS.append(("files.download", str(filename)))
    if not os.path.exists(filename):
        raise FileNotFoundError(f"Cannot find file: {filename}")
    target = os.environ.get("COLAB_STANDIN_DOWNLOADS")
    if target:
        os.makedirs(target, exist_ok=True)
        shutil.copy(filename, os.path.join(target, os.path.basename(filename)))
