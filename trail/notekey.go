package trail

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/lakeproof/lakeproof/internal/durable"
)

// DefaultLogName is the note key name (and checkpoint origin prefix) of a
// gateway started without --log-name.
const DefaultLogName = "lakeproof-gateway"

// NoteKey is the gateway's checkpoint signing key: an Ed25519 note key
// (golang.org/x/mod/sumdb/note). Its name is the log name of every
// channel checkpoint origin (Origin).
type NoteKey struct {
	Signer      note.Signer
	Verifier    note.Verifier
	VerifierKey string // note.NewVerifier format: <name>+<hash>+<base64 key>
}

// Name is the key's (and the gateway's log) name.
func (k *NoteKey) Name() string { return k.Signer.Name() }

// ParseNoteKey decodes a note signer key ("PRIVATE+KEY+<name>+<hash>+<key>",
// as written by note.GenerateKey) and derives its verifier.
func ParseNoteKey(skey string) (*NoteKey, error) {
	skey = strings.TrimSpace(skey)
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("note key: %w", err)
	}
	// PRIVATE+KEY+<name>+<hash>+<base64>: the base64 may contain '+'.
	f := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(f[len(f)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		return nil, fmt.Errorf("note key %s: not an Ed25519 key", s.Name())
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("note key %s: %w", s.Name(), err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("note key %s: %w", s.Name(), err)
	}
	return &NoteKey{Signer: s, Verifier: v, VerifierKey: vkey}, nil
}

// LoadNoteKey reads a note signer key file (one line, mode 0600: group or
// others access is refused with ErrKeyFileMode).
func LoadNoteKey(path string) (*NoteKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("note key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%q: %w", path, ErrKeyFileMode)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("note key file: %w", err)
	}
	k, err := ParseNoteKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%q: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateNoteKey loads the note key at path, or creates it with the
// given name when the file does not exist: written to a temporary file,
// fsynced, linked into place (never replacing a file another process
// created meanwhile) and the directory fsynced. name "" means
// DefaultLogName. An existing key keeps its own name; the caller decides
// whether a different requested name is an error.
func LoadOrCreateNoteKey(path, name string) (*NoteKey, error) {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return LoadNoteKey(path)
	}
	if name == "" {
		name = DefaultLogName
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r == '+' || unicode.IsSpace(r) }) {
		return nil, fmt.Errorf("note key name %q: must be UTF-8 without spaces or '+' (e.g. example.com/gateway)", name)
	}
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return nil, fmt.Errorf("generate note key %q: %w", name, err)
	}
	// Another process may have created it meanwhile: then load that one.
	if err := durable.WriteFile(path, []byte(skey+"\n"), 0o600, false); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create note key: %w", err)
	}
	return LoadNoteKey(path)
}
