package s3test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault is what the proxy does to one request.
type Fault int

const (
	// Pass forwards the request and its answer unchanged.
	Pass Fault = iota
	// SlowDown answers 503 SlowDown without forwarding the request.
	SlowDown
	// Reset closes the connection with a TCP RST without answering.
	Reset
	// Truncate forwards the request, then sends the answer's status and
	// headers (with the full Content-Length) but only half of its body, and
	// closes the connection.
	Truncate
	// Stall forwards the request, then sends the answer's status and
	// headers and half of its body, and goes silent until the client hangs
	// up (at most 30 seconds).
	Stall
)

func (f Fault) String() string {
	switch f {
	case Pass:
		return "pass"
	case SlowDown:
		return "503"
	case Reset:
		return "reset"
	case Truncate:
		return "truncate"
	case Stall:
		return "stall"
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// Proxy is an HTTP proxy in front of an S3 server that injects faults. It
// keeps the Host header of each request, so SigV4 signatures made for the
// proxy's address still verify at the server.
type Proxy struct {
	// URL is the proxy's endpoint, "http://127.0.0.1:PORT" (or https).
	URL string
	// Rewrite, if set before the first request, may replace the body of
	// each answer passed through (its Content-Length is fixed up), to play
	// a buggy server. It may be called concurrently.
	Rewrite func(r *http.Request, body []byte) []byte

	srv      *httptest.Server
	upstream *url.URL
	decide   func(n int, r *http.Request) Fault
	n        atomic.Int64
	tr       *http.Transport

	bytesOut atomic.Int64

	mu     sync.Mutex
	counts map[Fault]int
}

// BytesOut returns the number of response body bytes sent to clients so far.
func (p *Proxy) BytesOut() int64 { return p.bytesOut.Load() }

// NewProxy starts a proxy to upstream (an endpoint URL). decide is called
// for each request, numbered from 1, and may be called concurrently; nil
// passes everything. The proxy is closed when tb's test ends.
func NewProxy(tb testing.TB, upstream string, decide func(n int, r *http.Request) Fault) *Proxy {
	return newProxy(tb, upstream, decide, nil)
}

// NewTLSProxy is NewProxy serving HTTPS with cert (see NewCA).
func NewTLSProxy(tb testing.TB, upstream string, cert tls.Certificate, decide func(n int, r *http.Request) Fault) *Proxy {
	return newProxy(tb, upstream, decide, &cert)
}

func newProxy(tb testing.TB, upstream string, decide func(n int, r *http.Request) Fault, cert *tls.Certificate) *Proxy {
	tb.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		tb.Fatalf("proxy upstream %q: %v", upstream, err)
	}
	if decide == nil {
		decide = func(int, *http.Request) Fault { return Pass }
	}
	p := &Proxy{upstream: u, decide: decide, counts: map[Fault]int{}, tr: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	p.srv = httptest.NewUnstartedServer(p)
	if cert != nil {
		p.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
		p.srv.StartTLS()
	} else {
		p.srv.Start()
	}
	p.URL = p.srv.URL
	tb.Cleanup(func() {
		p.srv.CloseClientConnections()
		p.srv.Close()
		p.tr.CloseIdleConnections()
	})
	return p
}

// Counts returns how many requests got each fault so far.
func (p *Proxy) Counts() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := make(map[Fault]int, len(p.counts))
	for k, v := range p.counts {
		c[k] = v
	}
	return c
}

// Requests returns the number of requests seen so far.
func (p *Proxy) Requests() int { return int(p.n.Load()) }

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := p.decide(int(p.n.Add(1)), r)
	p.mu.Lock()
	p.counts[f]++
	p.mu.Unlock()
	switch f {
	case SlowDown:
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error><Code>SlowDown</Code><Message>Please reduce your request rate (injected by s3test.Proxy).</Message></Error>`)
		return
	case Reset:
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(fmt.Sprintf("s3test.Proxy: hijack: %v", err))
		}
		resetClose(conn)
		return
	}

	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = p.upstream.Scheme, p.upstream.Host
	out.RequestURI = ""
	out.Host = r.Host
	if r.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		http.Error(w, "s3test.Proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()

	if (f == Truncate || f == Stall) && resp.ContentLength > 1 {
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(fmt.Sprintf("s3test.Proxy: hijack: %v", err))
		}
		writeHead(bw.Writer, resp)
		io.CopyN(bw, resp.Body, resp.ContentLength/2)
		bw.Flush()
		if f == Stall {
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			io.Copy(io.Discard, bw.Reader) // until the client closes
		}
		conn.Close()
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	if p.Rewrite != nil {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, "s3test.Proxy: "+err.Error(), http.StatusBadGateway)
			return
		}
		body = p.Rewrite(r, body)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(resp.StatusCode)
		n, _ := w.Write(body)
		p.bytesOut.Add(int64(n))
		return
	}
	w.WriteHeader(resp.StatusCode)
	n, _ := io.Copy(w, resp.Body)
	p.bytesOut.Add(n)
}

func writeHead(w *bufio.Writer, resp *http.Response) {
	fmt.Fprintf(w, "HTTP/1.1 %s\r\n", resp.Status)
	resp.Header.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	resp.Header.Set("Connection", "close")
	resp.Header.Write(w)
	io.WriteString(w, "\r\n")
}

// resetClose closes conn so that the peer sees a connection reset.
func resetClose(conn net.Conn) {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}
