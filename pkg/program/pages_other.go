//go:build !linux

package program

import "errors"

func releaseStartPages() (int64, error) {
	return 0, errors.New("only on Linux")
}
