package main

// exitAppendOnly is the exit status of audit --append-only and of run when
// an append-only dataset's previous objects changed or disappeared.
// For the lead: exitCode in exitcode.go must map codedError to its code:
//
//	var c codedError
//	case errors.As(err, &c):
//		return c.code
//
// (before the invalidError case). Until then these errors exit with 2.
const exitAppendOnly = 4

// codedError carries a specific exit status.
type codedError struct {
	code int
	err  error
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }
