#!/bin/bash
# Fails, naming each file, when a C++ file of the project is not formatted
# as .clang-format says (Google style). Fix with:
#   clang-format -i $(git ls-files '*.cc' '*.h')
# Exit 77 (skipped) when clang-format is missing; tests/setup.sh installs it.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed" >&2; exit 77; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cc' '*.h')
else
  mapfile -t files < <(find src tests -name '*.cc' -o -name '*.h' | sort)
fi
[ ${#files[@]} -gt 0 ] || { echo "format: no C++ files found" >&2; exit 1; }
bad=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "format: ${#bad[@]} of ${#files[@]} files differ from .clang-format:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "format: fix with clang-format -i FILE..." >&2
  exit 1
fi
echo "format: ${#files[@]} files match .clang-format"
