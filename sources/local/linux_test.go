//go:build linux

package local_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lakeproof/lakeproof/pipeline"
	"github.com/lakeproof/lakeproof/sources/local"
)

func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"a": "", "z": ""})
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := map[string]string{"fifo": "named pipe (FIFO)", "sock": "socket"}
	// Device nodes need CAP_MKNOD, which containers often lack.
	if err := unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err == nil {
		want["null"] = "character device"
	} else {
		t.Logf("cannot make a device node (%v); the device case is not tested", err)
	}
	// With FollowSymlinks, a link to a FIFO is still refused.
	if err := os.Symlink("fifo", filepath.Join(dir, "fifo-link")); err != nil {
		t.Fatal(err)
	}

	l := list(t, newSource(t, dir, local.Options{}))
	if got := l.keys(); !slices.Equal(got, []string{"a", "z"}) {
		t.Errorf("keys = %q, want [a z]", got)
	}
	for key, what := range want {
		e := l.errFor(t, key)
		if !errors.Is(e, pipeline.ErrUnsupported) || !strings.Contains(e.Error(), "is a "+what) {
			t.Errorf("%q: %v; want ErrUnsupported saying it is a %s", key, e, what)
		}
	}
	lf := list(t, newSource(t, dir, local.Options{FollowSymlinks: true}))
	if e := lf.errFor(t, "fifo-link"); !errors.Is(e, pipeline.ErrUnsupported) || !strings.Contains(e.Error(), "symbolic link to a named pipe") {
		t.Errorf("fifo-link: %v; want ErrUnsupported saying it links to a FIFO", e)
	}
}

// dropFSPrivileges makes the calling goroutine's thread use uid and gid
// 65534 (nobody) for file permission checks, so that a test running as root
// can see permission errors: setfsuid(2) to a non-zero id drops
// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the thread. The thread stays
// locked to the goroutine and is thrown away when the test's goroutine ends.
// It skips the test if that is not possible.
func dropFSPrivileges(t *testing.T) {
	runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
	if err := unix.Setfsgid(65534); err != nil {
		t.Skipf("running as root and cannot setfsgid (%v): permission errors cannot be tested", err)
	}
	if err := unix.Setfsuid(65534); err != nil {
		t.Skipf("running as root and cannot setfsuid (%v): permission errors cannot be tested", err)
	}
	t.Cleanup(func() { unix.Setfsuid(0); unix.Setfsgid(0) })
}

func TestUnreadable(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "lake")
	makeTree(t, dir, map[string]string{"a": "a", "locked/x": "x", "secret": "s", "z/ok": "ok"})
	for _, p := range []string{filepath.Join(dir, "secret"), filepath.Join(dir, "locked")} {
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "locked"), 0o755) })
	if os.Geteuid() == 0 {
		// Let the unprivileged thread reach the dataset: t.TempDir makes
		// its directories 0700.
		for _, p := range []string{filepath.Dir(base), base} {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		dropFSPrivileges(t)
	}
	if f, err := os.Open(filepath.Join(dir, "secret")); err == nil {
		f.Close()
		t.Skip("a mode 0000 file is readable here even without privileges; permission errors cannot be tested")
	}

	if src, err := local.New(filepath.Join(dir, "locked"), local.Options{}); err == nil {
		src.Close()
		t.Error("New on an unreadable directory succeeded")
	} else if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "cannot be opened") {
		t.Errorf("New on an unreadable directory: %v", err)
	}

	src := newSource(t, dir, local.Options{})
	l := list(t, src)
	// Stat needs no read permission: secret is listed and fails to open.
	if got, want := l.keys(), []string{"a", "secret", "z/ok"}; !slices.Equal(got, want) {
		t.Errorf("keys = %q, want %q", got, want)
	}
	e := l.errFor(t, "locked/")
	if e.Op != "list" || !errors.Is(e, fs.ErrPermission) || !strings.Contains(e.Error(), "cannot read directory") {
		t.Errorf("locked/: %v; want a list error wrapping fs.ErrPermission", e)
	}
	if n := len(l.errs()); n != 1 {
		t.Errorf("%d errors, want 1: %v", n, l.errs())
	}
	_, err := src.Open(context.Background(), l.object(t, "secret"))
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), filepath.Join(dir, "secret")) {
		t.Errorf("Open(secret) = %v; want an error wrapping fs.ErrPermission naming the path", err)
	}
	if got := readAll(t, src, l.object(t, "z/ok")); got != "ok" {
		t.Errorf("z/ok = %q", got)
	}
}

// TestRewrittenSameSizeAndMtime rewrites a file in place while it is read
// and puts its size and modification time back: only the inode change time
// shows it.
func TestRewrittenSameSizeAndMtime(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"f": "original"})
	path := filepath.Join(dir, "f")
	src, obj := listOne(t, dir, "f")
	rc, err := src.Open(context.Background(), obj)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // past the filesystem's timestamp granularity
	if err := os.WriteFile(path, []byte("ORIGINAL"), 0o644); err != nil {
		t.Fatal(err)
	}
	chtimes(t, path, obj.ModTime)
	if _, err := io.ReadAll(rc); err != nil {
		t.Fatal(err)
	}
	checkErr(t, "Close", rc.Close(), pipeline.ErrChanged, "inode change time")
}

func TestOpenDirectorySwappedForSymlink(t *testing.T) {
	if !local.Openat2Available() {
		t.Skip("openat2 is unavailable (kernel older than 5.6, or filtered): Open only refuses a link in the last path component")
	}
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"d/f": "content"})
	src, obj := listOne(t, dir, "d/f")
	if err := os.Rename(filepath.Join(dir, "d"), filepath.Join(dir, "d2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d2", filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	rc, err := src.Open(context.Background(), obj)
	if err == nil {
		rc.Close()
		t.Fatal("Open through a directory swapped for a symbolic link succeeded")
	}
	if !errors.Is(err, pipeline.ErrChanged) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Open: %v; want ErrChanged naming the symbolic link", err)
	}
	// With links followed, the same open is fine.
	srcF := newSource(t, dir, local.Options{FollowSymlinks: true})
	if got := readAll(t, srcF, obj); got != "content" {
		t.Errorf("read %q", got)
	}
}

// TestOpenFIFOSwappedIn checks that a file replaced by a FIFO after listing
// fails to open instead of blocking on it.
func TestOpenFIFOSwappedIn(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, map[string]string{"f": ""})
	src, obj := listOne(t, dir, "f")
	remove(t, filepath.Join(dir, "f"))
	if err := unix.Mkfifo(filepath.Join(dir, "f"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		rc, err := src.Open(context.Background(), obj)
		if err == nil {
			rc.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		checkErr(t, "Open", err, pipeline.ErrChanged, "is now a named pipe (FIFO)")
	case <-time.After(10 * time.Second):
		t.Fatal("Open blocked on a FIFO")
	}
}
