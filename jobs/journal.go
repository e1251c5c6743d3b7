package jobs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zeebo/blake3"

	"github.com/lakeproof/lakeproof"
	"github.com/lakeproof/lakeproof/index"
	"github.com/lakeproof/lakeproof/pipeline"
)

// The resume journal is a directory of segments, one per attempt of a run.
// A segment starts with a JSON header line naming the job (source URI and
// shard) and continues with binary records, one per object hashed in that
// attempt, in key order:
//
//	u32be(len(body)) || body || first 8 bytes of BLAKE3(body)
//	body = u16be(len(key)) key u64be(size) u64be(mtime ns) u16be(len(etag)) etag
//	       u16be(len(checksum)) checksum digest(32)
//
// Records are buffered and the segment is fsynced every JournalSyncEvery
// while records wait (by a timer too, so that records added before a long
// pause, such as a large object hashed ahead of them, do not wait for the
// next one) or every JournalSyncBytes, so the fsync cost is bounded
// whatever the number of objects; a crash loses at most that much work. A
// torn or corrupt tail ends the segment's valid records. On success the
// directory is removed.
//
// Each segment is sorted, so a resumed run merge-joins its listing with
// every segment (one cursor each) and takes the digest of an object whose
// key, size, mtime, ETag and checksum equal a record's, without reading it.

// ErrJournal means a journal belongs to another job or cannot be used.
var ErrJournal = errors.New("resume journal unusable")

const journalFormat = "lakeproof/journal/v1"

// Bounds on the work a crash can lose.
var (
	JournalSyncEvery = time.Second
	JournalSyncBytes = 8 << 20
)

type journalHeader struct {
	Format string       `json:"format"`
	Source string       `json:"source"`
	Shard  *index.Shard `json:"shard,omitempty"`
}

func (h journalHeader) same(o journalHeader) bool {
	if h.Format != o.Format || h.Source != o.Source || (h.Shard == nil) != (o.Shard == nil) {
		return false
	}
	return h.Shard == nil || *h.Shard == *o.Shard
}

type journalRecord struct {
	obj    pipeline.Object
	digest lakeproof.Hash
}

func encodeRecord(o pipeline.Object, d lakeproof.Hash) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(o.Key)))
	b = append(b, o.Key...)
	b = binary.BigEndian.AppendUint64(b, uint64(o.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(o.ModTime.UnixNano()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(o.ETag)))
	b = append(b, o.ETag...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(o.Checksum)))
	b = append(b, o.Checksum...)
	b = append(b, d[:]...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	sum := blake3.Sum256(b[4:])
	return append(b, sum[:8]...)
}

// decodeRecord parses one record from r; ok is false at a clean or torn end.
func decodeRecord(r *bufio.Reader) (journalRecord, bool) {
	var jr journalRecord
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return jr, false
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > 4096 {
		return jr, false
	}
	buf := make([]byte, size+8)
	if _, err := io.ReadFull(r, buf); err != nil {
		return jr, false
	}
	body, sum := buf[:size], buf[size:]
	if want := blake3.Sum256(body); !bytes.Equal(want[:8], sum) {
		return jr, false
	}
	str := func() (string, bool) {
		if len(body) < 2 {
			return "", false
		}
		l := int(binary.BigEndian.Uint16(body))
		if len(body) < 2+l {
			return "", false
		}
		s := string(body[2 : 2+l])
		body = body[2+l:]
		return s, true
	}
	u64 := func() (uint64, bool) {
		if len(body) < 8 {
			return 0, false
		}
		v := binary.BigEndian.Uint64(body)
		body = body[8:]
		return v, true
	}
	var ok [6]bool
	jr.obj.Key, ok[0] = str()
	sz, ok1 := u64()
	mt, ok2 := u64()
	ok[1], ok[2] = ok1, ok2
	jr.obj.ETag, ok[3] = str()
	jr.obj.Checksum, ok[4] = str()
	ok[5] = len(body) == lakeproof.HashSize
	for _, b := range ok {
		if !b {
			return jr, false
		}
	}
	jr.obj.Size, jr.obj.ModTime = int64(sz), time.Unix(0, int64(mt))
	copy(jr.digest[:], body)
	return jr, true
}

// journalReader merge-joins the listing with every segment.
type journalReader struct {
	segs []*segCursor
}

type segCursor struct {
	f   *os.File
	r   *bufio.Reader
	cur journalRecord
	ok  bool
}

func (c *segCursor) advance() { c.cur, c.ok = decodeRecord(c.r) }

func segments(dir string) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "seg-*"))
	sort.Strings(names)
	return names, err
}

