//go:build unix

package server

import (
	"syscall"
	"time"
)

type cpuTimes struct{ sys, user, childSys, childUser time.Duration }

// cpuUsage returns the CPU time used by this process and its children.
func cpuUsage() cpuTimes {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	return cpuTimes{
		sys:       time.Duration(self.Stime.Nano()),
		user:      time.Duration(self.Utime.Nano()),
		childSys:  time.Duration(children.Stime.Nano()),
		childUser: time.Duration(children.Utime.Nano()),
	}
}
