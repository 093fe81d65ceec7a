package devstack

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The Samba binaries SambaDC runs (Debian: samba, samba-common-bin).
var (
	SambaBinary     = "/usr/sbin/samba"
	SambaToolBinary = "/usr/bin/samba-tool"
)

// SambaLockFile serializes Samba DCs across processes: a DC takes the fixed LDAP ports
// 389 and 636 (Samba cannot listen elsewhere), so only one can run at a time on a
// machine. The lock is held from Start to Stop, or until the process exits.
var SambaLockFile = filepath.Join(os.TempDir(), "usersync-samba.lock")

// ErrSambaUnavailable wraps the reasons a DC cannot run here at all (binaries missing,
// not root): tests skip on it, unless integration tests are required.
var ErrSambaUnavailable = errors.New("samba AD DC unavailable")

// SambaDC is a throwaway Samba Active Directory domain controller: Start provisions a
// domain under Dir and runs samba in the foreground, as a child of this process, with
// only its LDAP service, on 127.0.0.1:389 (ldap://, StartTLS) and 127.0.0.1:636
// (ldaps://). Its TLS certificate is issued by a CA generated in Dir/tls (see CAFile):
// the certificate Samba generates itself names the host only in its Common Name, which
// Go rejects.
type SambaDC struct {
	Dir           string // holds the domain (dc/), tls/ and the logs; created by Start
	Realm         string // DNS domain, upper case, e.g. CORP.EXAMPLE.TEST
	Domain        string // NetBIOS domain, e.g. CORP
	AdminPassword string // of Administrator; AD's complexity rules apply
	// HostName is the DC's host name (default dc1); the certificate holds
	// HostName.realm, localhost and 127.0.0.1.
	HostName string
	// Detached: samba outlives this process (the demo stack's DC, stopped by `devstack
	// down` through Process); tests leave it attached.
	Detached bool

	daemon *Daemon
	lock   *os.File
	// ProvisionTime is how long provisioning took (zero when Dir was provisioned already).
	ProvisionTime time.Duration
}

// URL is the plain LDAP URL (use StartTLS or allow a plaintext bind).
func (s *SambaDC) URL() string { return "ldap://127.0.0.1:389" }

// LDAPSURL is the LDAPS URL.
func (s *SambaDC) LDAPSURL() string { return "ldaps://127.0.0.1:636" }

// BaseDN is the domain's naming context, e.g. DC=corp,DC=example,DC=test.
func (s *SambaDC) BaseDN() string {
	parts := strings.Split(strings.ToLower(s.Realm), ".")
	for i, p := range parts {
		parts[i] = "DC=" + p
	}
	return strings.Join(parts, ",")
}

// AdminDN is the Administrator's DN.
func (s *SambaDC) AdminDN() string { return "CN=Administrator,CN=Users," + s.BaseDN() }

// ServerName is the DC's DNS name, which its certificate holds.
func (s *SambaDC) ServerName() string { return s.hostName() + "." + strings.ToLower(s.Realm) }

// CAFile is the PEM file of the CA that issued the DC's certificate.
func (s *SambaDC) CAFile() string { return filepath.Join(s.Dir, "tls", "ca.pem") }

// SMBConf is the DC's configuration file.
func (s *SambaDC) SMBConf() string { return filepath.Join(s.Dir, "dc", "etc", "smb.conf") }

func (s *SambaDC) hostName() string {
	if s.HostName == "" {
		return "dc1"
	}
	return strings.ToLower(s.HostName)
}

func (s *SambaDC) validate() error {
	switch {
	case s.Dir == "":
		return errors.New("samba: Dir is empty")
	case s.Realm == "" || !strings.Contains(s.Realm, "."):
		return fmt.Errorf("samba: Realm %q: want a DNS domain such as CORP.EXAMPLE.TEST", s.Realm)
	case s.Domain == "" || len(s.Domain) > 15 || strings.Contains(s.Domain, "."):
		return fmt.Errorf("samba: Domain %q: want a NetBIOS name such as CORP", s.Domain)
	case s.AdminPassword == "":
		return errors.New("samba: AdminPassword is empty")
	}
	abs, err := filepath.Abs(s.Dir)
	if err != nil {
		return fmt.Errorf("samba: Dir %s: %w", s.Dir, err)
	}
	s.Dir = abs
	s.Realm = strings.ToUpper(s.Realm)
	return nil
}

