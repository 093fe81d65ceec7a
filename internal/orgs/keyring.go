package orgs

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"
)

// Keyring holds the keys that seal the organizations' secrets, read from a key file: one key
// per line, "<keyid> <base64 of 32 bytes>"; blank lines and lines starting with # are
// ignored. The last key is the current one, which seals; the older ones still open what they
// sealed until `starter orgs rotate-key` has re-sealed it. It is safe for concurrent use.
type Keyring struct {
	path string

	mu      sync.Mutex
	aeads   map[string]cipher.AEAD
	current string
}

// LoadKeyring reads the key file at path. It refuses a file that its group or others may
// read or write: the keys open every organization's secrets.
func LoadKeyring(path string) (*Keyring, error) {
	k := &Keyring{path: path}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keyring) load() error {
	ids, keys, err := readKeyFile(k.path)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("secrets key file %s holds no key: add one with `starter orgs new-key`", k.path)
	}
	aeads := make(map[string]cipher.AEAD, len(ids))
	for i, id := range ids {
		block, err := aes.NewCipher(keys[i])
		if err != nil {
			return fmt.Errorf("secrets key file %s: key %s: %w", k.path, id, err)
		}
		if aeads[id], err = cipher.NewGCM(block); err != nil {
			return fmt.Errorf("secrets key file %s: key %s: %w", k.path, id, err)
		}
	}
	k.mu.Lock()
	k.aeads, k.current = aeads, ids[len(ids)-1]
	k.mu.Unlock()
	return nil
}

// readKeyFile returns the key IDs and keys of the file, in file order.
func readKeyFile(path string) (ids []string, keys [][]byte, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("secrets key file %s does not exist: create it with `starter orgs new-key`", path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("secrets key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("secrets key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, nil, fmt.Errorf("secrets key file %s is open to its group or others (mode %04o): "+
			"run `chmod 600 %s` (and check who could have read it)", path, perm, path)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// The line is never quoted in an error: it holds a key.
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, nil, fmt.Errorf("secrets key file %s, line %d: want \"<keyid> <base64 of 32 bytes>\"", path, n)
		}
		id := fields[0]
		key, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil || len(key) != 32 {
			return nil, nil, fmt.Errorf("secrets key file %s, line %d (key %s): the key is not the base64 of 32 bytes", path, n, id)
		}
		if seen[id] {
			return nil, nil, fmt.Errorf("secrets key file %s, line %d: key ID %s appears twice", path, n, id)
		}
		seen[id] = true
		ids, keys = append(ids, id), append(keys, key)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("secrets key file %s: %w", path, err)
	}
	return ids, keys, nil
}

// Current is the ID of the key that seals.
func (k *Keyring) Current() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.current
}

// Path is the key file.
func (k *Keyring) Path() string { return k.path }

// additionalData binds a ciphertext to its organization and field: moved to another
// organization's row, or to the other field, it does not open.
func additionalData(org, field string) []byte {
	return []byte("usersync secret\x00" + org + "\x00" + field)
}

// Seal encrypts plaintext under the current key; the ciphertext is the nonce followed by the
// sealed text.
func (k *Keyring) Seal(org, field, plaintext string) (keyID string, ciphertext []byte, err error) {
	k.mu.Lock()
	id, aead := k.current, k.aeads[k.current]
	k.mu.Unlock()
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("seal %s of %s: %w", field, org, err)
	}
	return id, aead.Seal(nonce, nonce, []byte(plaintext), additionalData(org, field)), nil
}

// Open decrypts what Seal returned for the same organization and field. A key ID the
// keyring does not know makes it read the key file again once (another process may have
// added a key and re-sealed with it).
func (k *Keyring) Open(org, field, keyID string, ciphertext []byte) (string, error) {
	k.mu.Lock()
	aead, ok := k.aeads[keyID]
	k.mu.Unlock()
	if !ok {
		if err := k.load(); err != nil {
			return "", fmt.Errorf("open %s of %s: %w", field, org, err)
		}
		k.mu.Lock()
		aead, ok = k.aeads[keyID]
		k.mu.Unlock()
		if !ok {
			return "", fmt.Errorf("open %s of %s: sealed with key %s, which the secrets key file %s does not hold", field, org, keyID, k.path)
		}
	}
	if len(ciphertext) < aead.NonceSize() {
		return "", fmt.Errorf("open %s of %s: the ciphertext is too short", field, org)
	}
	nonce, sealed := ciphertext[:aead.NonceSize()], ciphertext[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, sealed, additionalData(org, field))
	if err != nil {
		return "", fmt.Errorf("open %s of %s with key %s: the ciphertext does not authenticate "+
			"(changed, or moved from another organization or field)", field, org, keyID)
	}
	return string(plain), nil
}

// AddKey appends a fresh random key to the key file, which becomes the current key, and
// returns its ID. It creates the file (mode 0600) when missing, and refuses an existing one
// that its group or others may read, as LoadKeyring does.
func AddKey(path string) (keyID string, err error) {
	// An existing file must be one LoadKeyring accepts (private, well formed).
	ids, _, err := readKeyFile(path)
	if err != nil && !errors.Is(statErr(path), fs.ErrNotExist) {
		return "", err
	}
	key := make([]byte, 32)
	suffix := make([]byte, 4)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	if _, err := rand.Read(suffix); err != nil {
		return "", err
	}
	id := time.Now().UTC().Format("20060102") + "-" + hex.EncodeToString(suffix)
	for _, old := range ids {
		if old == id {
			return "", fmt.Errorf("secrets key file %s: key ID %s exists; try again", path, id)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("secrets key file: %w", err)
	}
	line := id + " " + base64.StdEncoding.EncodeToString(key) + "\n"
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 && !endsWithNewline(path) {
		line = "\n" + line
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return "", fmt.Errorf("secrets key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("secrets key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("secrets key file %s: %w", path, err)
	}
	return id, nil
}

func statErr(path string) error {
	_, err := os.Stat(path)
	return err
}

func endsWithNewline(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.HasSuffix(b, []byte("\n"))
}
