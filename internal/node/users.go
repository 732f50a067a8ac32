package node

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/shoaldb/shoal/internal/meta"
	"github.com/shoaldb/shoal/internal/resp"
	"github.com/shoaldb/shoal/internal/server"
)

// Users returns the cluster's users as this node knows them, or nil
// before it knows its cluster.
func (n *Node) Users() server.Users {
	if u := n.users.Load(); u != nil {
		return u
	}
	return nil
}

// offerUsers keeps u if it is newer than the users the node has.
func (n *Node) offerUsers(u *meta.Users) {
	for {
		cur := n.users.Load()
		if cur != nil && cur.Version >= u.Version {
			return
		}
		if n.users.CompareAndSwap(cur, u) {
			return
		}
	}
}

// RefreshUsers reads the users from the meta shard's leader, so that
// what this node knows includes every change acknowledged before.
func (n *Node) RefreshUsers(ctx context.Context) error {
	v, err := n.Execute(ctx, server.Request{Shard: meta.ShardID, Args: [][]byte{[]byte(meta.CmdReadUsers)}})
	if err != nil {
		return err
	}
	if v.IsError() {
		return fmt.Errorf("node: read users: %s", v.Str)
	}
	u := &meta.Users{}
	if err := json.Unmarshal(v.Str, u); err != nil {
		return fmt.Errorf("node: decode users: %w", err)
	}
	n.offerUsers(u)
	return nil
}

// SetUser applies prepared ACL SETUSER modifiers in the meta shard.
func (n *Node) SetUser(ctx context.Context, name string, ops []string) (resp.Value, error) {
	args := [][]byte{[]byte(meta.CmdSetUser), []byte(name)}
	for _, op := range ops {
		args = append(args, []byte(op))
	}
	return n.changeUsers(ctx, args)
}

// DelUsers deletes users in the meta shard.
func (n *Node) DelUsers(ctx context.Context, names []string) (resp.Value, error) {
	args := [][]byte{[]byte(meta.CmdDelUser)}
	for _, name := range names {
		args = append(args, []byte(name))
	}
	return n.changeUsers(ctx, args)
}

// changeUsers runs a META.SETUSER or META.DELUSER command and, once it is
// applied, refreshes this node's users, so that the change is in force
// here when the client hears of it.
func (n *Node) changeUsers(ctx context.Context, args [][]byte) (resp.Value, error) {
	v, err := n.Execute(ctx, server.Request{Shard: meta.ShardID, Args: args, Write: true})
	if err != nil || v.IsError() {
		return v, err
	}
	if err := n.RefreshUsers(ctx); err != nil {
		n.log.Warn("users changed but not yet read back", "err", err)
	}
	return v, nil
}

// readUsers answers CmdReadUsers from the local meta replica, which the
// caller has made fresh.
func (n *Node) readUsers() (resp.Value, error) {
	snap := n.eng.NewSnapshot()
	defer snap.Close()
	u, err := meta.ReadUsers(snap)
	if err != nil {
		return resp.Value{}, err
	}
	b, err := json.Marshal(u)
	if err != nil {
		return resp.Value{}, err
	}
	return resp.Bulk(b), nil
}
