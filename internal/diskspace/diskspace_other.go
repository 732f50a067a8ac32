//go:build !linux

package diskspace

import (
	"errors"
	"os"
)

var errUnsupported = errors.New("diskspace: not supported on this system")

func allocate(f *os.File, size int64) error { return errUnsupported }

func statfs(dir string) (free, total int64, err error) { return 0, 0, errUnsupported }
