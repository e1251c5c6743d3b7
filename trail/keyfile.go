package trail

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/lakeproof/lakeproof/internal/durable"
)

// KeyFile is a non-custodial identity key as stored by `lakeproof identity
// new`: JSON, mode 0600. Secret is the base58 Ed25519 seed (the same
// encoding as the IS key pair "secret"), Public the base58 public key, ID
// its did:key. Gateway and Username record where it was registered.
type KeyFile struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Encoding string `json:"encoding"`
	Public   string `json:"public"`
	Secret   string `json:"secret"`
	Gateway  string `json:"gateway,omitempty"`
	Username string `json:"username,omitempty"`
}

// NewKeyFile generates a fresh Ed25519 identity.
func NewKeyFile() (KeyFile, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return KeyFile{}, fmt.Errorf("generate key: %w", err)
	}
	return KeyFile{ID: DIDFromPublicKey(pub), Type: "ed25519", Encoding: "base58", Public: Base58Encode(pub), Secret: Base58Encode(priv.Seed())}, nil
}

// PrivateKey decodes and cross-checks the key.
func (k KeyFile) PrivateKey() (ed25519.PrivateKey, error) {
	priv, err := KeyFromSeed(k.Secret)
	if err != nil {
		return nil, err
	}
	if DIDFromPublicKey(priv.Public().(ed25519.PublicKey)) != k.ID {
		return nil, fmt.Errorf("key file: id %s does not match the secret key", k.ID)
	}
	return priv, nil
}

// SaveKeyFile writes k to path with mode 0600, durably (fsync of the file
// and its directory), refusing to overwrite an existing file.
func SaveKeyFile(path string, k KeyFile) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return fmt.Errorf("encode key file %q: %w", path, err)
	}
	if err := durable.WriteFile(path, append(b, '\n'), 0o600, false); err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	return nil
}

// ErrKeyFileMode reports a key file readable by group or others.
var ErrKeyFileMode = errors.New("key file is accessible by group or others (chmod 600 it)")

// LoadKeyFile reads and checks a key file; it refuses files whose mode
// gives group or others any access.
func LoadKeyFile(path string) (KeyFile, ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return KeyFile{}, nil, fmt.Errorf("key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return KeyFile{}, nil, fmt.Errorf("%q: %w", path, ErrKeyFileMode)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return KeyFile{}, nil, fmt.Errorf("key file: %w", err)
	}
	var k KeyFile
	if err := json.Unmarshal(b, &k); err != nil {
		return KeyFile{}, nil, fmt.Errorf("key file %q: %w", path, err)
	}
	priv, err := k.PrivateKey()
	if err != nil {
		return KeyFile{}, nil, fmt.Errorf("key file %q: %w", path, err)
	}
	return k, priv, nil
}
