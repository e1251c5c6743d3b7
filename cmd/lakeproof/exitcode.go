package main

import (
	"context"
	"errors"
	"strings"
)

// Exit codes. They are part of the CLI contract (docs/OPERATOR.md).
const (
	exitOK       = 0 // success; for verify: everything checked is valid
	exitInvalid  = 1 // verification ran and found a mismatch, or object errors were found
	exitUsage    = 2 // bad usage, unreadable input, malformed file, I/O error
	exitInternal = 3 // unexpected internal failure
	exitCanceled = 130
)

// usageError marks a command-line mistake (exit 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// invalidError marks a completed check that failed (exit 1).
type invalidError struct{ error }

func (e invalidError) Unwrap() error { return e.error }

// reported marks an error that the command has already shown the user
// (on stdout, as part of its report); main does not print it again.
type reported struct{ error }

func (e reported) Unwrap() error { return e.error }

func exitCode(err error) int {
	var (
		u usageError
		i invalidError
		c codedError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		return exitCanceled
	case errors.As(err, &c):
		return c.code
	case errors.As(err, &i):
		return exitInvalid
	case errors.As(err, &u):
		return exitUsage
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"):
		return exitUsage
	default:
		// I/O errors, malformed files and other failures to carry out the
		// request: the request could not be answered, like a usage error.
		return exitUsage
	}
}
