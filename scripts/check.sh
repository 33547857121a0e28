#!/usr/bin/env bash
# The whole test suite, as run by `make check` and by CI (.ci/run).
#
# Stages, in order; every stage runs even when an earlier one failed, so one
# run reports everything that is broken:
#   deps              scripts/install-deps.sh --test
#   build             make -j2 all
#   build-asan        make -j2 BUILD=build-asan SAN=1 all
#   unit              make -j2 unit
#   unit-asan         make -j2 BUILD=build-asan SAN=1 unit
#   fuzz-replay       make -j2 fuzz-replay
#   fuzz-replay-asan  make -j2 BUILD=build-asan SAN=1 fuzz-replay
#   lint              scripts/lint.sh
#   integration       python3 -m pytest -q tests/integration        (build/fourcd)
#   integration-asan  python3 -m pytest -q -m "not slow" tests/integration
#                     (build-asan/fourcd)
# The sanitizer stages run with ASAN_OPTIONS=detect_leaks=1 and
# UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1, so a leak or any undefined
# behaviour fails the test that caused it. With CI=true in the environment the
# Makefile adds -Werror.
#
# Output: a header per stage, the stage's own output, then a summary table and
# a final line "N passed, M failed". N and M add up the test counts printed by
# cmocka and pytest (pytest errors count as failed). A stage that fails without
# a parsable failure count (a build error, a lint finding, a crashed test
# binary, pytest collecting no tests) adds 1 to M, so the final line never
# reads "0 failed" on a failing run. Exit status: 0 only if every stage passed.
# Each stage's output is also kept in build/check-logs/<stage>.log.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

LOG_DIR=build/check-logs
mkdir -p "$LOG_DIR"

SAN_ENV=(ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)

# Stage timeouts in seconds: a guard against a hung test or build, far above
# the normal duration, so a hang still leaves time for the other stages.
T_DEPS=1800
T_BUILD=1800
T_TESTS=1200
# Without a terminal (CI) timeout runs each stage in its own process group and
# on expiry signals the whole group, servers started by tests included. At a
# terminal it stays in the foreground group so Ctrl-C reaches the stage.
TIMEOUT_OPTS=(--kill-after=30)
[ -t 0 ] && TIMEOUT_OPTS+=(--foreground)

stage_names=()
stage_results=()
stage_details=()
stage_secs=()
total_passed=0
total_failed=0
nstages=10
idx=0

# cmocka: "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:"
# once per test group; sums them over the log. Prints "passed failed".
count_cmocka() {
	awk '
		/^\[  PASSED  \] [0-9]+ test\(s\)/ { p += $4 }
		/^\[  FAILED  \] [0-9]+ test\(s\)/ { f += $4 }
		END { printf "%d %d\n", p, f }
	' "$1"
}

# pytest: the last summary line, e.g. "3 failed, 40 passed, 1 skipped, 2 errors
# in 12.3s". Prints "passed failed skipped" (errors are counted as failed).
count_pytest() {
	local line
	line=$(grep -E '(passed|failed|error|skipped|no tests ran).* in [0-9.]+s' "$1" | tail -n 1)
	local p f e s
	p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '^[0-9]+' || true)
	f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '^[0-9]+' || true)
	e=$(grep -oE '[0-9]+ errors?' <<<"$line" | grep -oE '^[0-9]+' || true)
	s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '^[0-9]+' || true)
	echo "${p:-0} $((${f:-0} + ${e:-0})) ${s:-0}"
}

# run_stage NAME KIND TIMEOUT CMD...
# KIND is cmocka, pytest or plain and selects how test counts are parsed.
run_stage() {
	local name=$1 kind=$2 limit=$3
	shift 3
	idx=$((idx + 1))
	local log="$LOG_DIR/$name.log"
	local shown
	printf -v shown '%q ' "$@"
	printf '\n==== [%d/%d] %s: %s\n' "$idx" "$nstages" "$name" "${shown% }"
	local t0 rc
	t0=$(date +%s)
	timeout "${TIMEOUT_OPTS[@]}" "$limit" "$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	local secs=$(($(date +%s) - t0))

	local passed=0 failed=0 skipped=0 detail=""
	case "$kind" in
	cmocka)
		read -r passed failed <<<"$(count_cmocka "$log")"
		detail="$passed passed, $failed failed"
		;;
	pytest)
		read -r passed failed skipped <<<"$(count_pytest "$log")"
		detail="$passed passed, $failed failed, $skipped skipped"
		;;
	esac
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		detail="${detail:+$detail; }timed out after ${limit}s"
	elif [ "$kind" = pytest ] && [ "$rc" -eq 5 ]; then
		detail="${detail:+$detail; }pytest collected no tests"
	fi
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		failed=1
		detail="${detail:+$detail; }stage failed with exit status $rc"
	fi

	local result=ok
	[ "$rc" -ne 0 ] && result=FAIL
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
	stage_names+=("$name")
	stage_results+=("$result")
	stage_details+=("$detail")
	stage_secs+=("$secs")
	printf '==== [%d/%d] %s: %s (%ds)%s\n' "$idx" "$nstages" "$name" "$result" "$secs" \
		"${detail:+ - $detail}"
}

echo "fourc check: $(uname -sm), $(nproc) cores, CI=${CI:-}"

run_stage deps plain "$T_DEPS" bash scripts/install-deps.sh --test
run_stage build plain "$T_BUILD" make -j2 all
run_stage build-asan plain "$T_BUILD" make -j2 BUILD=build-asan SAN=1 all
run_stage unit cmocka "$T_TESTS" make -j2 unit
run_stage unit-asan cmocka "$T_TESTS" env "${SAN_ENV[@]}" make -j2 BUILD=build-asan SAN=1 unit
run_stage fuzz-replay plain "$T_TESTS" make -j2 fuzz-replay
run_stage fuzz-replay-asan plain "$T_TESTS" \
	env "${SAN_ENV[@]}" make -j2 BUILD=build-asan SAN=1 fuzz-replay
run_stage lint plain "$T_TESTS" bash scripts/lint.sh
run_stage integration pytest "$T_TESTS" \
	env FOURCD=build/fourcd FOURC=build/fourc python3 -m pytest -q tests/integration
run_stage integration-asan pytest "$T_TESTS" \
	env "${SAN_ENV[@]}" FOURCD=build-asan/fourcd FOURC=build-asan/fourc \
	python3 -m pytest -q -m "not slow" tests/integration

echo
echo "==== summary"
status=0
for i in "${!stage_names[@]}"; do
	printf '  %-18s %-4s %5ss%s\n' "${stage_names[$i]}" "${stage_results[$i]}" \
		"${stage_secs[$i]}" "${stage_details[$i]:+  ${stage_details[$i]}}"
	[ "${stage_results[$i]}" = ok ] || status=1
done
if [ "$status" -ne 0 ]; then
	echo "check: FAILED (stage logs in $LOG_DIR/)"
else
	echo "check: all stages passed"
fi
echo "$total_passed passed, $total_failed failed"
exit "$status"
