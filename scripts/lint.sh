#!/usr/bin/env bash
# Lint (CI runs it; takes ~15 s):
#   luacheck     the Lua: bindings/lua, the chunks embedded in the binary
#                (runtime/embedded, bindings/embedded), scripts, tests (.luacheckrc)
#   cppcheck     the C: runtime, bindings, tests (warning, performance, portability)
#   clang-format the C lines changed since the commit in .clang-format-since
#                (git clang-format; lines nobody touched are left as they are)
#
#   scripts/lint.sh           check; exit status 1 if luacheck or clang-format finds anything
#   scripts/lint.sh --fix     format the changed C lines in place, then check
# Environment:
#   JETLUA_LINT_CPPCHECK_STRICT=1  cppcheck findings fail the run too. Without it they are
#                                  printed and counted but do not change the exit status.
#   JETLUA_LINT_BASE=COMMIT        check the format of the C lines changed since COMMIT
#                                  instead (e.g. origin/main, to check only a branch's work)
set -uo pipefail
cd "$(dirname "$0")/.."

fix=0
case "${1:-}" in
  --fix) fix=1 ;;
  "") ;;
  *) echo "usage: scripts/lint.sh [--fix]" >&2; exit 2 ;;
esac

status=0
fail() { echo "lint: $*"; status=1; }

for tool in luacheck cppcheck clang-format git-clang-format; do
  command -v "$tool" >/dev/null || { echo "lint: $tool is missing (run scripts/setup.sh)"; exit 2; }
done

echo "== luacheck"
if ! luacheck --no-color --quiet --codes bindings/lua runtime/embedded bindings/embedded scripts tests; then
  fail "luacheck found problems (see above)"
fi

echo "== cppcheck"
cppout=$(mktemp)
trap 'rm -f "$cppout"' EXIT
strict=${JETLUA_LINT_CPPCHECK_STRICT:-0}
cppcheck --quiet --std=c11 --enable=warning,performance,portability --inline-suppr \
  --error-exitcode=$([ "$strict" = 1 ] && echo 1 || echo 0) \
  --library=posix --library=gnu --library=lua --library=openssl \
  --library=scripts/lint/cppcheck.cfg --suppressions-list=scripts/lint/cppcheck-suppressions.txt \
  -D_GNU_SOURCE -I runtime -I bindings \
  --template='{file}:{line}: {severity}: {message} [{id}]' \
  runtime bindings tests/unit tests/bench >"$cppout" 2>&1
rc=$?
cat "$cppout"
n=$(grep -c ': \(error\|warning\|performance\|portability\|style\|information\): ' "$cppout")
if [ "$strict" = 1 ] && [ "$n" -gt 0 ]; then
  fail "cppcheck: $n finding(s)"
elif [ $rc != 0 ] || grep -q '^cppcheck: error' "$cppout"; then
  fail "cppcheck did not run (status $rc)"
elif [ "$n" -gt 0 ]; then
  echo "lint: cppcheck: $n finding(s), reported only (JETLUA_LINT_CPPCHECK_STRICT=1 fails on them)"
fi

echo "== clang-format (C lines changed since the base)"
base=${JETLUA_LINT_BASE:-$(grep -v '^#' .clang-format-since | head -n1)}
gcf=(/usr/bin/python3 "$(command -v git-clang-format)" --extensions c,h)
if ! git rev-parse -q --verify "$base^{commit}" >/dev/null; then
  if [ -n "${JETLUA_LINT_BASE:-}" ]; then
    fail "clang-format: JETLUA_LINT_BASE=$base is not a commit"
  else
    # a shallow clone lacks the recorded base: nothing to compare with
    echo "lint: clang-format: commit $base is not in this clone (shallow?); format check skipped"
  fi
else
  if [ $fix = 1 ]; then
    "${gcf[@]}" --force --quiet "$base" -- runtime bindings tests
  fi
  if ! out=$("${gcf[@]}" --diff "$base" -- runtime bindings tests 2>&1); then
    echo "$out"
    fail "git clang-format did not run"
  elif [ "${out#diff }" != "$out" ]; then
    echo "$out"
    fail "clang-format: the C lines above, changed since ${base:0:12}, are not formatted (scripts/lint.sh --fix formats them)"
  fi
fi

[ $status = 0 ] && echo "lint: ok"
exit $status
