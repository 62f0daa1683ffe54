#!/usr/bin/env bash
# Newcomer check: a fresh clone of this repository's main, a fresh venv, and the README's two commands
# verbatim (set-up, then the test command). Usage: scripts/newcomer_check.sh [DIR]; STRESS=1 adds 2
# busy loops while it runs. Remove Debian's dataset-fashion-mnist and darknet first to check a bare machine.
set -uo pipefail
D=${1:-/tmp/fresh-$(date +%H%M%S)}
rm -rf "$D"; git clone -q "$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)" "$D" && cd "$D" || exit 1
python3 -m venv .venv && . .venv/bin/activate && python -m pip install -q --upgrade pip >/dev/null 2>&1
SETUP=$(grep -m1 -E '^pip install \. && lsfix ' README.md)
TESTCMD=$(grep -m1 -E '^pip install .*torch==.* && python -m pytest' README.md)
echo "SETUP: $SETUP"; echo "TEST: $TESTCMD"
if [ "${STRESS:-0}" = 1 ]; then ( for i in 1 2; do ( while :; do :; done ) & done; wait ) & SP=$!; fi
start=$(date +%s)
bash -c "$SETUP" > setup.log 2>&1; echo "setup rc=$? ($(( $(date +%s)-start )) s)"; tail -3 setup.log
start=$(date +%s)
bash -c "$TESTCMD" > test.log 2>&1; echo "test rc=$? ($(( $(date +%s)-start )) s)"; tail -5 test.log
[ -n "${SP:-}" ] && { pkill -P $SP; kill $SP; pkill -f 'while :; do :; done'; } 2>/dev/null
true
