"""The trust boundary: the only code of the course that runs next to student code.

``oracle.py`` calls a student's function and reports facts (in the notebook in-process; in the
grader inside the sandbox) and defines every message between the grader and the sandbox, and
what differs between exercises (``SPECS``); ``server.py`` is the sandbox's main program;
``step_oracle.py`` hands the training-step exercise a real model and optimiser; ``mdn_rnn.py``
is the MDN-RNN and its loss, the one definition the library re-exports. The grader copies into
each sandbox only the files its exercise needs (a loss answer gets ``oracle.py`` and
``server.py`` alone), so they import only the standard library and torch, never the rest of the
package, and they decide nothing: every judge, truth, point and record lives outside.
"""
