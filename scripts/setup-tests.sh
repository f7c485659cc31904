#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine with Python 3.11:
# the Python packages (requirements-dev.txt), Chromium for the browser tests and the fonts
# the screenshots need (emoji in the quiz buttons). Safe to run again: it only installs
# what is missing. Quiet when all goes well; on a failure it prints the step, the command's
# output and exits non-zero.
#
#   scripts/setup-tests.sh            # then: python -m pytest
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
APT_PACKAGES=(chromium fonts-dejavu-core fonts-liberation fonts-noto-color-emoji)
LOG="$(mktemp -t gauntlet-setup.XXXXXX)"
trap 'status=$?; if [ $status -ne 0 ]; then echo "setup-tests.sh: FAILED during: ${STEP:-?}" >&2; tail -n 40 "$LOG" >&2; fi; rm -f "$LOG"' EXIT

step() { STEP="$1"; shift; "$@" >>"$LOG" 2>&1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

STEP="checking Python"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] >= (3, 11), sys.version' >>"$LOG" 2>&1

step "installing Python packages (requirements-dev.txt)" \
    "$PYTHON" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ! -x /usr/bin/chromium ] || [ ${#missing[@]} -gt 0 ]; then
    step "apt-get update" as_root apt-get update -qq
    step "installing ${missing[*]:-chromium}" \
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]:-chromium}"
fi

step "checking Chromium" /usr/bin/chromium --headless --no-sandbox --disable-gpu --version
step "checking the Python imports" "$PYTHON" -c 'import gradio, gradio_client, torch, PIL, lime, pytorch_grad_cam, playwright, pytest, pytest_timeout'
echo "setup-tests.sh: ready ($("$PYTHON" --version), $(/usr/bin/chromium --version 2>/dev/null | head -n 1))"
