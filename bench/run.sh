#!/usr/bin/env bash
# Runs shoal's benchmark suite on this machine: installs missing Debian
# packages, builds shoal and the suite, then runs bench/cmd/benchrun, which
# starts shoal (3 nodes), Redis (AOF always / everysec), Redis Cluster
# (3 masters) and etcd (3 members) on loopback, one at a time, and prints
# one table. Results go to bench/out/ (results.jsonl, report.json,
# table.md, PNG plots). Extra arguments go to benchrun, e.g.
#   bench/run.sh -img docs/img          # also refresh the docs' plots
#   bench/run.sh -only shoal,etcd -duration 5s -quick
set -euo pipefail

bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")
out="$bench/out"
mkdir -p "$out"

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v etcd >/dev/null || need+=(etcd-server)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
if ((${#need[@]})); then
	echo "installing ${need[*]}" >&2
	sudo=""
	[[ $(id -u) == 0 ]] || sudo=sudo
	$sudo apt-get update -qq || true
	# Debian starts packaged services only where an init system runs them;
	# the suite never uses them and picks its own random ports.
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi

work=$(mktemp -d -t shoal-bench-bin-XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "building shoal and benchrun" >&2
(cd "$root" && CGO_ENABLED=0 go build -o "$work/shoal" ./cmd/shoal) ||
	echo "shoal did not build; its rows will be reported as failed" >&2
(cd "$bench" && go build -o "$work/benchrun" ./cmd/benchrun)

{
	echo "date:    $(date -u +%FT%TZ)"
	echo "commit:  $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- . ':!bench' 2>/dev/null || echo ' (dirty tree)')"
	echo "cpus:    $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
	echo "memory:  $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "kernel:  $(uname -sr)"
	echo "disk:    $(df -hT "${TMPDIR:-/tmp}" | awk 'NR==2 {print $1, $2, $3" total"}')"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
	echo "go:      $(go version | cut -d' ' -f3-)"
	echo "redis:   $(redis-server --version | cut -d' ' -f3)"
	echo "etcd:    $(etcd --version | head -1 | cut -d' ' -f3)"
	echo "gnuplot: $(gnuplot --version)"
} | tee "$out/env.txt" >&2

"$work/benchrun" -shoal "$work/shoal" -out "$out" "$@"
