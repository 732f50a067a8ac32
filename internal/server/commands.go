package server

// serverCommands returns the commands the server answers itself, with what
// COMMAND and COMMAND DOCS report about them.
func serverCommands() []*command {
	connCmd := func(name string, arity int, run handler, since, summary string, flags ...string) *command {
		return &command{name: name, arity: arity, run: run, flags: flags,
			group: "connection", since: since, summary: summary}
	}
	return []*command{
		connCmd("ping", -1, cmdPing, "1.0.0", "Returns the server's liveliness response.", "fast"),
		connCmd("echo", 2, cmdEcho, "1.0.0", "Returns the given string.", "fast"),
		connCmd("hello", -1, cmdHello, "6.0.0", "Handshakes with the server, optionally switching protocol.",
			"noscript", "loading", "stale", "fast", "no_auth"),
		connCmd("auth", -2, cmdAuth, "1.0.0", "Authenticates the connection.",
			"noscript", "loading", "stale", "fast", "no_auth"),
		connCmd("select", 2, cmdSelect, "1.0.0", "Changes the selected database; only 0 exists in cluster mode.",
			"loading", "stale", "fast"),
		connCmd("quit", -1, cmdQuit, "1.0.0", "Closes the connection.",
			"noscript", "loading", "stale", "fast", "no_auth"),
		connCmd("reset", 1, cmdReset, "6.2.0", "Resets the connection to its initial state.",
			"noscript", "loading", "stale", "fast", "no_auth"),
		{name: "readonly", arity: 1, run: cmdReadonly, flags: []string{"loading", "stale", "fast"},
			group: "cluster", since: "3.0.0",
			summary: "Allows reads from follower replicas for this connection."},
		{name: "readwrite", arity: 1, run: cmdReadwrite, flags: []string{"loading", "stale", "fast"},
			group: "cluster", since: "3.0.0",
			summary: "Sends reads to shard leaders again after READONLY."},
		{name: "asking", arity: 1, run: cmdAsking, flags: []string{"fast"},
			group: "cluster", since: "3.0.0",
			summary: "Signals that a client is following an ASK redirection (a no-op in shoal)."},
		container("client", -2, "connection", "A container for client connection commands.", "2.4.0",
			subcommand("id", 2, cmdClientID, "5.0.0", "Returns the unique client ID of the connection."),
			subcommand("setname", 3, cmdClientSetName, "2.6.9", "Sets the connection name."),
			subcommand("getname", 2, cmdClientGetName, "2.6.9", "Returns the name of the connection."),
			subcommand("info", 2, cmdClientInfo, "6.2.0", "Returns information about the connection."),
			subcommand("list", -2, cmdClientList, "2.4.0", "Lists open connections."),
			subcommand("setinfo", 4, cmdClientSetInfo, "7.2.0", "Sets information specific to the client library."),
			subcommand("no-evict", 3, cmdClientFlag, "7.0.0", "Accepted for compatibility; shoal never evicts."),
			subcommand("no-touch", 3, cmdClientFlag, "7.2.0", "Accepted for compatibility; shoal keeps no access times."),
			subcommand("help", 2, cmdClientHelp, "5.0.0", "Returns helpful text about the subcommands."),
		),
		{name: "info", arity: -1, run: cmdInfo, flags: []string{"loading", "stale"},
			group: "server", since: "1.0.0",
			summary: "Returns information and statistics about the server."},
		{name: "time", arity: 1, run: cmdTime, flags: []string{"loading", "stale", "fast"},
			group: "server", since: "2.6.0",
			summary: "Returns the server time."},
		container("config", -2, "server", "A container for server configuration commands.", "2.0.0",
			subcommand("get", -3, cmdConfigGet, "2.0.0", "Returns the effective values of configuration parameters."),
			subcommand("set", -4, cmdConfigSet, "2.0.0", "Sets configuration parameters at run time."),
			subcommand("resetstat", 2, cmdConfigResetStat, "2.0.0", "Resets the server's statistics."),
			subcommand("rewrite", 2, cmdConfigRewrite, "2.8.0", "Not supported: configuration comes from flags."),
			subcommand("help", 2, cmdConfigHelp, "5.0.0", "Returns helpful text about the subcommands."),
		),
		commandContainer(),
		aclContainer(),
		shoalContainer(),
		container("cluster", -2, "cluster", "A container for Redis Cluster commands.", "3.0.0",
			subcommand("slots", 2, cmdClusterSlots, "3.0.0", "Returns the mapping of slot ranges to nodes."),
			subcommand("shards", 2, cmdClusterShards, "7.0.0", "Returns the mapping of shards to nodes."),
			subcommand("nodes", 2, cmdClusterNodes, "3.0.0", "Returns the cluster configuration for a node."),
			subcommand("info", 2, cmdClusterInfo, "3.0.0", "Returns information about the state of the cluster."),
			subcommand("myid", 2, cmdClusterMyID, "3.0.0", "Returns the ID of this node."),
			subcommand("keyslot", 3, cmdClusterKeySlot, "3.0.0", "Returns the hash slot of a key."),
			subcommand("countkeysinslot", 3, cmdClusterCountKeys, "3.0.0", "Returns the number of keys in a hash slot."),
			subcommand("getkeysinslot", 4, cmdClusterGetKeys, "3.0.0", "Returns the key names in a hash slot."),
			subcommand("help", 2, cmdClusterHelp, "5.0.0", "Returns helpful text about the subcommands."),
		),
	}
}

// subcommand returns an entry of a container; container completes its name
// and group.
func subcommand(name string, arity int, run handler, since, summary string, flags ...string) *command {
	return &command{name: name, arity: arity, run: run, flags: flags, since: since, summary: summary}
}