// SambaAvailable reports why a DC cannot run on this machine (wrapping
// ErrSambaUnavailable), or nil.
func SambaAvailable() error {
	for _, b := range []string{SambaBinary, SambaToolBinary} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%w: %s not installed (scripts/setup.sh installs samba): %v", ErrSambaUnavailable, b, err)
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: a Samba AD DC must run as root (it binds 389 and 636)", ErrSambaUnavailable)
	}
	return nil
}

// Start takes the machine-wide lock (waiting while another DC runs, until ctx ends),
// provisions the domain unless Dir holds one, configures and starts samba, and waits
// until the Administrator can bind.
func (s *SambaDC) Start(ctx context.Context) (err error) {
	if err := s.validate(); err != nil {
		return err
	}
	if err := SambaAvailable(); err != nil {
		return err
	}
	if s.daemon != nil {
		return errors.New("samba: already started")
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("samba: %w", err)
	}
	if err := s.takeLock(ctx); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	for _, port := range []string{"389", "636"} {
		if addr := net.JoinHostPort("127.0.0.1", port); PortOpen(addr) {
			return fmt.Errorf("samba: something already listens on %s (a system slapd or samba?); "+
				"the Samba AD DC needs 127.0.0.1:389 and :636", addr)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "dc", "private", "sam.ldb")); err != nil {
		t0 := time.Now()
		if err := s.provision(ctx); err != nil {
			return err
		}
		s.ProvisionTime = time.Since(t0)
	}
	if err := s.writeTLS(); err != nil {
		return err
	}
	if err := s.configure(); err != nil {
		return err
	}
	s.daemon = &Daemon{
		Name:     "samba",
		Path:     SambaBinary,
		Args:     []string{"-s", s.SMBConf(), "-i", "-M", "single"},
		Dir:      s.Dir,
		LogFile:  filepath.Join(s.Dir, "samba.log"),
		PIDFile:  s.Process().PIDFile,
		Attached: !s.Detached, // no test's DC outlives the test binary
	}
	if err := s.daemon.Start(); err != nil {
		s.daemon = nil
		return err
	}
	return s.daemon.WaitReady(ctx, func(context.Context) error {
		c, err := ldap.DialURL(s.URL(), ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Bind(s.AdminDN(), s.AdminPassword)
	})
}

// Process is the DC's process as found by its PID file: a detached DC is stopped with it
// from another process.
func (s *SambaDC) Process() *Daemon {
	return &Daemon{Name: "samba", Path: SambaBinary, PIDFile: filepath.Join(s.Dir, "samba-child.pid"),
		LogFile: filepath.Join(s.Dir, "samba.log")}
}

// takeLock waits for SambaLockFile, polling so that ctx can end the wait.
func (s *SambaDC) takeLock(ctx context.Context) error {
	f, err := os.OpenFile(SambaLockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("samba: lock %s: %w", SambaLockFile, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return fmt.Errorf("samba: lock %s: %w", SambaLockFile, err)
		}
		select {
		case <-ctx.Done():
			holder, _ := os.ReadFile(SambaLockFile)
			f.Close()
			return fmt.Errorf("samba: waiting for %s (another Samba DC runs, pid %s): %w",
				SambaLockFile, strings.TrimSpace(string(holder)), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	// For the message of the next waiter; the lock itself is the flock.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s.lock = f
	return nil
}

func (s *SambaDC) provision(ctx context.Context) error {
	_ = os.RemoveAll(filepath.Join(s.Dir, "dc")) // a half-provisioned domain from a crash
	logPath := filepath.Join(s.Dir, "provision.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("samba: %w", err)
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, SambaToolBinary, "domain", "provision",
		"--use-rfc2307",
		"--realm="+s.Realm,
		"--domain="+s.Domain,
		"--server-role=dc",
		"--dns-backend=NONE",
		"--host-name="+s.hostName(),
		"--targetdir="+filepath.Join(s.Dir, "dc"),
		"--adminpass="+s.AdminPassword,
		"--option=interfaces=127.0.0.1",
		"--option=bind interfaces only=yes",
	)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("samba: provision %s in %s: %w; end of %s:\n%s", s.Realm, s.Dir, err, logPath, LogTail(logPath, 15))
	}
	return nil
}

// configure rewrites the [global] section of the provisioned smb.conf: LDAP only, simple
// binds allowed without TLS (so that tests can check that the reader refuses them), our
// certificate, and every runtime file under Dir.
func (s *SambaDC) configure() error {
	b, err := os.ReadFile(s.SMBConf())
	if err != nil {
		return fmt.Errorf("samba: %w", err)
	}
	tlsDir := filepath.Join(s.Dir, "tls")
	set := [][2]string{
		{"server services", "ldap"},
		{"ldap server require strong auth", "no"},
		{"tls enabled", "yes"},
		{"tls keyfile", filepath.Join(tlsDir, "key.pem")},
		{"tls certfile", filepath.Join(tlsDir, "cert.pem")},
		{"tls cafile", filepath.Join(tlsDir, "ca.pem")},
		{"pid directory", filepath.Join(s.Dir, "run")},
		{"ncalrpc dir", filepath.Join(s.Dir, "run", "ncalrpc")},
		{"winbindd socket directory", filepath.Join(s.Dir, "run", "winbindd")},
		{"log file", filepath.Join(s.Dir, "samba.log")},
		{"ldb:nosync", "true"}, // a throwaway domain trades durability for load speed
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "run"), 0o755); err != nil {
		return fmt.Errorf("samba: %w", err)
	}
	conf := setGlobal(string(b), set)
	if err := os.WriteFile(s.SMBConf(), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("samba: %w", err)
	}
	return nil
}

// setGlobal sets options in the [global] section of an smb.conf, replacing earlier values.
func setGlobal(conf string, set [][2]string) string {
	norm := func(k string) string { return strings.Join(strings.Fields(strings.ToLower(k)), " ") }
	replace := map[string]bool{}
	for _, kv := range set {
		replace[norm(kv[0])] = true
	}
	var out []string
	section := ""
	inserted := false
	insert := func() {
		for _, kv := range set {
			out = append(out, "\t"+kv[0]+" = "+kv[1])
		}
		inserted = true
	}
	for _, line := range strings.Split(conf, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			section = strings.ToLower(strings.TrimSpace(t[1 : len(t)-1]))
			out = append(out, line)
			if section == "global" && !inserted {
				insert()
			}
			continue
		}
		if section == "global" {
			if k, _, ok := strings.Cut(t, "="); ok && replace[norm(k)] {
				continue
			}
		}
		out = append(out, line)
	}
	if !inserted {
		rest := out
		out = []string{"[global]"}
		insert()
		out = append(out, rest...)
	}
	return strings.Join(out, "\n")
}

// writeTLS issues the DC's certificate (once: a restarted DC keeps its CA).
func (s *SambaDC) writeTLS() error {
	dir := filepath.Join(s.Dir, "tls")
	if _, err := os.Stat(filepath.Join(dir, "key.pem")); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("samba: %w", err)
	}
	ca, err := NewTestCA("usersync test CA for " + s.Realm)
	if err != nil {
		return err
	}
	if err := ca.WriteCA(filepath.Join(dir, "ca.pem")); err != nil {
		return err
	}
	return ca.WriteServerCert(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"),
		s.ServerName(), s.ServerName(), "localhost", "127.0.0.1")
}

