"""A stand-in for Colab's ``google.colab`` (offline, for the mdn-course Colab stand-in in tests/).

Importing it is what makes ``"google.colab" in sys.modules`` true, as in a Colab kernel, where the
lessons' install cells then clone and install the course. ``output``, ``drive`` and ``files`` offer
the calls the course makes, with the behaviour a test can observe:

* ``drive.mount(path)`` links ``path`` to the folder named by ``$COLAB_STANDIN_DRIVE`` (one folder
  shared by every lesson's runtime, as one Google Drive is); with ``$COLAB_STANDIN_DRIVE_DECLINE=1``
  it fails the way Colab does when the student refuses access;
* ``files.download(path)`` copies the file into ``$COLAB_STANDIN_DOWNLOADS`` (the student's downloads);
* ``output.enable_custom_widget_manager()`` and friends record that they were called.

Every call is appended to ``CALLS`` so that a notebook run can report what the course asked of Colab.
"""
CALLS = []

from . import drive, files, output  # noqa: E402,F401  (after CALLS: the submodules record into it)
