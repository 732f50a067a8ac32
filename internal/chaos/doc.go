// Package chaos is shoal's black-box fault-testing harness: it builds the
// shoal binary, starts a cluster of real processes (on loopback, or each in
// its own Linux network namespace so links can be cut), runs concurrent Redis
// clients against it while a nemesis kills, pauses and partitions nodes, and
// then checks the recorded history:
//
//   - linearizability, with porcupine and a key-value model partitioned by
//     key (model.go, check.go);
//   - durability: after the faults stop and the cluster heals, every key is
//     read back, and the last acknowledged write to each key must be there
//     (check.go);
//   - availability: per fault, how long no client write succeeded
//     (report.go).
//
// Files by concern: cluster.go (processes), netns.go (namespaces, bridge and
// iptables partitions), workload.go (clients and the recorded history),
// nemesis.go (fault schedule), run.go (one whole run), report.go.
//
// Operations whose effect is unknown — any error or timeout on a write,
// except a refused connection or a MOVED redirect, which prove the command
// was never executed — are recorded with an unknown output and an infinite
// return time, so porcupine may place them anywhere after their call or
// nowhere at all.
package chaos
