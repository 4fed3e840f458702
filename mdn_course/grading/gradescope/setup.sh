#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip python3-venv bubblewrap ca-certificates
python3 -m venv /opt/mdn-grader
/opt/mdn-grader/bin/pip install --upgrade pip
/opt/mdn-grader/bin/pip install --index-url https://download.pytorch.org/whl/cpu "torch=={torch}"
/opt/mdn-grader/bin/pip install /autograder/source/mdn_course_src
# the grader runs as root; student code runs as uid 65534, which must not read the course's code
chmod -R go-rwx /autograder/source /opt/mdn-grader/lib/python3*/site-packages/mdn_course
