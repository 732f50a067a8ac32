// Package shoalpb holds shoal's protobuf messages and the node-to-node gRPC
// service. The generated files are committed; regenerating needs protoc,
// protoc-gen-go and protoc-gen-go-grpc.
package shoalpb

//go:generate sh -c "protoc -I . -I $(go env GOMODCACHE)/go.etcd.io/raft/v3@v3.7.0/raftpb --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative shoal.proto"
