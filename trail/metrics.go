package trail

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics keeps the Prometheus series of IS (total_requests,
// failed_requests, http_request_duration_seconds) plus lakeproof's own, in
// a registry private to one Server (several servers in one process, as in
// tests, never share or collide on series), with the standard go_* and
// process_* collectors.
type metrics struct {
	reg      *prometheus.Registry
	total    *prometheus.CounterVec   // method, route, code
	failed   *prometheus.CounterVec   // method, route, code
	duration *prometheus.HistogramVec // method, route
	appended prometheus.Counter
	streams  prometheus.Gauge
	// checkpointsSigned and checkpointsRefused count channel checkpoint
	// signatures, and refusals because the stored log does not extend
	// the latest signed checkpoint (any refusal means the store was
	// altered: alert on it).
	checkpointsSigned, checkpointsRefused prometheus.Counter
	handler                               http.Handler
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "total_requests", Help: "HTTP requests served.",
		}, []string{"method", "route", "code"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "failed_requests", Help: "HTTP requests answered with a 4xx or 5xx status.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "Time to serve a request.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lakeproof_trail_entries_appended_total", Help: "Entries durably appended to channels.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lakeproof_trail_event_streams", Help: "Open server-sent event streams.",
		}),
		checkpointsSigned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lakeproof_trail_checkpoints_signed_total", Help: "Channel checkpoints signed.",
		}),
		checkpointsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lakeproof_trail_checkpoints_refused_total", Help: "Channel checkpoints not signed because the stored log does not extend the latest signed one (the store was altered).",
		}),
	}
	m.reg.MustRegister(m.total, m.failed, m.duration, m.appended, m.streams, m.checkpointsSigned, m.checkpointsRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
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

// middleware counts every request by method, matched route pattern (not the
// raw path, so addresses do not explode the label space) and status.
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
	c := strconv.Itoa(code)
	m.total.WithLabelValues(method, route, c).Inc()
	if code >= 400 {
		m.failed.WithLabelValues(method, route, c).Inc()
	}
	m.duration.WithLabelValues(method, route).Observe(secs)
}

func (m *metrics) addAppended(n int) { m.appended.Add(float64(n)) }

func (m *metrics) addStreams(d int64) { m.streams.Add(float64(d)) }

func (m *metrics) serve(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }
