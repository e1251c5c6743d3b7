package local

// SetOpenDirHook makes the walk call f with every directory it opens, until
// the returned function is called.
func SetOpenDirHook(f func(path string)) (reset func()) {
	testHookOpenDir = f
	return func() { testHookOpenDir = nil }
}
