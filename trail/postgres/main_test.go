package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakeproof/lakeproof/trail"
	"github.com/lakeproof/lakeproof/trail/postgres"
)

// replicaEnv makes the test binary a gateway replica process instead of
// running tests (see startReplicaProcess).
const replicaEnv = "LAKEPROOF_PG_TEST_REPLICA"

func TestMain(m *testing.M) {
	if os.Getenv(replicaEnv) != "" {
		os.Exit(runReplica())
	}
	os.Exit(m.Run())
}

// replicaConfig is what a replica process gets from its parent (in the
// environment, as JSON-free key=value pairs).
type replicaConfig struct {
	dsn, noteKey, admin string
	gwSeed, jwtSecret   []byte
}

func (c replicaConfig) env() []string {
	return []string{
		replicaEnv + "=1",
		"LAKEPROOF_PG_TEST_DSN=" + c.dsn,
		"LAKEPROOF_PG_TEST_NOTE_KEY=" + c.noteKey,
		"LAKEPROOF_PG_TEST_ADMIN=" + c.admin,
		"LAKEPROOF_PG_TEST_GATEWAY_SEED=" + hex.EncodeToString(c.gwSeed),
		"LAKEPROOF_PG_TEST_JWT_SECRET=" + hex.EncodeToString(c.jwtSecret),
	}
}

// runReplica serves a gateway on 127.0.0.1 with a postgres.Store, prints
// its address on stdout and runs until stdin is closed (by the parent, or
// because the parent died).
func runReplica() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "replica:", err)
		return 1
	}
	seed, err := hex.DecodeString(os.Getenv("LAKEPROOF_PG_TEST_GATEWAY_SEED"))
	if err != nil || len(seed) != ed25519.SeedSize {
		return fail(fmt.Errorf("bad gateway seed: %v", err))
	}
	secret, err := hex.DecodeString(os.Getenv("LAKEPROOF_PG_TEST_JWT_SECRET"))
	if err != nil {
		return fail(err)
	}
	nk, err := trail.ParseNoteKey(os.Getenv("LAKEPROOF_PG_TEST_NOTE_KEY"))
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	st, err := postgres.New(ctx, os.Getenv("LAKEPROOF_PG_TEST_DSN"))
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	srv, err := trail.New(ctx, trail.Config{
		Store: st, GatewayKey: ed25519.NewKeyFromSeed(seed), JWTSecret: secret, RateLimit: -1,
		Admins: []string{os.Getenv("LAKEPROOF_PG_TEST_ADMIN")}, NoteKey: nk,
	})
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	hs.RegisterOnShutdown(srv.Close)
	go hs.Serve(ln)
	fmt.Println(ln.Addr().String())
	io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fail(err)
	}
	return 0
}

// replicaProc is a running replica process.
type replicaProc struct {
	url    string
	kill   func() // SIGKILL, as a crash; the end of the test then expects no clean exit
	killed atomic.Bool
}

// startReplicaProcess starts this test binary as a replica process and
// returns it once it listens; it is stopped at the end of tb. It may be
// called from any goroutine.
func startReplicaProcess(tb testing.TB, cfg replicaConfig) (*replicaProc, error) {
	p := &replicaProc{}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), cfg.env()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
	}()
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		stdin.Close()
		select {
		case err := <-exited:
			if err != nil && !p.killed.Load() {
				tb.Errorf("replica process pid %d: %v\n%s", cmd.Process.Pid, err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill() // our own child, by pid
			<-exited
			tb.Errorf("replica process pid %d did not stop; killed\n%s", cmd.Process.Pid, stderr.String())
		}
	}
	select {
	case a := <-addr:
		if a == "" {
			<-exited
			return nil, fmt.Errorf("replica process did not start:\n%s", stderr.String())
		}
		tb.Cleanup(stop)
		p.url = "http://" + a
		p.kill = func() {
			p.killed.Store(true)
			cmd.Process.Kill() // our own child, by pid
		}
		return p, nil
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-exited
		return nil, fmt.Errorf("replica process did not start within 60s:\n%s", stderr.String())
	}
}
