package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/lakeproof/lakeproof/pipeline"
)

// readRetries is how many times a ranged GET whose body failed part-way is
// resumed (with a ranged GET from the last byte received) before giving up;
// a small object's single GET may be resumed twice as often in all.
const readRetries = 5

// Open opens obj for reading. The returned reader yields exactly obj.Size
// bytes of the listed version of the object or fails; it implements
// io.ReaderAt for parallel ranged reads, and has a Checksum method. ctx
// governs every request the reader makes until Close.
//
// Objects up to Options.PartSize bytes are read with one GET, made by
// Open; larger ones with parallel ranged GETs, after a HEAD made by Open,
// but only when no other object of this Source is open: when the caller
// reads several objects at once, their GETs already run in parallel and
// ranges only add connections and read-ahead memory (benchmarks/RESULTS.md,
// 8 objects of 256 MiB on a local server: one GET each was up to 2× faster).
// Either way, Open returns an error wrapping pipeline.ErrNotFound if the
// object is gone and pipeline.ErrChanged if it no longer has the listed
// ETag.
func (s *Source) Open(ctx context.Context, obj pipeline.Object) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	r := &Reader{
		s:      s,
		ctx:    ctx,
		cancel: cancel,
		obj:    obj,
		key:    s.prefix + obj.Key,
	}
	if obj.Size > s.partSize && s.partConc > 1 && s.open.Load() == 0 {
		r.large = true
		in := &s3.HeadObjectInput{
			Bucket:       aws.String(s.bucket),
			Key:          aws.String(r.key),
			ChecksumMode: types.ChecksumModeEnabled,
		}
		r.pin(&in.IfMatch, &in.IfUnmodifiedSince)
		out, err := s.client.HeadObject(ctx, in)
		if err != nil {
			cancel()
			return nil, r.requestError("head", err, true)
		}
		if err := r.checkAnswer(out.ETag, out.ContentLength, out.ContentRange, 0, obj.Size-1); err != nil {
			cancel()
			return nil, err
		}
		r.checksum = checksumOf(out.ChecksumCRC64NVME, out.ChecksumCRC32C, out.ChecksumCRC32, out.ChecksumSHA256, out.ChecksumSHA1)
		r.counted = true
		s.open.Add(1)
		return r, nil
	}
	body, err := r.get(ctx, 0, true)
	if err != nil {
		cancel()
		return nil, err
	}
	r.body = body
	r.counted = true
	s.open.Add(1)
	return r, nil
}

// Reader reads one object; it is returned by Source.Open. Read, Close and
// Checksum must not be called concurrently with each other; ReadAt is safe
// for concurrent use (also with Read).
type Reader struct {
	s      *Source
	ctx    context.Context
	cancel context.CancelFunc
	obj    pipeline.Object
	key    string // full S3 key
	large  bool
	// counted: this reader is in s.open until its first Close.
	counted bool

	checksum string

	// sequential reading
	off     int64         // next byte Read returns
	body    io.ReadCloser // small objects: the current GET's body, nil after a failure
	eof     bool          // body has been read to its end
	resumes int           // GETs made after the first one failed part-way

	// large objects: parts in flight, in order
	queue   []*part
	cur     *part
	curPos  int
	nextOff int64 // offset of the next part to launch
	wg      sync.WaitGroup

	mu      sync.Mutex
	changed error // sticky error wrapping pipeline.ErrChanged
	err     error // sticky error of Read
}

var _ io.ReaderAt = (*Reader)(nil)

type part struct {
	off  int64
	buf  *[]byte
	n    int
	err  error
	done chan struct{}
}

// Checksum returns the provider checksum that the server reported for the
// object when it was opened, as "ALGORITHM:base64" (for example
// "CRC64NVME:..."), or "" if it reported none. For a whole-object GET the
// SDK also verifies the content against it.
func (r *Reader) Checksum() string { return r.checksum }

