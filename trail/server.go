package trail

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// APIVersions are the path prefixes every API route is served under: IS
// clients use /api/v0.1 for everything (gateway mode), the IS SSI bridge
// used /api/v0.2.
var APIVersions = []string{"/api/v0.1", "/api/v0.2"}

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	Store      Store
	GatewayKey ed25519.PrivateKey // signs entries for JWT-only clients and credentials
	JWTSecret  []byte             // HS256 key, at least 32 bytes
	JWTTTL     time.Duration      // default 1h
	NonceTTL   time.Duration      // default 5m
	APIKey     string             // when set, every /api route needs ?api-key= or X-API-Key
	MaxBody    int64              // request body limit in bytes; default 1 MiB
	Admins     []string           // did:key identities made Admin at start (bootstrap)
	Version    string             // reported by /info
	RateLimit  float64            // requests/s per identity (or IP); default 500; <0 disables
	RateBurst  int                // default 2×RateLimit
	Logger     *slog.Logger
	Now        func() time.Time
	// NoteKey signs channel checkpoints (its name is the log name of the
	// checkpoint origins). Without it the checkpoint route answers 503;
	// tiles and proofs are still served.
	NoteKey *NoteKey
	// SignedDir, if set, is where the gateway remembers per channel the
	// newest checkpoint it signed or served, so that after a restart it
	// still refuses to sign a history that does not extend it (one small
	// file per channel; see signedMemo in log.go). Each replica has its own.
	SignedDir string
}

// Server is the audit-trail gateway HTTP API.
type Server struct {
	cfg       Config
	did       string
	mux       *http.ServeMux
	hub       *hub
	metrics   *metrics
	limiter   *limiter
	closing   chan struct{}
	closeOne  sync.Once
	routes    []Route
	signLocks signLocks
	signed    signedMemo // newest checkpoint signed or served per channel (log.go)
}

// Route is one API operation; it is served under every prefix in
// APIVersions. Auth is "none" (api-key only), "jwt" or "optional".
type Route struct {
	Method, Path, Summary, Auth string
	h                           handler
}

type handler func(w http.ResponseWriter, r *http.Request, c *caller) error

// caller is the authenticated identity of a request (nil when none).
type caller struct {
	ID       string
	Role     Role
	Username string
	// unchecked: ID comes from a valid JWT but the identity has not been
	// looked up yet; Role and Username are the token's. Only routes in
	// deferredIdentity see such a caller, and they must have the store
	// check the registration (AppendRequest.RequireRegistered) or call
	// Server.resolve before relying on Role.
	unchecked bool
}

// deferredIdentity lists the routes whose handler checks that the caller
// is still registered itself, inside its store transaction, instead of a
// separate lookup before it (the hot write path).
var deferredIdentity = map[string]bool{"POST /channels/logs/{addr}": true}

func (c *caller) isAdmin() bool { return c != nil && c.Role == RoleAdmin }

// httpError is an error with a status code and a message for the client.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// New builds a server and applies the admin bootstrap (cfg.Admins).
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil || len(cfg.GatewayKey) != ed25519.PrivateKeySize {
		return nil, errors.New("trail: Config needs a Store and a GatewayKey")
	}
	if len(cfg.JWTSecret) < 32 {
		return nil, errors.New("trail: Config.JWTSecret must have at least 32 bytes")
	}
	if cfg.JWTTTL <= 0 {
		cfg.JWTTTL = time.Hour
	}
	if cfg.NonceTTL <= 0 {
		cfg.NonceTTL = 5 * time.Minute
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 500
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = int(2 * cfg.RateLimit)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = "(devel)"
	}
	s := &Server{
		cfg:     cfg,
		did:     DIDFromPublicKey(cfg.GatewayKey.Public().(ed25519.PublicKey)),
		mux:     http.NewServeMux(),
		hub:     newHub(),
		metrics: newMetrics(),
		closing: make(chan struct{}),
	}
	s.signLocks.seed = maphash.MakeSeed()
	s.signed.dir = cfg.SignedDir
	if cfg.RateLimit > 0 {
		s.limiter = newLimiter(cfg.RateLimit, cfg.RateBurst)
	}
	for _, did := range cfg.Admins {
		if err := s.bootstrapAdmin(ctx, did); err != nil {
			return nil, err
		}
	}
	s.routes = s.apiRoutes()
	for _, rt := range s.routes {
		for _, p := range APIVersions {
			s.mux.Handle(rt.Method+" "+p+rt.Path, s.wrap(rt))
		}
	}
	s.mux.HandleFunc("GET /info", s.handleInfo)
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.HandleFunc("GET /metrics", s.metrics.serve)
	s.mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such route: " + r.Method + " " + r.URL.Path})
	})
	return s, nil
}

