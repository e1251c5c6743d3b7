package main

// exitAppendOnly is the exit status of audit --append-only and of run when
// an append-only dataset's previous objects changed or disappeared.
const exitAppendOnly = 4

// codedError carries a specific exit status.
type codedError struct {
	code int
	err  error
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }
