package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakeproof/lakeproof/pipeline"
	"github.com/lakeproof/lakeproof/sources/local"
)

// item is one pair yielded by Objects: an object, or an *ObjectError.
type item struct {
	obj  pipeline.Object
	oerr *pipeline.ObjectError
}

func (it item) key() string {
	if it.oerr != nil {
		return it.oerr.Key
	}
	return it.obj.Key
}

// listing is the whole output of one Objects call.
type listing []item

func (l listing) keys() []string {
	var ks []string
	for _, it := range l {
		if it.oerr == nil {
			ks = append(ks, it.obj.Key)
		}
	}
	return ks
}

func (l listing) errs() []*pipeline.ObjectError {
	var es []*pipeline.ObjectError
	for _, it := range l {
		if it.oerr != nil {
			es = append(es, it.oerr)
		}
	}
	return es
}

// object returns the listed object with key, or fails the test.
func (l listing) object(t *testing.T, key string) pipeline.Object {
	t.Helper()
	for _, it := range l {
		if it.oerr == nil && it.obj.Key == key {
			return it.obj
		}
	}
	t.Fatalf("%q not listed; listing: %v", key, l.keys())
	return pipeline.Object{}
}

// errFor returns the ObjectError with key, or fails the test.
func (l listing) errFor(t *testing.T, key string) *pipeline.ObjectError {
	t.Helper()
	for _, e := range l.errs() {
		if e.Key == key {
			return e
		}
	}
	t.Fatalf("no error for %q; errors: %v", key, l.errs())
	return nil
}

// list runs Objects to the end. Every pair must be an object or an
// *ObjectError, and all keys, errors' included, must be strictly increasing.
func list(t *testing.T, src *local.Source) listing {
	t.Helper()
	var l listing
	for obj, err := range src.Objects(context.Background()) {
		var it item
		if err != nil {
			if !errors.As(err, &it.oerr) {
				t.Fatalf("Objects: non-object error after %d items: %v", len(l), err)
			}
			if obj != (pipeline.Object{}) {
				t.Errorf("Objects: error %v yielded with non-zero object %+v", err, obj)
			}
		} else {
			it.obj = obj
		}
		if n := len(l); n > 0 && l[n-1].key() >= it.key() {
			t.Errorf("Objects: key %q yielded after %q", it.key(), l[n-1].key())
		}
		l = append(l, it)
	}
	return l
}

// newSource returns a Source for root, closed at the end of the test.
func newSource(t testing.TB, root string, opts local.Options) *local.Source {
	t.Helper()
	src, err := local.New(root, opts)
	if err != nil {
		t.Fatalf("New(%q): %v", root, err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// makeTree creates files under root: each key maps to its content; a key
// ending in '/' makes an empty directory.
func makeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for key, content := range files {
		p := filepath.Join(root, filepath.FromSlash(key))
		if strings.HasSuffix(key, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
