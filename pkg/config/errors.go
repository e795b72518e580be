package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Errors collects every problem found in one configuration, each prefixed with the path of
// the field it concerns, so a user fixes them all in one round.
type Errors struct {
	problems []string
}

// Addf records a problem with the field at path.
func (e *Errors) Addf(path, format string, args ...any) {
	e.problems = append(e.problems, path+": "+fmt.Sprintf(format, args...))
}

// Err returns nil when nothing was recorded, or one error listing every problem.
func (e *Errors) Err() error {
	if len(e.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: append([]string(nil), e.problems...)}
}

// ValidationError is a configuration that cannot be started.
type ValidationError struct {
	Problems []string
}

func (v *ValidationError) Error() string { return strings.Join(v.Problems, "; ") }

// Index is the path of element i of the list at path: Index("calendar.recurrence", 2) is
// "calendar.recurrence[2]".
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
