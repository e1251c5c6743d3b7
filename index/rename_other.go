//go:build !linux

package index

func renameNoReplace(old, new string) error { return renameCheck(old, new) }
