import sys

from .autograder import main

sys.exit(main())
