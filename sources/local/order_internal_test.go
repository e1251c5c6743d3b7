package local

import (
	"strings"
	"testing"
)

// FuzzCompareEntries checks the invariant the walk relies on: for two
// distinct entries of one directory, compareEntries orders them as every key
// below or at the first compares to every key below or at the second. The
// key of a file entry is its name; a key below a directory entry is its name,
// '/', and the rest of the path (here: ca or cb).
func FuzzCompareEntries(f *testing.F) {
	for _, s := range []struct {
		a     string
		aDir  bool
		ca, b string
		bDir  bool
		cb    string
	}{
		{"a.txt", false, "", "a", true, "b"},
		{"a-b", true, "x", "a", true, "x"},
		{"a", false, "", "ab", true, "c"},
		{"a b", false, "", "a", true, "!"},
		{"é", false, "", "e", true, "\xff"},
		{"a", true, "", "a0", false, ""},
		{"a\x00", false, "", "a", true, "\x00"},
	} {
		f.Add(s.a, s.aDir, s.ca, s.b, s.bDir, s.cb)
	}
	f.Fuzz(func(t *testing.T, a string, aDir bool, ca, b string, bDir bool, cb string) {
		if a == "" || b == "" || a == b || strings.Contains(a, "/") || strings.Contains(b, "/") {
			t.Skip("not two distinct names of one directory")
		}
		ea, eb := entry{name: a, kind: kindFile}, entry{name: b, kind: kindFile}
		ka, kb := a, b
		if aDir {
			ea.kind, ka = kindDir, a+"/"+ca
		}
		if bDir {
			eb.kind, kb = kindDir, b+"/"+cb
		}
		got, want := compareEntries(ea, eb), strings.Compare(ka, kb)
		if got != want {
			t.Errorf("compareEntries(%q dir=%v, %q dir=%v) = %d, but key %q vs %q compares %d", a, aDir, b, bDir, got, ka, kb, want)
		}
		if back := compareEntries(eb, ea); back != -got {
			t.Errorf("compareEntries is not antisymmetric on %q, %q: %d and %d", a, b, got, back)
		}
	})
}
