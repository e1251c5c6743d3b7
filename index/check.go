package index

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/transparency-dev/merkle/compact"
	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
)

// Check verifies the whole index against its summary: the BLAKE3 digest of
// every file listed in summary.json, every row of the Parquet table, the
// root recomputed from the rows, and every stored tree level recomputed
// from the rows. Any difference is an error wrapping ErrCorrupt.
func (ix *Index) Check(ctx context.Context) error {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, ix.dir, fmt.Sprintf(format, args...))
	}
	for name, want := range ix.sum.Digests {
		if strings.ContainsAny(name, "/\\") || name == SummaryFile {
			return corrupt("%s lists an invalid file name %q", SummaryFile, name)
		}
		f, err := ix.dir.Open(ctx, name)
		if err != nil {
			return corrupt("%s: %v", name, err)
		}
		h := blake3.New()
		_, err = io.Copy(h, io.NewSectionReader(f, 0, f.Size()))
		f.Close()
		if err != nil {
			return corrupt("read %s: %v", name, err)
		}
		if got := lakeproof.Hash(h.Sum(nil)).String(); got != want {
			return corrupt("%s has BLAKE3 %s, %s says %s", name, got, SummaryFile, want)
		}
	}
	for level := range ix.levels {
		if _, ok := ix.sum.Digests[levelFile(level)]; !ok {
			return corrupt("%s has no digest for %s", SummaryFile, levelFile(level))
		}
	}
	rf := compact.RangeFactory{Hash: lakeproof.Hasher.HashChildren}
	tree := rf.NewEmptyRange(0)
	var (
		bytes    uint64
		visitErr error
	)
	buf := make([]byte, lakeproof.HashSize)
	visit := func(id compact.NodeID, hash []byte) {
		f := ix.levels[id.Level]
		if id.Level%LevelStride != 0 || visitErr != nil || f == nil {
			return
		}
		if _, err := f.ReadAt(buf, int64(id.Index)*lakeproof.HashSize); err != nil || string(buf) != string(hash) {
			visitErr = corrupt("%s: node %d does not match the rows", levelFile(id.Level), id.Index)
		}
	}
	for e, err := range ix.Entries(ctx, "") {
		if err != nil {
			return err
		}
		leaf := lakeproof.LeafHash(e.Key, uint64(e.Size), e.Digest)
		if err := tree.Append(leaf[:], visit); err != nil {
			return corrupt("%v", err)
		}
		if visitErr != nil {
			return visitErr
		}
		bytes += uint64(e.Size)
	}
	root := lakeproof.EmptyRoot
	if tree.End() > 0 {
		r, err := tree.GetRootHash(nil)
		if err != nil {
			return corrupt("%v", err)
		}
		root = lakeproof.Hash(r)
	}
	switch {
	case tree.End() != ix.sum.Files:
		return corrupt("%d rows, %s says %d files", tree.End(), SummaryFile, ix.sum.Files)
	case bytes != ix.sum.Bytes:
		return corrupt("rows total %d bytes, %s says %d", bytes, SummaryFile, ix.sum.Bytes)
	case root != ix.sum.Root:
		return corrupt("rows give root %s, %s says %s", root, SummaryFile, ix.sum.Root)
	}
	return nil
}
