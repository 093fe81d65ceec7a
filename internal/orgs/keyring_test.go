package orgs_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/orgs"
)

func newKeyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys")
	if _, err := orgs.AddKey(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSealedSecretOpensOnlyForItsOrganizationAndField(t *testing.T) {
	k, err := orgs.LoadKeyring(newKeyFile(t))
	if err != nil {
		t.Fatal(err)
	}
	id, ct, err := k.Seal("acme", orgs.FieldToken, "tok-123")
	if err != nil {
		t.Fatal(err)
	}
	if id != k.Current() || strings.Contains(string(ct), "tok-123") {
		t.Fatalf("Seal: key %q (current %q), ciphertext holds the plaintext: %v", id, k.Current(), strings.Contains(string(ct), "tok-123"))
	}
	if got, err := k.Open("acme", orgs.FieldToken, id, ct); err != nil || got != "tok-123" {
		t.Fatalf("Open = %q, %v; want tok-123", got, err)
	}
	_, ct2, _ := k.Seal("acme", orgs.FieldToken, "tok-123")
	if string(ct2) == string(ct) {
		t.Error("two seals of the same secret are equal: the nonce is not random")
	}
	tampered := append([]byte(nil), ct...)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name, org, field string
		ct               []byte
	}{
		{"moved to another organization", "globex", orgs.FieldToken, ct},
		{"moved to the other field", "acme", orgs.FieldBindPassword, ct},
		{"changed", "acme", orgs.FieldToken, tampered},
		{"truncated", "acme", orgs.FieldToken, ct[:5]},
	} {
		got, err := k.Open(tc.org, tc.field, id, tc.ct)
		if err == nil {
			t.Errorf("%s: opened as %q, want an error", tc.name, got)
		} else if strings.Contains(err.Error(), "tok-123") {
			t.Errorf("%s: error shows the secret: %v", tc.name, err)
		}
	}
}

func TestAddedKeySealsAndOlderKeysStillOpen(t *testing.T) {
	path := newKeyFile(t)
	before, err := orgs.LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	oldID, oldCT, _ := before.Seal("acme", orgs.FieldBindPassword, "pw")
	newID, err := orgs.AddKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	after, err := orgs.LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if after.Current() != newID || newID == oldID {
		t.Fatalf("current key %q, want the added %q (old %q)", after.Current(), newID, oldID)
	}
	if got, err := after.Open("acme", orgs.FieldBindPassword, oldID, oldCT); err != nil || got != "pw" {
		t.Errorf("the old key no longer opens: %q, %v", got, err)
	}
	// A process that loaded the file before the key was added reads it again for it.
	id, ct, _ := after.Seal("acme", orgs.FieldBindPassword, "pw2")
	if got, err := before.Open("acme", orgs.FieldBindPassword, id, ct); err != nil || got != "pw2" {
		t.Errorf("a keyring loaded before the new key cannot open what it sealed: %q, %v", got, err)
	}
	if _, err := before.Open("acme", orgs.FieldBindPassword, "nokey", ct); err == nil || !strings.Contains(err.Error(), "nokey") {
		t.Errorf("unknown key ID: error %v, want one naming it", err)
	}
}

func TestKeyFileOpenToOthersIsRefusedNamingFileAndFix(t *testing.T) {
	path := newKeyFile(t)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		for what, err := range map[string]error{"LoadKeyring": loadErr(path), "AddKey": addErr(path)} {
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
				t.Errorf("%s of a mode %04o key file: error %v, want one naming %s and chmod 600", what, mode, err, path)
			}
		}
	}
}

func loadErr(path string) error { _, err := orgs.LoadKeyring(path); return err }
func addErr(path string) error  { _, err := orgs.AddKey(path); return err }

func TestBadKeyFilesAreErrorsThatNameTheFileNotTheKey(t *testing.T) {
	dir := t.TempDir()
	short := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	for name, content := range map[string]string{
		"empty":     "# no key yet\n",
		"short key": "k1 " + short + "\n",
		"no id":     base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n",
		"twice":     "k1 " + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\nk1 " + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		err := loadErr(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming %s", name, err, path)
		} else if strings.Contains(err.Error(), short) {
			t.Errorf("%s: error shows the key: %v", name, err)
		}
	}
	if err := loadErr(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "starter orgs new-key") {
		t.Errorf("missing key file: error %v, want the command that creates one", err)
	}
}
