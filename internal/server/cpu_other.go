//go:build !unix

package server

import "time"

type cpuTimes struct{ sys, user, childSys, childUser time.Duration }

// cpuUsage is unknown on this platform.
func cpuUsage() cpuTimes { return cpuTimes{} }
