#!/usr/bin/env bash
# Installs what fourc needs from the system, and with --test also what its test
# suite needs. Every dependency comes from Debian packages (found by the build
# through pkg-config) or, for the integration tests, from pinned Python
# packages. The script is idempotent: it checks each package first, so a second
# run changes nothing, touches no network and finishes in about a second.
#
# Usage: scripts/install-deps.sh [--test]
# Progress goes to stderr as "installing: ..." lines. Exits non-zero with a
# message naming what failed.
set -euo pipefail

# Build and runtime dependencies (see PKGS in the Makefile).
APT_PKGS=(
	build-essential
	pkg-config
	libuv1-dev
	libssl-dev
	libsodium-dev
	libsqlite3-dev
	libinih-dev
	libsignal-protocol-c-dev
	openssl
)
# Test-only system packages: cmocka for unit tests, clang and its runtime
# libraries for libFuzzer builds, clang-format for the format check.
APT_TEST_PKGS=(
	libcmocka-dev
	clang
	libclang-rt-14-dev
	clang-format
)
# Test-only Python packages, pinned: "distribution==version import-name".
# cryptography gives the integration tests' protocol client its Ed25519 keys.
PY_TEST_PKGS=(
	"pytest==9.2.0 pytest"
	"websockets==17.4 websockets"
	"cryptography==48.0.0 cryptography"
)

with_test=0
for arg in "$@"; do
	case "$arg" in
	--test) with_test=1 ;;
	-h | --help)
		sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "install-deps: unknown argument '$arg' (usage: $0 [--test])" >&2
		exit 2
		;;
	esac
done

die() {
	echo "install-deps: error: $*" >&2
	exit 1
}

note() {
	echo "install-deps: $*" >&2
}

# Runs a command as root: directly when we are root, through non-interactive
# sudo otherwise. A missing sudo is a clear error rather than a password prompt.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		die "need root to run: $* (run as root or install sudo)"
	fi
}

# True when the Debian package is fully installed (not merely known or
# half-configured).
deb_installed() {
	dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

# apt-get with no prompts, no recommends, and a wait for the dpkg lock instead
# of an immediate failure when another apt process (e.g. a boot-time update) is
# still running.
apt_get() {
	as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
		-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0 "$@"
}

install_debs() {
	local missing=() pkg
	for pkg in "$@"; do
		deb_installed "$pkg" || missing+=("$pkg")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0

	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install manually: ${missing[*]}"
	note "installing: ${missing[*]}"
	# The package lists may be absent or stale on a fresh machine, so refresh
	# them once, and only because something is actually missing.
	if [ "$apt_updated" -eq 0 ]; then
		note "installing: refreshing package lists (apt-get update)"
		local try
		for try in 1 2 3; do
			apt_get update >&2 && break
			[ "$try" -eq 3 ] && die "apt-get update failed three times"
			note "apt-get update failed (attempt $try), retrying in 5 s"
			sleep 5
		done
		apt_updated=1
	fi
	local try
	for try in 1 2 3; do
		apt_get install --no-install-recommends "${missing[@]}" >&2 && break
		[ "$try" -eq 3 ] && die "apt-get install failed for: ${missing[*]}"
		note "apt-get install failed (attempt $try), retrying in 5 s"
		sleep 5
	done
	for pkg in "${missing[@]}"; do
		deb_installed "$pkg" || die "package $pkg is still not installed after apt-get install"
	done
}

# Prints the specs of PY_TEST_PKGS whose distribution is not installed at the
# pinned version or whose module does not import.
python_missing() {
	python3 - "$@" <<'EOF'
import importlib
import importlib.metadata as md
import sys

for spec in sys.argv[1:]:
    dist_pin, module = spec.split()
    dist, version = dist_pin.split("==")
    try:
        ok = md.version(dist) == version
        if ok:
            importlib.import_module(module)
    except Exception:
        ok = False
    if not ok:
        print(dist_pin)
EOF
}

install_python() {
	command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH"
	local missing
	missing=$(python_missing "$@") || die "python3 could not check installed packages"
	[ -z "$missing" ] && return 0

	# shellcheck disable=SC2086 # one requirement per word is intended
	note "installing: python packages" $missing
	python3 -m pip --version >/dev/null 2>&1 || die "python3 has no pip (python3 -m pip failed)"
	local try
	for try in 1 2 3; do
		# shellcheck disable=SC2086
		python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
			$missing >&2 && break
		[ "$try" -eq 3 ] && die "pip install failed for: $missing"
		note "pip install failed (attempt $try), retrying in 5 s"
		sleep 5
	done
	missing=$(python_missing "$@") || die "python3 could not check installed packages"
	[ -z "$missing" ] || die "python packages still missing after pip install: $missing"
}

apt_updated=0
pkgs=("${APT_PKGS[@]}")
[ "$with_test" -eq 1 ] && pkgs+=("${APT_TEST_PKGS[@]}")
install_debs "${pkgs[@]}"

if [ "$with_test" -eq 1 ]; then
	install_python "${PY_TEST_PKGS[@]}"
	command -v clang-format >/dev/null 2>&1 || die "clang-format is installed but not on PATH"
fi

note "all dependencies present$([ "$with_test" -eq 1 ] && echo ' (including test dependencies)')"
