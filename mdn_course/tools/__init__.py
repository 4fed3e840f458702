"""Course machinery for maintainers: run the series headless (``notebook_runner``) and benchmark (``bench``).

Nothing here is imported by the lessons."""
