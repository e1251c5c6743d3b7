package trail

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiterKeys is how many per-key buckets the limiter keeps before it
// forgets the idle ones (those whose bucket is full again).
const maxLimiterKeys = 100000

// limiter is a token bucket (golang.org/x/time/rate) per key: the caller's
// identity, or the client IP when unauthenticated.
type limiter struct {
	mu      sync.Mutex
	rate    rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
}

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{rate: rate.Limit(perSecond), burst: max(burst, 1), buckets: map[string]*rate.Limiter{}}
}

// allow takes a token for key; when none is left it returns how long to
// wait for the next one.
func (l *limiter) allow(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	if len(l.buckets) > maxLimiterKeys {
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil {
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[key] = b
	}
	l.mu.Unlock()
	if b.AllowN(now, 1) {
		return 0, true
	}
	wait := time.Duration(float64(time.Second) / float64(l.rate))
	if r := b.ReserveN(now, 1); r.OK() {
		wait = r.DelayFrom(now)
		r.CancelAt(now)
	}
	return wait, false
}

// hub wakes the event streams and long polls of a channel after appends.
type hub struct {
	mu    sync.Mutex
	chans map[string]chan struct{}
}

func newHub() *hub { return &hub{chans: map[string]chan struct{}{}} }

// wait returns a channel that is closed at the next notify for addr. Take
// it before reading the store so that no append is missed.
func (h *hub) wait(addr string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.chans[addr]
	if c == nil {
		c = make(chan struct{})
		h.chans[addr] = c
	}
	return c
}

func (h *hub) notify(addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.chans[addr]; c != nil {
		close(c)
		delete(h.chans, addr)
	}
}
