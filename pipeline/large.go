package pipeline

import (
	"context"
	"io"

	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
)

// hashLarge hashes the first size bytes of r. It is replaced by a parallel
// subtree hasher (pipeline/parhash) when that is available.
var hashLarge = func(ctx context.Context, r io.ReaderAt, size int64, workers, bufSize int) (lakeproof.Hash, error) {
	h := blake3.New()
	buf := make([]byte, bufSize)
	var off int64
	for off < size {
		if err := ctx.Err(); err != nil {
			return lakeproof.Hash{}, err
		}
		n := min(int64(len(buf)), size-off)
		m, err := r.ReadAt(buf[:n], off)
		h.Write(buf[:m])
		off += int64(m)
		if err != nil && !(err == io.EOF && off == size) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return lakeproof.Hash{}, err
		}
	}
	var d lakeproof.Hash
	h.Sum(d[:0])
	return d, nil
}
