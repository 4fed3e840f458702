"""Course machinery around the notebooks, none of it imported by the lessons (it needs the dev extras).

``notebooks`` (what the notebook tools share: where the notebooks are, how one is stored, the
Colab badge), ``student_version`` (the exercise's student copy and check cells), ``notebook_sync``
(badges and Colab install cells from ``mdn_course.links``), ``notebook_runner`` (run the series
headless, refresh stored outputs), ``nbval_numbers`` (the nbval plugin that compares decimal
numbers within a tolerance), ``lab`` (the student's local workspace), ``train`` and ``bench``
(the ``train`` and ``bench`` commands)."""
