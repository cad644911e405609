#!/usr/bin/env bash
# Lint (.ci/run runs it; ~15 s on 2 cores). Exit status 1 if any check finds something.
#   luacheck      every .lua file of the tree (bindings/lua, the chunks embedded in the
#                 binary, bindings/types, scripts and scripts/examples, tests), as .luacheckrc says
#   cppcheck      every .c file (runtime, bindings, tests): warning, style, performance,
#                 portability; suppressions are documented in scripts/lint/cppcheck-suppressions.txt
#                 or next to the code (/* cppcheck-suppress id ; why */)
#   pipelines     no shell script under `set -o pipefail` reads a pipe with a reader that stops
#                 early (`| head`, `| awk '... exit'`): the writer dies of SIGPIPE, pipefail
#                 makes the pipeline fail, and `set -e` ends the script at random (test_deb.sh
#                 did, silently, in 1 of 20 runs). Read to the end instead (awk 'NR == 1').
#   clang-format  the C lines a change touches (git clang-format, .clang-format): those that
#                 differ between the base and the work tree. Lines nobody touched keep their
#                 history; a file is never reformatted as a whole.
#
#   scripts/lint.sh           check
#   scripts/lint.sh --fix     first format the changed C lines in place (git clang-format)
# The base of the format check:
#   on a branch               the merge base with main (or origin/main): the branch's own work
#                             plus uncommitted edits; merging main into the branch adds nothing.
#   on main                   HEAD^, the previous commit (its first parent): CI on a fresh clone
#                             of main checks what the last commit changed (for the merge of a
#                             branch: everything that branch brings). When HEAD has no parent
#                             (the first commit, a --depth 1 clone) the check is skipped with a
#                             note.
#   JETLUA_LINT_BASE=COMMIT   the lines changed since COMMIT instead. An unknown COMMIT is an error.
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

for tool in luacheck cppcheck clang-format git-clang-format git; do
  command -v "$tool" >/dev/null || { echo "lint: $tool is missing (run scripts/setup.sh)"; exit 2; }
done

# the tree's own files: not .git, not the build directories (build, build-asan, ...)
files() { find . \( -path ./.git -o -path './build*' \) -prune -o -type f -name "$1" -print | sort; }

echo "== luacheck"
mapfile -t lua < <(files '*.lua')
if ! luacheck --no-color --quiet --codes "${lua[@]}"; then
  fail "luacheck found problems (see above)"
fi

echo "== cppcheck"
mapfile -t csrc < <(files '*.c')
cppout=$(mktemp)
trap 'rm -f "$cppout"' EXIT
cppcheck --quiet --std=c11 --enable=warning,style,performance,portability --inline-suppr \
  -j 2 --error-exitcode=1 \
  --library=posix --library=gnu --library=lua --library=openssl \
  --suppressions-list=scripts/lint/cppcheck-suppressions.txt \
  -D_GNU_SOURCE -I runtime -I bindings \
  --template='{file}:{line}: {severity}: {message} [{id}]' \
  "${csrc[@]}" >"$cppout" 2>&1
rc=$?
cat "$cppout"
n=$(grep -c ': \(error\|warning\|performance\|portability\|style\|information\): ' "$cppout")
if [ "$n" -gt 0 ]; then
  fail "cppcheck: $n finding(s) (see above)"
elif [ $rc != 0 ]; then
  fail "cppcheck did not run (status $rc)"
fi

echo "== shell pipelines (no early-exiting reader under pipefail)"
mapfile -t sh < <(files '*.sh'; echo ./.ci/run)
for f in "${sh[@]}"; do
  grep -q 'pipefail' "$f" || continue
  hits=$(grep -nE "\|[[:space:]]*(head([[:space:]]|\$|\))|awk[^|]*[{;][[:space:]]*exit[[:space:]]*})" "$f")
  [ -z "$hits" ] || fail "$f: a reader that stops early under pipefail (SIGPIPE ends the script at random):
$hits"
done

echo "== clang-format (the C lines changed since the base)"
gcf=(/usr/bin/python3 "$(command -v git-clang-format)" --extensions c,h)
base=${JETLUA_LINT_BASE:-}
if ! git rev-parse -q --verify HEAD >/dev/null 2>&1; then
  echo "lint: clang-format: not a git checkout with a commit; format check skipped"
  base=
elif [ -n "$base" ]; then
  if ! git rev-parse -q --verify "$base^{commit}" >/dev/null; then
    fail "clang-format: JETLUA_LINT_BASE=$base is not a commit here"
    base=
  fi
else
  # on a branch: its work since it left main (a merge of main into it brings nothing new)
  for m in refs/heads/main refs/remotes/origin/main; do
    git rev-parse -q --verify "$m" >/dev/null || continue
    mb=$(git merge-base HEAD "$m" 2>/dev/null) || continue
    [ "$mb" != "$(git rev-parse HEAD)" ] && base=$mb
    break
  done
  # on main itself: the last commit (a merge: the merged branch)
  if [ -z "$base" ] && git rev-parse -q --verify 'HEAD^1^{commit}' >/dev/null; then
    base=$(git rev-parse HEAD^1)
  fi
  [ -n "$base" ] || echo "lint: clang-format: HEAD has no parent here (first commit, or a shallow clone); format check skipped"
fi
if [ -n "$base" ]; then
  echo "base: $(git log -1 --format='%h %s' "$base")"
  if [ $fix = 1 ]; then
    "${gcf[@]}" --force --quiet "$base"
  fi
  out=$("${gcf[@]}" --diff "$base" 2>&1)
  rc=$?
  if [ "${out#diff }" != "$out" ]; then
    echo "$out"
    fail "clang-format: the C lines above, changed since ${base:0:12}, are not formatted (scripts/lint.sh --fix formats them)"
  elif [ $rc != 0 ]; then
    echo "$out"
    fail "git clang-format did not run (status $rc)"
  fi
fi

[ $status = 0 ] && echo "lint: ok"
exit $status
