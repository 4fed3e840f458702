"""The trust boundary: the only code of the course that runs next to student code.

``oracle.py`` calls a student's function and reports facts (in the notebook in-process; in the
grader inside the sandbox) and defines every message between the grader and the sandbox;
``server.py`` is the sandbox's main program. The grader copies these two files, alone, into
its sandbox, so they import only the standard library and torch, never the rest of the
package, and they decide nothing: every judge, truth, point and record lives outside.
"""
