package trail

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// metrics keeps the Prometheus series of IS (total_requests,
// failed_requests, http_request_duration_seconds) plus lakeproof's own,
// and writes them in the text exposition format.
type metrics struct {
	mu       sync.Mutex
	total    map[[3]string]uint64 // method, route, code
	failed   map[[3]string]uint64
	buckets  []float64
	hist     map[[2]string]*histogram // method, route
	appended uint64
	streams  int64
}

type histogram struct {
	counts []uint64
	sum    float64
	n      uint64
}

func newMetrics() *metrics {
	return &metrics{
		total:   map[[3]string]uint64{},
		failed:  map[[3]string]uint64{},
		buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		hist:    map[[2]string]*histogram{},
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (m *metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if i := strings.IndexByte(route, ' '); i >= 0 {
			route = route[i+1:]
		}
		if route == "" || route == "/" {
			route = "unmatched"
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		m.observe(r.Method, route, code, time.Since(start).Seconds())
	})
}

func (m *metrics) observe(method, route string, code int, secs float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [3]string{method, route, fmt.Sprint(code)}
	m.total[k]++
	if code >= 400 {
		m.failed[k]++
	}
	hk := [2]string{method, route}
	h := m.hist[hk]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(m.buckets))}
		m.hist[hk] = h
	}
	for i, b := range m.buckets {
		if secs <= b {
			h.counts[i]++
		}
	}
	h.sum += secs
	h.n++
}

func (m *metrics) addAppended(n int) {
	m.mu.Lock()
	m.appended += uint64(n)
	m.mu.Unlock()
}

func (m *metrics) addStreams(d int64) {
	m.mu.Lock()
	m.streams += d
	m.mu.Unlock()
}

func (m *metrics) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	counter := func(name, help string, series map[[3]string]uint64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		keys := make([][3]string, 0, len(series))
		for k := range series {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return strings.Join(keys[i][:], " ") < strings.Join(keys[j][:], " ") })
		for _, k := range keys {
			fmt.Fprintf(&b, "%s{method=%q,route=%q,code=%q} %d\n", name, k[0], k[1], k[2], series[k])
		}
	}
	counter("total_requests", "HTTP requests served.", m.total)
	counter("failed_requests", "HTTP requests answered with a 4xx or 5xx status.", m.failed)
	fmt.Fprintf(&b, "# HELP http_request_duration_seconds Time to serve a request.\n# TYPE http_request_duration_seconds histogram\n")
	hkeys := make([][2]string, 0, len(m.hist))
	for k := range m.hist {
		hkeys = append(hkeys, k)
	}
	sort.Slice(hkeys, func(i, j int) bool { return hkeys[i][0]+hkeys[i][1] < hkeys[j][0]+hkeys[j][1] })
	for _, k := range hkeys {
		h := m.hist[k]
		for i, le := range m.buckets {
			fmt.Fprintf(&b, "http_request_duration_seconds_bucket{method=%q,route=%q,le=%q} %d\n", k[0], k[1], fmt.Sprint(le), h.counts[i])
		}
		fmt.Fprintf(&b, "http_request_duration_seconds_bucket{method=%q,route=%q,le=\"+Inf\"} %d\n", k[0], k[1], h.n)
		fmt.Fprintf(&b, "http_request_duration_seconds_sum{method=%q,route=%q} %g\n", k[0], k[1], h.sum)
		fmt.Fprintf(&b, "http_request_duration_seconds_count{method=%q,route=%q} %d\n", k[0], k[1], h.n)
	}
	fmt.Fprintf(&b, "# HELP lakeproof_trail_entries_appended_total Entries durably appended to channels.\n# TYPE lakeproof_trail_entries_appended_total counter\nlakeproof_trail_entries_appended_total %d\n", m.appended)
	fmt.Fprintf(&b, "# HELP lakeproof_trail_event_streams Open server-sent event streams.\n# TYPE lakeproof_trail_event_streams gauge\nlakeproof_trail_event_streams %d\n", m.streams)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

// limiter is a token bucket per key (identity or client IP).
type limiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}}
}

// allow takes a token for key; when none is left it returns how long to
// wait for the next one.
func (l *limiter) allow(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) > 100000 { // forget idle clients
		for k, b := range l.buckets {
			if now.Sub(b.last).Seconds()*l.rate >= l.burst {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
	}
	b.tokens--
	return 0, true
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
