#!/usr/bin/env bash
# Profiles shoal binaries under one workload, each on a fresh local 3-node
# cluster, and prints where the server CPU goes per operation: for A/B
# comparisons of a change, where machines are too noisy for throughput
# alone. List binaries in alternating order to pair them:
#   bench/profile.sh /tmp/old /tmp/new /tmp/old /tmp/new
#   bench/profile.sh -w get -shards 1 -s 10 ./shoal
# Without binaries it builds the working tree. Needs redis-cli (redis-tools).
# Options: -w set|get|setp16 (default set), -shards N (16), -s seconds
# measured (10), -keys K (100000), -plain (clients that do not route by
# slot), -keep DIR (keep the profiles there). Besides CPU by part it
# prints the bytes Pebble's flushes and compactions wrote per operation
# (all nodes); give -s 40 or more for those, flushes are seconds apart.
# And the mean time of a write in its leader's store and of a sync (a
# binary without shoal_store_write_duration_seconds prints "-"), and the
# commands the nodes forwarded per operation. After the warm-up it waits
# until the shard leaders have stopped moving, then measures. Nodes
# listen on 127.0.0.1:7101-7103 (bus +10000, HTTP +20000, pprof +30000).
set -euo pipefail

bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")
workload=set shards=16 secs=10 keys=100000 cluster=-cluster keep=""
bins=() preload=()
while (($#)); do
	case $1 in
	-w) workload=$2; shift 2 ;;
	-shards) shards=$2; shift 2 ;;
	-s) secs=$2; shift 2 ;;
	-keys) keys=$2; shift 2 ;;
	-plain) cluster=""; shift ;;
	-keep) keep=$2; shift 2 ;;
	-*) echo "unknown option $1" >&2; exit 2 ;;
	*) bins+=("$1"); shift ;;
	esac
done
command -v redis-cli >/dev/null || { echo "profile.sh needs redis-cli (apt-get install redis-tools)" >&2; exit 1; }

work=$(mktemp -d -t shoal-profile-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
(cd "$bench" && go build -o "$work/loadgen" ./cmd/loadgen)
if ((${#bins[@]} == 0)); then
	(cd "$root" && go build -o "$work/shoal" ./cmd/shoal)
	bins=("$work/shoal")
fi
case $workload in
set) wargs=() ;;
get) wargs=(-read-ratio 1) preload=(-preload) ;;
setp16) wargs=(-pipeline 16) ;;
*) echo "unknown workload $workload" >&2; exit 2 ;;
esac
addrs=127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103

# cum prints the cumulative seconds of the first function whose name ends
# with $1 in a `pprof -top -cum` listing on stdin.
cum() {
	awk -v f="$1" '
		$NF ~ f"$" && NF >= 6 && !done {
			v = $4; s = (v ~ /ms$/) ? substr(v, 1, length(v) - 2) / 1000 : substr(v, 1, length(v) - 1)
			print s; done = 1
		}
		END { if (!done) print 0 }'
}

# histSums prints "sum count" of the histogram $1 over the three nodes.
histSums() {
	for i in 1 2 3; do curl -s "127.0.0.1:2710$i/metrics"; done |
		awk -v n="$1" '$1 == n"_sum" { s += $2 } $1 == n"_count" { c += $2 } END { printf "%.6f %d", s, c }'
}

# meanMs prints the mean in ms of a histogram between two histSums readings.
meanMs() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ")
		c = y[2] - x[2]; if (c > 0) printf "%.2f", (y[1] - x[1]) * 1000 / c; else printf "-" }'
}

# engineBytes prints the bytes all three nodes' Pebble wrote so far by
# memtable flushes ($1 = flushed) or compactions ($1 = compacted).
engineBytes() {
	for i in 1 2 3; do curl -s "127.0.0.1:2710$i/metrics"; done |
		awk -v n="shoal_engine_$1_bytes_total" '$1 == n { s += $2 } END { printf "%.0f", s }'
}

# settle waits until the slot map's masters span the three nodes (one
# shard has one) and have held still for 3 s, at most 60 s. Placement
# moves leaders for some seconds after up-replication, and a cluster
# client that loaded its slot map before a move has its commands to that
# shard forwarded until it reloads the map (go-redis: every 10 s): without
# the wait, 13% of a 10 s SET run right after the warm-up was forwarded.
settle() {
	local last="" m masters since=$SECONDS
	for _ in $(seq 1 120); do
		# Each master and the slots it leads (CLUSTER NODES lists slots
		# after the 8th field; replicas are not listed there).
		m=$(redis-cli -p 7101 cluster nodes 2>/dev/null | awk 'NF > 8 { $1 = ""; $3 = ""; $4 = ""; $5 = ""; $6 = ""; $7 = ""; $8 = ""; print }' || true)
		masters=$(grep -c . <<<"$m" || true)
		[[ $m != "$last" ]] && last=$m since=$SECONDS
		if ((SECONDS - since >= 3)) && { ((shards < 3)) || ((masters >= 3)); }; then
			return 0
		fi
		sleep 0.5
	done
	echo "profile.sh: shard leaders still moving after 60 s; measuring anyway" >&2
}

# forwarded prints how many commands the three nodes forwarded so far.
forwarded() {
	for i in 1 2 3; do curl -s "127.0.0.1:2710$i/metrics"; done |
		awk '$1 == "shoal_forwarded_commands_total" { s += $2 } END { printf "%.0f", s }'
}

