#!/usr/bin/env bash
# The benchmark harness (`make bench`). Builds fourcd, libfourc.a and the
# two benchmark programs, runs every scenario, prints one JSON line per
# scenario on stdout and writes the same lines to bench/results/latest.jsonl.
# Progress goes to stderr. docs/benchmarks.md explains the scenarios.
#
# Environment:
#   BENCH_QUICK=1        smoke run: few connections and messages, short steps
#   BENCH_SCENARIOS      space-separated subset of: conn_density_plain
#                        conn_density_tls rtt_1to1 (default: all)
#   BENCH_CONNS          idle connections per density scenario (default 10000;
#                        capped by RLIMIT_NOFILE, reported in the JSON)
#   BENCH_WARM           warm-up connections kept open before measuring (256)
#   BENCH_MSGS           closed-loop messages measured (5000)
#   BENCH_RATE           closed-loop pacing in messages/s (1000)
#   BENCH_MSG_BYTES      ciphertext bytes per message (256)
#   BENCH_RATES          offered rates of the open-loop scan
#                        (1000,2000,5000,10000,20000,50000,100000)
#   BENCH_STEP_MS        sending time per step (3000)
#   BENCH_STEP_MAX       messages per step at most (100000)
#   BENCH_PAIRS          sender/receiver pairs in the scan (4)
#   BENCH_TMP            where the per-run temporary directory is made
#                        (default $TMPDIR or /tmp); the servers' data
#                        directories live there, so its file system matters
#                        for fourcd's durable commits (reported as data_dir_fs)
#
# Exit status: 0 when every scenario ran, whatever its figures; 1 if the
# harness itself broke (build failure, a server that did not start, ...).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'bench: %s\n' "$*" >&2; }

quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
	def_conns=500 def_warm=32 def_msgs=500 def_rates=1000,2000 def_step_ms=500 def_step_max=2000
else
	def_conns=10000 def_warm=256 def_msgs=5000 def_rates=1000,2000,5000,10000,20000,50000,100000
	def_step_ms=3000 def_step_max=100000
fi
conns=${BENCH_CONNS:-$def_conns}
warm=${BENCH_WARM:-$def_warm}
msgs=${BENCH_MSGS:-$def_msgs}
rate=${BENCH_RATE:-1000}
msg_bytes=${BENCH_MSG_BYTES:-256}
rates=${BENCH_RATES:-$def_rates}
step_ms=${BENCH_STEP_MS:-$def_step_ms}
step_max=${BENCH_STEP_MAX:-$def_step_max}
pairs=${BENCH_PAIRS:-4}
scenarios=${BENCH_SCENARIOS:-"conn_density_plain conn_density_tls rtt_1to1"}

# ---- build -------------------------------------------------------------------
log "building fourcd and libfourc.a"
make -j2 build/fourcd build/libfourc.a >&2

pkgs="libuv openssl libsodium sqlite3 inih libsignal-protocol-c"
cflags="-std=gnu11 -g -O2 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
	-Wformat=2 -Wno-unused-parameter -pthread -Isrc $(pkg-config --cflags $pkgs)"
mkdir -p build/bench
log "building build/bench/fourc_bench and build/bench/baseline_server"
# shellcheck disable=SC2086
cc $cflags -o build/bench/fourc_bench bench/fourc_bench.c bench/density.c bench/rtt.c \
	bench/proc.c bench/json.c bench/stats.c bench/wsc.c bench/servers.c \
	build/libfourc.a $(pkg-config --libs $pkgs) -lm
# shellcheck disable=SC2086
cc $cflags -o build/bench/baseline_server bench/baseline_server.c \
	$(pkg-config --libs libuv openssl)

# ---- environment -------------------------------------------------------------
# Each side of a density run holds N sockets: ask for plenty of descriptors,
# settle for the hard limit where raising it is not permitted (fourc_bench
# then caps N and says so in its JSON).
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log "RLIMIT_NOFILE $(ulimit -n), $(nproc) CPUs"

tmp_root=${BENCH_TMP:-${TMPDIR:-/tmp}}
tmp=$(mktemp -d "$tmp_root/fourc-bench.XXXXXX")
broken=0
# The servers' directories (configuration, data, logs) go away with a clean
# run and stay for inspection when the harness broke.
cleanup() {
	if [ "$broken" = 0 ]; then
		rm -rf "$tmp"
	else
		log "kept $tmp (server configurations, data and logs) for inspection"
	fi
}
trap cleanup EXIT

mkdir -p bench/results
out=bench/results/latest.jsonl
: >"$out.part"

common=(--fourcd build/fourcd --baseline build/bench/baseline_server --tmp "$tmp")

# Runs one scenario; its JSON line goes to stdout and to the results file.
run() {
	local name=$1
	shift
	log "scenario $name"
	local line rc=0
	line=$(build/bench/fourc_bench "$@" "${common[@]}") || rc=$?
	if [ -n "$line" ]; then
		printf '%s\n' "$line"
		printf '%s\n' "$line" >>"$out.part"
	fi
	if [ "$rc" -ne 0 ]; then
		log "scenario $name: harness failure (exit $rc)"
		broken=1
	fi
}

for s in $scenarios; do
	case $s in
	conn_density_plain) run "$s" density --tls 0 --conns "$conns" --warm "$warm" ;;
	conn_density_tls) run "$s" density --tls 1 --conns "$conns" --warm "$warm" ;;
	rtt_1to1)
		run "$s" rtt --msgs "$msgs" --rate "$rate" --msg-bytes "$msg_bytes" \
			--steps "$rates" --step-ms "$step_ms" --step-max "$step_max" --pairs "$pairs"
		;;
	*)
		log "unknown scenario '$s'"
		broken=1
		;;
	esac
done

mv "$out.part" "$out"
log "results in $out"
exit "$broken"