// Read reads the next bytes of the object.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n   int
		err error
	)
	if r.large {
		n, err = r.readParts(p)
	} else {
		n, err = r.readStream(p)
	}
	if err != nil && err != io.EOF {
		r.err = r.note(err)
		return n, r.err
	}
	return n, err
}

// readStream reads a small object from its GET body, resuming with a ranged
// GET after a failure part-way.
func (r *Reader) readStream(p []byte) (int, error) {
	size := r.obj.Size
	for {
		if r.off == size && (r.eof || r.body == nil) {
			return 0, io.EOF
		}
		if r.body == nil {
			body, err := r.get(r.ctx, r.off, false)
			if err != nil {
				return 0, err
			}
			r.body, r.eof = body, false
		}
		var (
			n   int
			err error
		)
		if r.off < size {
			if int64(len(p)) > size-r.off {
				p = p[:size-r.off]
			}
			n, err = r.body.Read(p)
		} else {
			// All bytes are in; read to the end of the body so that the
			// SDK verifies the checksum and extra bytes are noticed.
			var one [1]byte
			n, err = r.body.Read(one[:])
			if n > 0 {
				return 0, fmt.Errorf("read %s: body longer than the %d bytes announced: %w", r.name(), size, pipeline.ErrChanged)
			}
		}
		r.off += int64(n)
		if err == io.EOF {
			r.eof = true
			if r.off < size {
				err = io.ErrUnexpectedEOF
			} else {
				err = nil
			}
		}
		if err != nil {
			r.body.Close()
			r.body = nil
			if isChecksumMismatch(err) {
				return n, fmt.Errorf("read %s: content does not match the provider's checksum: %w", r.name(), err)
			}
			if !transient(err) || r.resumes >= 2*readRetries || r.ctx.Err() != nil {
				return n, fmt.Errorf("read %s at byte %d of %d: %w", r.name(), r.off, size, err)
			}
			r.s.log.Debug("s3: resuming read", "object", r.name(), "offset", r.off, "err", err)
			if serr := sleep(r.ctx, backoff(min(r.resumes, readRetries))); serr != nil {
				return n, serr
			}
			r.resumes++
			if n > 0 {
				return n, nil
			}
			continue
		}
		if n > 0 || r.off == size {
			return n, nil
		}
	}
}

// readParts reads a large object from parts fetched in parallel.
func (r *Reader) readParts(p []byte) (int, error) {
	if r.cur == nil {
		if r.off >= r.obj.Size {
			return 0, io.EOF
		}
		if err := r.fill(true); err != nil {
			return 0, err
		}
		r.cur, r.queue = r.queue[0], r.queue[1:]
		r.fill(false)
		select {
		case <-r.cur.done:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
		if r.cur.err != nil {
			return 0, r.cur.err
		}
		r.curPos = 0
	}
	n := copy(p, (*r.cur.buf)[r.curPos:r.cur.n])
	r.curPos += n
	r.off += int64(n)
	if r.curPos == r.cur.n {
		r.release(r.cur)
		r.cur = nil
	}
	return n, nil
}

// fill launches part fetches until PartConcurrency are queued, as far as
// the Source's read-ahead budget allows. With wait, and nothing queued, it
// waits for budget for one part; only a reader that holds no budget may
// wait, or readers could each hold a part and wait for another forever.
func (r *Reader) fill(wait bool) error {
	for len(r.queue) < r.s.partConc && r.nextOff < r.obj.Size {
		if wait && len(r.queue) == 0 {
			select {
			case r.s.slots <- struct{}{}:
			case <-r.ctx.Done():
				return r.ctx.Err()
			}
		} else {
			select {
			case r.s.slots <- struct{}{}:
			default:
				return nil
			}
		}
		buf := r.s.bufs.Get().(*[]byte)
		p := &part{off: r.nextOff, buf: buf, done: make(chan struct{})}
		n := min(int64(len(*buf)), r.obj.Size-r.nextOff)
		r.nextOff += n
		r.queue = append(r.queue, p)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer close(p.done)
			p.n, p.err = r.fetch(r.ctx, p.off, (*p.buf)[:n])
		}()
	}
	return nil
}

