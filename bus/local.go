package bus

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// LocalAccessFile is the file under data_dir through which other walsearch
// processes on the same machine reach a running embedded bus: the commands
// (dlq, reindex, teardown, ...) work on a running instance from its
// configuration alone. It holds the server's loopback address and a token,
// readable by the owner only (mode 0600).
const LocalAccessFile = "nats-access.json"

// LocalAccess is the content of LocalAccessFile.
type LocalAccess struct {
	// URL is where the embedded server accepts clients.
	URL string `json:"url"`
	// Token authenticates to URL; empty when the server listens on the
	// configured nats.listen, which takes clients without one.
	Token string `json:"token,omitempty"`
	// PID is the process running the server.
	PID int `json:"pid"`
}

// ReadLocalAccess reads dataDir's LocalAccessFile. It fails with an error
// wrapping os.ErrNotExist when no embedded bus wrote one.
func ReadLocalAccess(dataDir string) (LocalAccess, error) {
	var a LocalAccess
	raw, err := os.ReadFile(filepath.Join(dataDir, LocalAccessFile))
	if err != nil {
		return a, fmt.Errorf("read local bus access: %w", err)
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("read local bus access %s: %w", filepath.Join(dataDir, LocalAccessFile), err)
	}
	if a.URL == "" {
		return a, fmt.Errorf("read local bus access %s: no url", filepath.Join(dataDir, LocalAccessFile))
	}
	return a, nil
}

// writeLocalAccess writes a to dataDir's LocalAccessFile, replacing any
// earlier one in one step, with mode 0600.
func writeLocalAccess(dataDir string, a LocalAccess) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dataDir, LocalAccessFile+".*")
	if err != nil {
		return fmt.Errorf("write local bus access: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write local bus access: %w", err)
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fmt.Errorf("write local bus access: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write local bus access: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dataDir, LocalAccessFile)); err != nil {
		return fmt.Errorf("write local bus access: %w", err)
	}
	return nil
}

// removeLocalAccess removes dataDir's LocalAccessFile if it still is a's.
func removeLocalAccess(dataDir string, a LocalAccess) {
	cur, err := ReadLocalAccess(dataDir)
	if err == nil && cur == a {
		_ = os.Remove(filepath.Join(dataDir, LocalAccessFile))
	}
}

// newToken returns a random token for the loopback listener.
func newToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("local bus token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// DialAddr turns a listen address into one to connect to: a wildcard host
// (":4222", "0.0.0.0:4222", "[::]:4222") is reached on loopback.
func DialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