run=0
# portsFree fails if anything listens on the nodes' ports: a node that
# cannot bind exits, and the others would join whatever holds 7101,
# profiling a stranger's cluster.
portsFree() {
	local busy
	busy=$(ss -Hltn 2>/dev/null | awk '{print $4}' | grep -E ':(7|17|27|37)10[1-3]$' || true)
	if [[ -n $busy ]]; then
		echo "profile.sh: ports in use, stop what listens there first: $busy" >&2
		exit 1
	fi
}

for bin in "${bins[@]}"; do
	run=$((run + 1))
	dir="$work/run$run"
	mkdir -p "$dir"
	pids=()
	portsFree
	for i in 1 2 3; do
		join=()
		((i > 1)) && join=(--join 127.0.0.1:7101)
		"$bin" start --addr 127.0.0.1:710$i --data-dir "$dir/d$i" --shards "$shards" \
			--pprof-addr 127.0.0.1:3710$i "${join[@]}" >"$dir/n$i.log" 2>&1 &
		pids+=($!)
		((i == 1)) && sleep 1
	done
	# Ready: every node holds a replica of every shard and each has a leader.
	for _ in $(seq 1 240); do
		ok=0
		for i in 1 2 3; do
			r=$(curl -s "127.0.0.1:2710$i/readyz" || true)
			[[ $r == *"\"shards_with_leader\":$shards,"* && $r == *"\"local_replicas\":$((shards + 1)),"* ]] && ok=$((ok + 1))
		done
		((ok == 3)) && break
		sleep 0.5
	done
	# A warm-up while leadership spreads over the nodes (settle waits for
	# the end of it). It also writes the keys GETs read, so that the
	# measured run (and its profiles) holds no writes.
	"$work/loadgen" -addrs "$addrs" $cluster -clients 50 -keys "$keys" -duration 4s -warmup 0s "${wargs[@]}" "${preload[@]}" >/dev/null 2>&1
	settle
	profs=()
	for i in 1 2 3; do
		(sleep 2 && curl -s -o "$dir/n$i.prof" "127.0.0.1:3710$i/debug/pprof/profile?seconds=$((secs - 2))") &
		profs+=($!)
	done
	flushed0=$(engineBytes flushed) compacted0=$(engineBytes compacted) fwd0=$(forwarded)
	write0=$(histSums shoal_store_write_duration_seconds) sync0=$(histSums shoal_store_sync_duration_seconds)
	out=$("$work/loadgen" -addrs "$addrs" $cluster -clients 50 -keys "$keys" -duration "${secs}s" -warmup 1s "${wargs[@]}" 2>/dev/null)
	wait "${profs[@]}"
	flushed=$(($(engineBytes flushed) - flushed0)) compacted=$(($(engineBytes compacted) - compacted0)) fwd=$(($(forwarded) - fwd0))
	write1=$(histSums shoal_store_write_duration_seconds) sync1=$(histSums shoal_store_sync_duration_seconds)
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
	pids=()
	ops=$(sed -n 's/.*"ops_per_sec":\([0-9.]*\).*/\1/p' <<<"$out")
	top=$(go tool pprof -top -cum -nodecount=5000 "$bin" "$dir"/n?.prof 2>/dev/null)
	total=$(sed -n 's/.*Total samples = \([0-9.]*\)\(m\?s\).*/\1 \2/p' <<<"$top" | awk '{print ($2 == "ms") ? $1 / 1000 : $1}')
	# Per operation: the profile covers secs-2 seconds of the run.
	per() { awk -v s="$1" -v o="$ops" -v t="$secs" 'BEGIN { printf "%.0f", s * 1e6 / (o * (t - 2)) }'; }
	line="$(basename "$bin") ops/s=${ops%.*} server-cpu-µs/op=$(per "$total")"
	for part in loop='store.(*Store).run' apply='store.(*Store).apply' kv='kv.execute' \
		memtable='pebble/v2.(*memTable).apply' wal='record.(*LogWriter).flushLoop' \
		clients='server.(*conn).serve' grpc-writer='transport.(*loopyWriter).run' \
		grpc-handlers='grpc.(*Server).handleStream' scheduler='runtime.findRunnable' \
		gc='runtime.gcBgMarkWorker'; do
		fn=${part#*=}
		line+=" ${part%%=*}=$(per "$(cum "$(sed 's/[().*]/\\&/g' <<<"$fn")" <<<"$top")")"
	done
	# Bytes per operation over the whole measured run (secs, with its
	# warm-up second): flushes are seconds apart, so short runs vary.
	ops_total=$(sed -n 's/.*"ops":\([0-9]*\).*/\1/p' <<<"$out")
	line+=" flushed-B/op=$((flushed / (ops_total + 1))) compacted-B/op=$((compacted / (ops_total + 1)))"
	# Where a write's time goes: its mean in the leader's store (proposal
	# to answer) and a sync's mean (the fsynced raft batch), over the run.
	line+=" write-ms=$(meanMs "$write0" "$write1") sync-ms=$(meanMs "$sync0" "$sync1")"
	# Commands a node forwarded to their shard's leader, per operation:
	# near 0 for cluster clients on a settled cluster (about 2/3 with -plain).
	line+=" forwarded/op=$(awk -v f="$fwd" -v o="$ops_total" 'BEGIN { printf "%.3f", f / (o + 1) }')"
	echo "$line"
	if [[ -n $keep ]]; then
		mkdir -p "$keep/run$run"
		cp "$dir"/n?.prof "$keep/run$run/"
	fi
done