// release returns a part's buffer and its read-ahead budget.
func (r *Reader) release(p *part) {
	r.s.bufs.Put(p.buf)
	<-r.s.slots
}

// ReadAt reads len(p) bytes at off with ranged GETs pinned to the listed
// version. It is safe for concurrent use.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", r.name(), off)
	}
	if off >= r.obj.Size {
		return 0, io.EOF
	}
	want := p
	if int64(len(want)) > r.obj.Size-off {
		want = want[:r.obj.Size-off]
	}
	n, err := r.fetch(r.ctx, off, want)
	if err != nil {
		return n, r.note(err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// fetch fills buf with the bytes at off, resuming after failures part-way.
func (r *Reader) fetch(ctx context.Context, off int64, buf []byte) (int, error) {
	n := 0
	for attempt := 0; ; attempt++ {
		body, err := r.getRange(ctx, off+int64(n), off+int64(len(buf))-1)
		if err == nil {
			var m int
			m, err = io.ReadFull(body, buf[n:])
			n += m
			body.Close()
			if err == nil {
				return n, nil
			}
			err = fmt.Errorf("read %s at byte %d of %d: %w", r.name(), off+int64(n), r.obj.Size, err)
		}
		if !transient(err) || attempt >= readRetries || ctx.Err() != nil {
			return n, err
		}
		r.s.log.Debug("s3: retrying ranged read", "object", r.name(), "offset", off+int64(n), "err", err)
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return n, err
		}
	}
}

// Close ends the reader. It returns an error wrapping pipeline.ErrChanged if
// any request found the object changed or gone; content read from it must
// not be trusted.
func (r *Reader) Close() error {
	if r.counted {
		r.counted = false
		r.s.open.Add(-1)
	}
	r.cancel()
	r.wg.Wait()
	for _, p := range r.queue {
		r.release(p)
	}
	if r.cur != nil {
		r.release(r.cur)
	}
	r.queue, r.cur = nil, nil
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// note records err if it says the object changed, and returns it.
func (r *Reader) note(err error) error {
	if errors.Is(err, pipeline.ErrChanged) {
		r.mu.Lock()
		if r.changed == nil {
			r.changed = err
		}
		r.mu.Unlock()
	}
	return err
}

func (r *Reader) name() string { return "s3://" + r.s.bucket + "/" + r.key }

// pin sets the precondition that pins a request to the listed version.
func (r *Reader) pin(ifMatch **string, ifUnmodified **time.Time) {
	if r.obj.ETag != "" {
		*ifMatch = aws.String(quoteETag(r.obj.ETag))
	} else if !r.obj.ModTime.IsZero() {
		*ifUnmodified = aws.Time(r.obj.ModTime)
	}
}

// get starts a GET of the object from byte off to its end; whole asks for
// the whole object without a Range (so that the server reports the
// object's checksum), and is only used for off == 0.
func (r *Reader) get(ctx context.Context, off int64, whole bool) (io.ReadCloser, error) {
	if whole || r.obj.Size == 0 {
		in := &s3.GetObjectInput{
			Bucket:       aws.String(r.s.bucket),
			Key:          aws.String(r.key),
			ChecksumMode: types.ChecksumModeEnabled,
		}
		r.pin(&in.IfMatch, &in.IfUnmodifiedSince)
		out, err := r.s.client.GetObject(ctx, in)
		if err != nil {
			return nil, r.requestError("get", err, whole)
		}
		if err := r.checkAnswer(out.ETag, out.ContentLength, out.ContentRange, 0, r.obj.Size-1); err != nil {
			out.Body.Close()
			return nil, err
		}
		if whole {
			r.checksum = checksumOf(out.ChecksumCRC64NVME, out.ChecksumCRC32C, out.ChecksumCRC32, out.ChecksumSHA256, out.ChecksumSHA1)
		}
		return out.Body, nil
	}
	return r.getRange(ctx, off, r.obj.Size-1)
}

// getRange starts a GET of bytes first..last (inclusive) of the object.
func (r *Reader) getRange(ctx context.Context, first, last int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{
		Bucket: aws.String(r.s.bucket),
		Key:    aws.String(r.key),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
	}
	r.pin(&in.IfMatch, &in.IfUnmodifiedSince)
	out, err := r.s.client.GetObject(ctx, in)
	if err != nil {
		return nil, r.requestError("get", err, false)
	}
	if err := r.checkAnswer(out.ETag, out.ContentLength, out.ContentRange, first, last); err != nil {
		out.Body.Close()
		return nil, err
	}
	return out.Body, nil
}

// checkAnswer checks that a response is for the listed version and for the
// bytes first..last: same ETag, right length, right Content-Range.
func (r *Reader) checkAnswer(etag *string, length *int64, contentRange *string, first, last int64) error {
	if e := unquoteETag(aws.ToString(etag)); r.obj.ETag != "" && e != "" && e != r.obj.ETag {
		return fmt.Errorf("get %s: ETag is %q, listed as %q: %w", r.name(), e, r.obj.ETag, pipeline.ErrChanged)
	}
	want := last - first + 1
	if length != nil && *length != want {
		return fmt.Errorf("get %s: server sent %d bytes for bytes %d-%d of an object listed with %d bytes: %w", r.name(), *length, first, last, r.obj.Size, pipeline.ErrChanged)
	}
	if cr := aws.ToString(contentRange); cr != "" {
		var a, b, total int64
		if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &a, &b, &total); err != nil {
			return fmt.Errorf("get %s: malformed Content-Range %q", r.name(), cr)
		}
		if total != r.obj.Size {
			return fmt.Errorf("get %s: object has %d bytes, listed with %d: %w", r.name(), total, r.obj.Size, pipeline.ErrChanged)
		}
		if a != first || b != last {
			return fmt.Errorf("get %s: server sent bytes %d-%d, asked for %d-%d", r.name(), a, b, first, last)
		}
	}
	return nil
}

// requestError maps the answer to a GET or HEAD onto the pipeline's
// sentinels. atOpen says whether the object may simply be gone
// (ErrNotFound) or has gone while being read (ErrChanged).
func (r *Reader) requestError(op string, err error, atOpen bool) error {
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch status {
	case http.StatusPreconditionFailed:
		return fmt.Errorf("%s %s: replaced since it was listed (ETag no longer %q): %w", op, r.name(), r.obj.ETag, pipeline.ErrChanged)
	case http.StatusNotFound:
		if atOpen {
			return fmt.Errorf("%s %s: deleted since it was listed: %w", op, r.name(), pipeline.ErrNotFound)
		}
		return fmt.Errorf("%s %s: deleted while being read: %w: %w", op, r.name(), pipeline.ErrChanged, pipeline.ErrNotFound)
	case http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%s %s: shorter than listed: %w", op, r.name(), pipeline.ErrChanged)
	}
	return fmt.Errorf("%s %s: %w", op, r.name(), err)
}

func quoteETag(e string) string {
	if strings.HasPrefix(e, `"`) || strings.HasPrefix(e, `W/"`) {
		return e
	}
	return `"` + e + `"`
}

// checksumOf formats the first non-empty checksum, in the order of the
// arguments: CRC64NVME, CRC32C, CRC32, SHA256, SHA1.
func checksumOf(crc64nvme, crc32c, crc32, sha256, sha1 *string) string {
	for _, c := range []struct {
		alg string
		v   *string
	}{{"CRC64NVME", crc64nvme}, {"CRC32C", crc32c}, {"CRC32", crc32}, {"SHA256", sha256}, {"SHA1", sha1}} {
		if v := aws.ToString(c.v); v != "" {
			return c.alg + ":" + v
		}
	}
	return ""
}

func isChecksumMismatch(err error) bool {
	return strings.Contains(err.Error(), "checksum did not match")
}
