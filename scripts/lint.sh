#!/usr/bin/env bash
# Mechanical checks that the compiler does not make:
#  1. no calls to functions we ban because they cannot bound their output or
#     report errors (strcpy, strcat, sprintf, vsprintf, strtok, atoi, gets) in
#     the C files of src/, tests/, fuzz/ and bench/;
#  2. no TODO / FIXME / XXX markers anywhere in src/: unfinished work is an
#     issue, not a comment.
# Comments and string literals are ignored for check 1, so prose may name a
# banned function; check 2 looks at everything, comments included.
# Prints one "file:line: message" per finding and exits 1 if there is any.
#  3. every C file formatted as .clang-format says (scripts/format.sh --check).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

dirs=()
for d in src tests fuzz bench; do
	[ -d "$d" ] && dirs+=("$d")
done
c_files=()
if [ "${#dirs[@]}" -gt 0 ]; then
	while IFS= read -r -d '' f; do
		c_files+=("$f")
	done < <(find "${dirs[@]}" -path fuzz/corpus -prune -o -type f \( -name '*.c' -o -name '*.h' \) \
		-print0 | sort -z)
fi

findings=0

# 1. Banned calls. A small scanner blanks comments, string and character
# literals (keeping line numbers), then looks for "name (" with the name not
# part of a longer identifier, so snprintf, fgets and strtok_r are fine.
if [ "${#c_files[@]}" -gt 0 ]; then
	banned_out=$(python3 - "${c_files[@]}" <<'EOF'
import re
import sys

BANNED = ("strcpy", "strcat", "sprintf", "vsprintf", "strtok", "atoi", "gets")
CALL = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(BANNED) + r")\s*\(")


def blank_non_code(text):
    """Replaces comments and literals with spaces, keeping newlines."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + text[j - 1:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


for path in sys.argv[1:]:
    with open(path, encoding="utf-8", errors="replace") as f:
        code = blank_non_code(f.read())
    for lineno, line in enumerate(code.split("\n"), 1):
        for m in CALL.finditer(line):
            print(f"{path}:{lineno}: banned call {m.group(1)}()")
EOF
	) || {
		echo "lint: the banned-call scanner failed" >&2
		exit 2
	}
	if [ -n "$banned_out" ]; then
		echo "$banned_out"
		findings=$((findings + $(printf '%s\n' "$banned_out" | wc -l)))
	fi
fi

# 2. Work-in-progress markers in src/ (any file type).
if [ -d src ]; then
	marker_out=$(grep -rnwI -E 'TODO|FIXME|XXX' src || true)
	if [ -n "$marker_out" ]; then
		printf '%s\n' "$marker_out" | sed -E 's/^([^:]+:[0-9]+):.*$/\1: work-in-progress marker (TODO\/FIXME\/XXX)/'
		findings=$((findings + $(printf '%s\n' "$marker_out" | wc -l)))
	fi
fi

# 3. Formatting.
if ! bash scripts/format.sh --check; then
	findings=$((findings + 1))
fi

if [ "$findings" -gt 0 ]; then
	echo "lint: $findings finding(s)" >&2
	exit 1
fi
echo "lint: ok (${#c_files[@]} C files)"