// openJournal opens the segments of an interrupted run, if any. A segment
// of another job is refused.
func openJournal(dir, source string, shard *index.Shard) (*journalReader, error) {
	names, err := segments(dir)
	if err != nil {
		return nil, err
	}
	want := journalHeader{Format: journalFormat, Source: source, Shard: shard}
	jr := &journalReader{}
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			jr.close()
			return nil, fmt.Errorf("%w: %v", ErrJournal, err)
		}
		c := &segCursor{f: f, r: bufio.NewReaderSize(f, 1<<16)}
		jr.segs = append(jr.segs, c)
		line, err := c.r.ReadBytes('\n')
		if err != nil { // a segment torn before its header was complete holds nothing
			continue
		}
		var h journalHeader
		if json.Unmarshal(line, &h) != nil || !h.same(want) {
			jr.close()
			return nil, fmt.Errorf("%w: %s belongs to another job (%s), not to %s; remove it to start afresh",
				ErrJournal, name, strings.TrimSpace(string(line)), source)
		}
		c.advance()
	}
	return jr, nil
}

func (jr *journalReader) lookup(o pipeline.Object) (lakeproof.Hash, bool) {
	for _, c := range jr.segs {
		for c.ok && c.cur.obj.Key < o.Key {
			c.advance()
		}
		if c.ok && c.cur.obj.Key == o.Key {
			if metaMatch(o, c.cur.obj) {
				return c.cur.digest, true
			}
		}
	}
	return lakeproof.Hash{}, false
}

func (jr *journalReader) close() {
	for _, c := range jr.segs {
		c.f.Close()
	}
}

// journalWriter appends the records of this attempt to a new segment. Its
// methods may be called from one goroutine; a timer goroutine of its own
// syncs waiting records every JournalSyncEvery.
type journalWriter struct {
	dir string

	mu       sync.Mutex // guards the fields below, shared with the timer
	f        *os.File
	w        *bufio.Writer
	unsynced int
	last     time.Time
	err      error // of a sync by the timer, reported by the next add or close

	stop chan struct{}
	done chan struct{}
}

func createJournal(dir, source string, shard *index.Shard) (*journalWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJournal, err)
	}
	names, err := segments(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("seg-%06d", len(names)+1)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJournal, err)
	}
	h, _ := json.Marshal(journalHeader{Format: journalFormat, Source: source, Shard: shard})
	jw := &journalWriter{dir: dir, f: f, w: bufio.NewWriterSize(f, 1<<20), last: time.Now(),
		stop: make(chan struct{}), done: make(chan struct{})}
	jw.w.Write(append(h, '\n'))
	if err := jw.sync(); err != nil {
		f.Close()
		return nil, err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	go jw.timer(max(JournalSyncEvery, time.Millisecond))
	return jw, nil
}

// timer syncs records that have waited a period, until close.
func (jw *journalWriter) timer(every time.Duration) {
	defer close(jw.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-jw.stop:
			return
		case <-t.C:
			jw.mu.Lock()
			if jw.f != nil && jw.unsynced > 0 && time.Since(jw.last) >= every && jw.err == nil {
				jw.err = jw.sync()
			}
			jw.mu.Unlock()
		}
	}
}

func (jw *journalWriter) add(o pipeline.Object, d lakeproof.Hash) error {
	rec := encodeRecord(o, d)
	jw.mu.Lock()
	defer jw.mu.Unlock()
	if jw.err != nil {
		return jw.err
	}
	if _, err := jw.w.Write(rec); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	jw.unsynced += len(rec)
	if jw.unsynced >= JournalSyncBytes || time.Since(jw.last) >= JournalSyncEvery {
		return jw.sync()
	}
	return nil
}

// sync flushes and fsyncs the segment; jw.mu is held (or jw not shared yet).
func (jw *journalWriter) sync() error {
	if err := jw.w.Flush(); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	if err := jw.f.Sync(); err != nil {
		return fmt.Errorf("fsync journal: %w", err)
	}
	jw.unsynced, jw.last = 0, time.Now()
	return nil
}

func (jw *journalWriter) Close() error { return jw.close() }

func (jw *journalWriter) close() error {
	jw.mu.Lock()
	if jw.f == nil {
		jw.mu.Unlock()
		return nil
	}
	err := jw.sync()
	if jw.err != nil {
		err = jw.err
	}
	jw.f.Close()
	jw.f = nil
	jw.mu.Unlock()
	close(jw.stop)
	<-jw.done
	return err
}

// remove deletes the journal after the index was published.
func (jw *journalWriter) remove() {
	jw.close()
	os.RemoveAll(jw.dir)
}
