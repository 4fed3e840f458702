"""``drive.mount``: Google Drive as a folder (here: ``$COLAB_STANDIN_DRIVE``, which holds ``MyDrive``)."""
import os

from . import CALLS
from ._message import MessageError


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    CALLS.append(("drive.mount", str(mountpoint)))
    if os.environ.get("COLAB_STANDIN_DRIVE_DECLINE") == "1":
        raise MessageError("Error: credential propagation was unsuccessful")
    target = os.environ.get("COLAB_STANDIN_DRIVE")
    if not target or not os.path.isdir(os.path.join(target, "MyDrive")):
        raise MessageError("Colab stand-in: $COLAB_STANDIN_DRIVE names no folder holding MyDrive/")
    mountpoint = os.path.abspath(os.path.expanduser(str(mountpoint)))
    if os.path.islink(mountpoint) and not force_remount:
        print(f'Drive already mounted at {mountpoint}; to attempt to forcibly remount, call '
              f'drive.mount("{mountpoint}", force_remount=True).')
        return
    if os.path.islink(mountpoint):
        os.unlink(mountpoint)
    elif os.path.exists(mountpoint) and (not os.path.isdir(mountpoint) or os.listdir(mountpoint)):
        raise ValueError("Mountpoint must not already contain files")
    elif os.path.isdir(mountpoint):
        os.rmdir(mountpoint)
    os.symlink(target, mountpoint)
    print(f"Mounted at {mountpoint}")


def flush_and_unmount(timeout_ms=86400000):
    CALLS.append(("drive.flush_and_unmount", None))