// Tool runs samba-tool against the DC's database (e.g. "user", "show", "ann") and
// returns its standard output.
func (s *SambaDC) Tool(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, SambaToolBinary, append(args, "-s", s.SMBConf())...)
	cmd.Dir = s.Dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("samba-tool %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// Stop stops samba and releases the lock. Stopping a stopped DC is a no-op; Dir stays.
func (s *SambaDC) Stop() error {
	var err error
	if s.daemon != nil {
		err = s.daemon.Stop(30 * time.Second)
		s.daemon = nil
	}
	if s.lock != nil {
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		_ = s.lock.Close()
		s.lock = nil
	}
	return err
}

// TestCA is a throwaway certificate authority for test servers.
type TestCA struct {
	Cert *x509.Certificate
	key  *rsa.PrivateKey
	der  []byte
}

// NewTestCA creates a CA valid for a day.
func NewTestCA(name string) (*TestCA, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"usersync tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	return &TestCA{Cert: cert, key: key, der: der}, nil
}

// WriteCA writes the CA certificate as PEM.
func (ca *TestCA) WriteCA(path string) error {
	return writePEM(path, 0o644, "CERTIFICATE", ca.der)
}

// WriteServerCert issues a server certificate with Common Name cn and subjectAltNames
// sans (DNS names, or IP addresses), and writes it and its key (PKCS #1) as PEM. With
// no sans the certificate names the server only in its Common Name, as Samba's
// self-generated one does.
func (ca *TestCA) WriteServerCert(certPath, keyPath, cn string, sans ...string) error {
	return ca.writeCert(certPath, keyPath, cn, x509.ExtKeyUsageServerAuth, sans...)
}

// WriteClientCert issues a client certificate (for mutual TLS) with Common Name cn and
// writes it and its key as WriteServerCert does.
func (ca *TestCA) WriteClientCert(certPath, keyPath, cn string) error {
	return ca.writeCert(certPath, keyPath, cn, x509.ExtKeyUsageClientAuth)
}

func (ca *TestCA) writeCert(certPath, keyPath, cn string, usage x509.ExtKeyUsage, sans ...string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("test certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"usersync tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, n := range sans {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return fmt.Errorf("test certificate: %w", err)
	}
	if err := writePEM(certPath, 0o644, "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(keyPath, 0o600, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func writePEM(path string, mode os.FileMode, typ string, der []byte) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// denyDeletedScript adds an inherited deny ACE for a SID to the domain's Deleted Objects
// container. samba-tool dsacl cannot: it reads the descriptor without the show-deleted
// control, and the container is a deleted object.
const denyDeletedScript = `import sys
from samba.param import LoadParm
from samba.auth import system_session
from samba.samdb import SamDB
from samba.sd_utils import SDUtils
lp = LoadParm()
lp.load(sys.argv[1])
db = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp)
SDUtils(db).update_aces_in_dacl("CN=Deleted Objects," + str(db.domain_dn()),
    add_aces=["(D;CI;RPLC;;;%s)" % sys.argv[2]], controls=["show_deleted:1", "sd_flags:1:4"])
`

// DenyDeletedObjects denies the user sam (sAMAccountName) listing and reading the domain's
// Deleted Objects container and what it holds, which Samba allows any user by default.
func (s *SambaDC) DenyDeletedObjects(ctx context.Context, sam string) error {
	out, err := s.Tool(ctx, "user", "show", sam, "--attributes=objectSid")
	if err != nil {
		return err
	}
	_, sid, ok := strings.Cut(out, "objectSid: ")
	if !ok {
		return fmt.Errorf("samba-tool user show %s: no objectSid in %q", sam, out)
	}
	// samba-tool's interpreter, which has Samba's Python modules.
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-c", denyDeletedScript, s.SMBConf(), strings.TrimSpace(sid))
	cmd.Dir = s.Dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("deny %s the Deleted Objects container: %w: %s", sam, err, strings.TrimSpace(string(b)))
	}
	return nil
}
