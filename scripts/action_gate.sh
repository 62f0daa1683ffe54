#!/usr/bin/env bash
# The gate of action.yml (the composite GitHub Action at the top of this repository). It also
# runs on any machine with lsfix installed, which is how tests/test_action.py runs it:
#
#   INPUT_BASELINE=base.h5 INPUT_CANDIDATES=new.h5 INPUT_FAIL_IF='eaurc>+5%' \
#     bash scripts/action_gate.sh
#
# Inputs (environment, as the action passes them):
#   INPUT_BASELINE    baseline file (required)          INPUT_CANDIDATES  files, blank-separated
#   INPUT_SCORES      scores, blank- or comma-separated (default msp)
#   INPUT_FAIL_IF     gate rules, blank- or newline-separated (METRIC OP VALUE, see README)
#   INPUT_BOOTSTRAP   paired bootstrap replicates (default 1000)
#   INPUT_GATE        interval (default: a rule fails when its whole bootstrap interval breaches
#                     it, is inconclusive, exit 5, when the interval straddles it) or point
#   INPUT_REPORT      Markdown report path (default lsfix-report/pr-comment.md)
#   INPUT_COMMENT     "true": post the report on the pull request with `gh pr comment`
#   GH_TOKEN          token for gh (the action passes github.token)
# Outputs: exit-code and report in $GITHUB_OUTPUT; the report is added to $GITHUB_STEP_SUMMARY.
# Exit status: lsfix's (0 pass, 4 a rule broke, 5 a rule undecided, anything else an error;
# see README).
set -uo pipefail
set -f  # rules such as aurc>0.08 are never globbed

baseline=${INPUT_BASELINE:?INPUT_BASELINE: the baseline file}
report=${INPUT_REPORT:-lsfix-report/pr-comment.md}
args=(compare "$baseline")
for f in ${INPUT_CANDIDATES:?INPUT_CANDIDATES: the candidate file(s)}; do args+=("$f"); done
scores=${INPUT_SCORES:-msp}
for s in ${scores//,/ }; do args+=(--score "$s"); done
for rule in ${INPUT_FAIL_IF:-}; do args+=(--fail-if "$rule"); done
args+=(--bootstrap "${INPUT_BOOTSTRAP:-1000}" --gate "${INPUT_GATE:-interval}" --report "$report"
       -f table)
mkdir -p "$(dirname "$report")"

echo "+ lsfix ${args[*]}" >&2
lsfix "${args[@]}"
code=$?

if [ -n "${GITHUB_OUTPUT:-}" ]; then
  { echo "exit-code=$code"; echo "report=$report"; } >> "$GITHUB_OUTPUT"
fi
if [ -f "$report" ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "$report" >> "$GITHUB_STEP_SUMMARY"
fi
if [ "${INPUT_COMMENT:-false}" = "true" ] && [ -f "$report" ]; then
  pr=""
  if [ -n "${GITHUB_EVENT_PATH:-}" ] && [ -f "$GITHUB_EVENT_PATH" ]; then
    pr=$(python3 -c 'import json, sys; e = json.load(open(sys.argv[1]))
print((e.get("pull_request") or {}).get("number", ""))' "$GITHUB_EVENT_PATH")
  fi
  if [ -n "$pr" ] && command -v gh >/dev/null; then
    gh pr comment "$pr" --body-file "$report" || echo "lsfix action: could not comment" >&2
  else
    echo "lsfix action: not a pull request (or no gh): report not posted" >&2
  fi
fi
exit "$code"
