package local_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lakeproof/lakeproof/sources/local"
)

// ObjectsRange yields exactly the keys of [start, end) that Objects yields,
// opens no directory whose keys all lie outside the range, and lists the
// directory children used to plan shards.
func TestObjectsRange(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{"a": "1", "d5.txt": "x", "d5-x/y": "y", "e/": ""}
	for d := range 6 {
		for f := range 5 {
			files[fmt.Sprintf("d%d/f%d", d, f)] = "c"
			files[fmt.Sprintf("d%d/sub/g%d", d, f)] = "c"
		}
	}
	makeTree(t, root, files)
	src := newSource(t, root, local.Options{})
	all := list(t, src).keys()

	var bounds []string
	for _, k := range all {
		bounds = append(bounds, k, k+"\x00", strings.TrimSuffix(k, k[len(k)-1:]))
	}
	bounds = append(bounds, "", "d3/", "d3/sub/", "d4", "z")
	for _, start := range bounds {
		for _, end := range []string{"", "d2/sub/g3", "d4/", "d5-x/y", "d5/f0", "zz"} {
			if end != "" && end <= start {
				continue
			}
			var want []string
			for _, k := range all {
				if k >= start && (end == "" || k < end) {
					want = append(want, k)
				}
			}
			var opened []string
			reset := local.SetOpenDirHook(func(p string) {
				rel, _ := filepath.Rel(root, p)
				opened = append(opened, filepath.ToSlash(rel)+"/")
			})
			var got []string
			for o, err := range src.ObjectsRange(context.Background(), start, end) {
				if err != nil {
					t.Fatalf("[%q, %q): %v", start, end, err)
				}
				got = append(got, o.Key)
			}
			reset()
			if !slices.Equal(got, want) {
				t.Errorf("[%q, %q): got %q, want %q", start, end, got, want)
			}
			for _, d := range opened {
				if d == "./" {
					continue
				}
				below := d < start && !strings.HasPrefix(start, d)
				after := end != "" && d >= end
				if below || after {
					t.Errorf("[%q, %q): opened directory %q, which is outside the range", start, end, d)
				}
			}
		}
	}

	var kids []string
	for c, err := range src.Children(context.Background(), "d5/") {
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, fmt.Sprintf("%s:%d", c.Key, c.Size))
	}
	if want := []string{"d5/f0:1", "d5/f1:1", "d5/f2:1", "d5/f3:1", "d5/f4:1", "d5/sub/:0"}; !slices.Equal(kids, want) {
		t.Errorf("Children(d5/) = %q, want %q", kids, want)
	}
	for _, bad := range []string{"d5", "../", "nope/"} {
		for _, err := range src.Children(context.Background(), bad) {
			if err == nil {
				t.Errorf("Children(%q): no error", bad)
			}
		}
	}
}
