package local

// Openat2Available reports whether Open can refuse symbolic links on every
// component of a path (openat2 with RESOLVE_NO_SYMLINKS), not just the last.
var Openat2Available = openat2OK
