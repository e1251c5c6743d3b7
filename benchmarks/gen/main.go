// Command gen writes the deterministic datasets of benchmarks/compare.sh.
//
//	gen -out DIR -files 20000 -min 4096 -max 262144 -seed 1   # ~1.15 GiB of files
//	gen -out DIR -files 1 -min 2147483648 -max 2147483648     # one 2 GiB file
//	gen -out DIR -files 1000000 -min 0 -max 512 -per-dir 1000 # 1M tiny files
//
// File i (0-based) is DIR/dNNNN/fNNNNNNN.bin, with -per-dir files per
// directory. Its size is drawn log-uniformly from [min, max] (uniform in
// log(size), so small files are as common as in a real lake and the mean
// of 4 KiB..256 KiB is ~61 KiB) by a PCG seeded with -seed, and its content
// is a ChaCha8 stream keyed by (seed, i). The same flags therefore give the
// same bytes on every machine and Go version. DIR must not exist: gen never
// overwrites, and it prints the number of files and bytes written.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

func main() {
	out := flag.String("out", "", "dataset directory to create (must not exist)")
	files := flag.Int("files", 20000, "number of files")
	minSize := flag.Int64("min", 4<<10, "smallest file size in bytes")
	maxSize := flag.Int64("max", 256<<10, "largest file size in bytes")
	perDir := flag.Int("per-dir", 100, "files per directory")
	seed := flag.Uint64("seed", 1, "seed of sizes and contents")
	flag.Parse()
	if err := run(*out, *files, *minSize, *maxSize, *perDir, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out string, files int, minSize, maxSize int64, perDir int, seed uint64) error {
	switch {
	case out == "":
		return fmt.Errorf("-out is required")
	case files < 0 || perDir < 1 || minSize < 0 || maxSize < minSize:
		return fmt.Errorf("bad flags: need files >= 0, per-dir >= 1, 0 <= min <= max")
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		return fmt.Errorf("create dataset: %w", err)
	}
	sizes := rand.New(rand.NewPCG(seed, 0x6c616b6570726f6f)) // "lakeproo"
	buf := make([]byte, 1<<20)
	var total int64
	for i := range files {
		size := logUniform(sizes, minSize, maxSize)
		dir := filepath.Join(out, fmt.Sprintf("d%04d", i/perDir))
		if i%perDir == 0 {
			if err := os.Mkdir(dir, 0o755); err != nil {
				return fmt.Errorf("create directory: %w", err)
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("f%07d.bin", i))
		if err := writeFile(path, size, seed, uint64(i), buf); err != nil {
			return err
		}
		total += size
	}
	fmt.Printf("%s: %d files, %d bytes\n", out, files, total)
	return nil
}

// logUniform draws a size whose logarithm is uniform in [log(lo+1), log(hi+1)].
func logUniform(r *rand.Rand, lo, hi int64) int64 {
	if lo == hi {
		return lo
	}
	a, b := math.Log(float64(lo)+1), math.Log(float64(hi)+1)
	s := int64(math.Exp(a+r.Float64()*(b-a))) - 1
	return min(max(s, lo), hi)
}

func writeFile(path string, size int64, seed, i uint64, buf []byte) error {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], seed)
	binary.LittleEndian.PutUint64(key[8:], i)
	content := rand.NewChaCha8(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	w := bufio.NewWriterSize(f, len(buf))
	if _, err := io.CopyBuffer(w, io.LimitReader(content, size), buf); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}
