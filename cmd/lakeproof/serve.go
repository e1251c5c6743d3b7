package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/spf13/cobra"
)

type serveOpts struct {
	listen, data, apiKey string
	admins               []string
	jwtTTL               time.Duration
	maxBody              int64
	rateLimit            float64
	logLevel             string
	db                   string // --db: "" (SQLite in --data) or postgres://… (serve_db.go)
	// Channel transparency logs: the note key signing checkpoints.
	logName, noteKey string
	logNameSet       bool // --log-name given explicitly
	printVerifier    bool
	ready            func(addr string) // test hook: called with the bound address
}

func init() {
	register(func() *cobra.Command {
		o := serveOpts{}
		cmd := &cobra.Command{
			Use:   "serve",
			Short: "Run the audit-trail gateway (IS Audit Trail compatible API)",
			Long: `Run the audit-trail gateway. State lives in --data: trail.db (SQLite, WAL),
gateway.key (the gateway's Ed25519 identity) and jwt.secret, created on first start.
With --db postgres://… the records live in that PostgreSQL database instead, which several
replicas (with copies of the same key files) may share: see docs/OPERATOR.md.

Admin bootstrap: create a key with 'lakeproof identity new --out admin.key', then start
with --admin <its did:key> (or LAKEPROOF_ADMIN); that identity becomes Admin.
API key: --api-key or LAKEPROOF_API_KEY. See docs/GATEWAY.md.

Channel transparency logs: log-note.key in --data (or --note-key FILE, shared by replicas)
signs every channel checkpoint; its name (--log-name when created) starts every checkpoint
origin. --print-verifier prints the verifier key readers pin, and exits.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				o.logLevel, _ = cmd.Flags().GetString("log-level")
				o.logNameSet = cmd.Flags().Changed("log-name")
				if o.printVerifier {
					k, err := serveNoteKey(o)
					if err != nil {
						return usageError{err}
					}
					fmt.Fprintln(cmd.OutOrStdout(), k.VerifierKey)
					return nil
				}
				if o.apiKey == "" {
					o.apiKey = os.Getenv("LAKEPROOF_API_KEY")
				}
				if v := os.Getenv("LAKEPROOF_ADMIN"); v != "" && len(o.admins) == 0 {
					o.admins = strings.Split(v, ",")
				}
				return runServe(cmd.Context(), cmd.ErrOrStderr(), o)
			},
		}
		f := cmd.Flags()
		f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on")
		f.StringVar(&o.data, "data", "./trail", "data directory (created if missing)")
		f.StringVar(&o.apiKey, "api-key", "", "require this api key (?api-key= or X-API-Key) on /api routes")
		f.StringArrayVar(&o.admins, "admin", nil, "did:key identity to make Admin at start (repeatable)")
		f.DurationVar(&o.jwtTTL, "jwt-ttl", time.Hour, "lifetime of issued JWTs")
		f.Int64Var(&o.maxBody, "max-body", 1<<20, "request body limit in bytes")
		f.Float64Var(&o.rateLimit, "rate-limit", 500, "requests per second per identity or client IP (negative: off)")
		f.StringVar(&o.logName, "log-name", trail.DefaultLogName, "name of the checkpoint note key (origin prefix of every channel log) when it is created")
		f.StringVar(&o.noteKey, "note-key", "", "checkpoint note signer key file to use instead of <data>/log-note.key (share one among replicas)")
		f.StringVar(&o.db, "db", "", "gateway database: empty for SQLite in --data, or a postgres:// URL shared by replicas (docs/OPERATOR.md)")
		f.BoolVar(&o.printVerifier, "print-verifier", false, "print the checkpoint verifier key (creating the note key if needed) and exit")
		return cmd
	})
}

// loadOrCreateSecret returns the contents of a secret file in the data dir,
// creating it (mode 0600, durably) with gen on first start.
func loadOrCreateSecret(path string, gen func() ([]byte, error)) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %q: %w", path, err)
	}
	b, err = gen()
	if err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", tmp, err)
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return nil, fmt.Errorf("write %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("install %q: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return b, nil
}

func gatewayKeys(dir string) (trail.KeyFile, []byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return trail.KeyFile{}, nil, fmt.Errorf("create data dir %q: %w", dir, err)
	}
	kp := filepath.Join(dir, "gateway.key")
	if _, err := os.Stat(kp); errors.Is(err, os.ErrNotExist) {
		k, err := trail.NewKeyFile()
		if err != nil {
			return trail.KeyFile{}, nil, err
		}
		k.Username = "gateway"
		if err := trail.SaveKeyFile(kp, k); err != nil {
			return trail.KeyFile{}, nil, err
		}
	}
	k, _, err := trail.LoadKeyFile(kp)
	if err != nil {
		return trail.KeyFile{}, nil, err
	}
	sec, err := loadOrCreateSecret(filepath.Join(dir, "jwt.secret"), func() ([]byte, error) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		return []byte(hex.EncodeToString(b) + "\n"), nil
	})
	if err != nil {
		return trail.KeyFile{}, nil, err
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(sec)))
	if err != nil || len(secret) < 32 {
		return trail.KeyFile{}, nil, fmt.Errorf("%s: want 64 hex digits", filepath.Join(dir, "jwt.secret"))
	}
	return k, secret, nil
}

// serveNoteKey loads the checkpoint note key (--note-key FILE, which must
// exist, or <data>/log-note.key, created on first start with --log-name).
// An explicit --log-name that differs from the key's name is an error:
// renaming the log would change every checkpoint origin.
func serveNoteKey(o serveOpts) (*trail.NoteKey, error) {
	var (
		k   *trail.NoteKey
		err error
	)
	if o.noteKey != "" {
		k, err = trail.LoadNoteKey(o.noteKey)
	} else {
		if err := os.MkdirAll(o.data, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir %q: %w", o.data, err)
		}
		k, err = trail.LoadOrCreateNoteKey(filepath.Join(o.data, "log-note.key"), o.logName)
	}
	if err != nil {
		return nil, err
	}
	if o.logNameSet && o.logName != k.Name() {
		return nil, fmt.Errorf("--log-name %q differs from the note key's name %q (the name is part of every checkpoint origin; drop the flag or use another key)", o.logName, k.Name())
	}
	return k, nil
}

func runServe(ctx context.Context, stderr io.Writer, o serveOpts) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	kf, secret, err := gatewayKeys(o.data)
	if err != nil {
		return usageError{err}
	}
	gwKey, err := kf.PrivateKey()
	if err != nil {
		return usageError{err}
	}
	noteKey, err := serveNoteKey(o)
	if err != nil {
		return usageError{err}
	}
	store, err := openStore(ctx, o)
	if err != nil {
		return usageError{err}
	}
	defer store.Close()
	srv, err := trail.New(ctx, trail.Config{
		Store: store, GatewayKey: gwKey, JWTSecret: secret, JWTTTL: o.jwtTTL, APIKey: o.apiKey,
		MaxBody: o.maxBody, Admins: o.admins, Version: toolVersion(), RateLimit: o.rateLimit, Logger: logger,
		NoteKey: noteKey, SignedDir: filepath.Join(o.data, "signed"),
	})
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return usageError{fmt.Errorf("listen on %s: %w", o.listen, err)}
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // request bodies; responses (event streams) are not limited
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	hs.RegisterOnShutdown(srv.Close)
	fmt.Fprintf(stderr, "lakeproof gateway %s listening on http://%s (data %s, gateway %s)\n", toolVersion(), ln.Addr(), o.data, srv.DID())
	fmt.Fprintf(stderr, "checkpoint verifier key: %s\n", noteKey.VerifierKey)
	if o.ready != nil {
		o.ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(stderr, "lakeproof gateway stopped")
	return nil
}