func (s *Server) bootstrapAdmin(ctx context.Context, did string) error {
	if _, err := ParseDID(did); err != nil {
		return fmt.Errorf("admin bootstrap: %w", err)
	}
	id, err := s.cfg.Store.GetIdentity(ctx, did)
	switch {
	case errors.Is(err, ErrNotFound):
		name := "admin-" + did[len(did)-8:]
		err = s.cfg.Store.CreateIdentity(ctx, Identity{ID: did, Username: name, Role: RoleAdmin, ClaimType: "Organization", Registered: s.cfg.Now().UTC()})
		if errors.Is(err, ErrConflict) {
			// Another replica on the same database bootstrapped it
			// meanwhile (replicas starting at once): use that one.
			if id, err = s.cfg.Store.GetIdentity(ctx, did); err == nil && id.Role != RoleAdmin {
				id.Role = RoleAdmin
				err = s.cfg.Store.UpdateIdentity(ctx, id)
			}
		}
	case err == nil && id.Role != RoleAdmin:
		id.Role = RoleAdmin
		err = s.cfg.Store.UpdateIdentity(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("admin bootstrap of %s: %w", did, err)
	}
	return nil
}

// DID is the gateway's did:key (the signer of entries it signs for
// JWT-only clients, and the issuer of credentials).
func (s *Server) DID() string { return s.did }

// Routes lists the API operations (for the OpenAPI check and the docs).
func (s *Server) Routes() []Route { return s.routes }

// Handler returns the HTTP handler of the gateway.
func (s *Server) Handler() http.Handler { return s.metrics.middleware(s.mux) }

// Close ends open event streams and long polls so that http.Server's
// Shutdown can finish; call it before (or from RegisterOnShutdown).
func (s *Server) Close() { s.closeOne.Do(func() { close(s.closing) }) }

func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.cfg.Logger.Error("panic", "route", rt.Method+" "+rt.Path, "panic", p, "stack", string(debug.Stack()))
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
			}
		}()
		if err := s.checkAPIKey(r); err != nil {
			s.writeErr(w, r, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		c, err := s.authenticate(r, deferredIdentity[rt.Method+" "+rt.Path])
		if err == nil && c == nil && rt.Auth == "jwt" {
			err = errf(http.StatusUnauthorized, "not authenticated!")
		}
		if err != nil && rt.Auth == "optional" && r.Header.Get("Authorization") == "" {
			err = nil
		}
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		if s.limiter != nil {
			key := "ip:" + remoteIP(r)
			if c != nil {
				key = "id:" + c.ID
			}
			if wait, ok := s.limiter.allow(key, s.cfg.Now()); !ok {
				w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
				s.writeErr(w, r, errf(http.StatusTooManyRequests, "rate limit exceeded"))
				return
			}
		}
		if err := rt.h(w, r, c); err != nil {
			s.writeErr(w, r, err)
		}
	})
}

func remoteIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

func (s *Server) checkAPIKey(r *http.Request) error {
	if s.cfg.APIKey == "" {
		return nil
	}
	k := r.URL.Query().Get("api-key")
	if k == "" {
		k = r.Header.Get("X-API-Key")
	}
	if subtle.ConstantTimeCompare([]byte(k), []byte(s.cfg.APIKey)) != 1 {
		return errf(http.StatusUnauthorized, "no valid api key provided!")
	}
	return nil
}

// authenticate returns the caller of a request with a valid Bearer JWT
// whose identity is still registered, nil without an Authorization header,
// or a 401 error.
//
// With deferIdentity the registration is not looked up: the caller is
// marked unchecked and the handler is responsible for the check.
func (s *Server) authenticate(r *http.Request, deferIdentity bool) (*caller, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, nil
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return nil, errf(http.StatusUnauthorized, "not authenticated!")
	}
	u, err := ParseJWT(s.cfg.JWTSecret, strings.TrimSpace(tok), s.cfg.Now())
	if err != nil {
		return nil, errf(http.StatusUnauthorized, "%v", err)
	}
	c := &caller{ID: u.ID, Role: u.Role, Username: u.Username, unchecked: true}
	if deferIdentity {
		return c, nil
	}
	if err := s.resolve(r.Context(), c); err != nil {
		return nil, err
	}
	return c, nil
}

// resolve looks an unchecked caller up in the store: 401 if it is no
// longer registered; Role and Username become the stored ones.
func (s *Server) resolve(ctx context.Context, c *caller) error {
	if !c.unchecked {
		return nil
	}
	id, err := s.cfg.Store.GetIdentity(ctx, c.ID)
	if errors.Is(err, ErrNotFound) {
		return errf(http.StatusUnauthorized, "identity %s is no longer registered", c.ID)
	}
	if err != nil {
		return err
	}
	c.Role, c.Username, c.unchecked = id.Role, id.Username, false
	return nil
}

// writeErr maps an error to its status: httpError as given, the Store
// sentinels to 404/409/403, a body over the limit to 413, anything else to
// 500 (logged, with a generic message).
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var (
		he  *httpError
		mbe *http.MaxBytesError
	)
	code, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.As(err, &he):
		code, msg = he.code, he.msg
	case errors.As(err, &mbe):
		code, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit)
	case errors.Is(err, ErrNotFound):
		code, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, ErrConflict):
		code, msg = http.StatusConflict, err.Error()
	case errors.Is(err, ErrForbidden):
		code, msg = http.StatusForbidden, err.Error()
	case errors.Is(err, ErrBadToken):
		code, msg = http.StatusUnauthorized, err.Error()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code, msg = http.StatusServiceUnavailable, "request canceled"
	}
	if code >= 500 {
		s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// decodeBody decodes one JSON value from the request body: 413 over the
// size limit, 400 for an empty, malformed or trailing-garbage body.
func decodeBody(r *http.Request, v any) error {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errf(http.StatusBadRequest, "could not read the body: %v", err)
	}
	return decodeJSON(raw, v)
}

// decodeJSON decodes exactly one JSON value; invalid UTF-8 is refused
// (not replaced) so that signed content is what the client sent.
func decodeJSON(raw []byte, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return errf(http.StatusBadRequest, "empty body")
	}
	if !utf8.Valid(raw) {
		return errf(http.StatusBadRequest, "No valid body provided!: invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return errf(http.StatusBadRequest, "No valid body provided!: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errf(http.StatusBadRequest, "No valid body provided!: data after the JSON value")
	}
	return nil
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	host, _ := os.Hostname()
	writeJSON(w, http.StatusOK, map[string]any{
		"commitHash":  s.cfg.Version,
		"hostname":    host,
		"version":     s.cfg.Version,
		"id":          s.did,
		"apiVersions": APIVersions,
		"openapi":     "/openapi.json",
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
