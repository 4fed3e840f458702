"""Course machinery around the notebooks, none of it imported by the lessons.

``notebook_runner`` (run the series headless, refresh stored outputs), ``nbval_numbers``
(the nbval plugin that compares decimal numbers within a tolerance), ``notebook_sync``
(badges and Colab install cells from ``mdn_course.links``), ``lab`` (the student's local
workspace) and ``bench`` (benchmarks)."""
