#!/usr/bin/env bash
# Formats the C sources of src/, tests/, fuzz/ and bench/ with clang-format and
# the committed .clang-format.
#
# Usage: scripts/format.sh          rewrite files in place
#        scripts/format.sh --check  change nothing; list each file whose
#                                   formatting differs and exit 1 if any does
# Fuzz corpora are data, not code, and are never touched.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

check=0
for arg in "$@"; do
	case "$arg" in
	--check) check=1 ;;
	*)
		echo "format: unknown argument '$arg' (usage: $0 [--check])" >&2
		exit 2
		;;
	esac
done

# Prefer the unversioned name; Debian also ships the versioned binary only.
cf=""
for name in clang-format clang-format-14 clang-format-15 clang-format-16; do
	if command -v "$name" >/dev/null 2>&1; then
		cf=$name
		break
	fi
done
if [ -z "$cf" ]; then
	echo "format: clang-format not found (run scripts/install-deps.sh --test)" >&2
	exit 2
fi
[ -f .clang-format ] || {
	echo "format: .clang-format missing at the repository root" >&2
	exit 2
}

dirs=()
for d in src tests fuzz bench; do
	[ -d "$d" ] && dirs+=("$d")
done
files=()
if [ "${#dirs[@]}" -gt 0 ]; then
	while IFS= read -r -d '' f; do
		files+=("$f")
	done < <(find "${dirs[@]}" -path fuzz/corpus -prune -o -type f \( -name '*.c' -o -name '*.h' \) \
		-print0 | sort -z)
fi
if [ "${#files[@]}" -eq 0 ]; then
	echo "format: no C files found"
	exit 0
fi

if [ "$check" -eq 0 ]; then
	"$cf" -i --style=file "${files[@]}"
	echo "format: formatted ${#files[@]} files"
	exit 0
fi

bad=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for f in "${files[@]}"; do
	# Compare the formatted text with the file byte for byte. A clang-format
	# failure (e.g. a syntax it cannot parse) counts as unformatted too.
	if ! "$cf" --style=file "$f" >"$tmp"; then
		echo "$f (clang-format failed)"
		bad=$((bad + 1))
	elif ! cmp -s "$tmp" "$f"; then
		echo "$f"
		bad=$((bad + 1))
	fi
done
if [ "$bad" -gt 0 ]; then
	echo "format: $bad of ${#files[@]} files need formatting (run scripts/format.sh)" >&2
	exit 1
fi
echo "format: ${#files[@]} files formatted correctly"
