package devstack

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
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

// SlapdBinary is the OpenLDAP server started by Slapd.Start.
var SlapdBinary = "/usr/sbin/slapd"

// Slapd is a private OpenLDAP instance (back_mdb) living entirely under Dir.
// It never touches the system slapd service or /etc/ldap configuration
// (only the schema files are read from SchemaDir).
type Slapd struct {
	Dir           string // holds slapd.conf, slapd.pid and data/
	Port          int    // on 127.0.0.1; 0 picks a free port at Start
	Suffix        string // e.g. dc=example,dc=com
	AdminDN       string // rootdn, e.g. cn=admin,dc=example,dc=com
	AdminPassword string
	// SizeLimit is the search size limit for everyone but the admin (default 500, as slapd).
	// Paged searches are not limited in total, like Active Directory.
	SizeLimit int
	// SchemaDir and ModuleDir default to Debian's /etc/ldap/schema and /usr/lib/ldap.
	SchemaDir, ModuleDir string
	// TLSCertFile and TLSKeyFile (PEM), when set, enable StartTLS on Port and an ldaps://
	// listener on TLSPort (0 picks a free port at Start).
	TLSCertFile, TLSKeyFile string
	TLSPort                 int
	// Access are the database's access rules (slapd.conf "access" lines without the word,
	// olcAccess values without their {n}); none: slapd's default, everyone reads.
	Access []string
	// NoContentSync leaves out the syncprov overlay (a directory without RFC 4533 content
	// synchronization: incremental reads fall back to full ones).
	NoContentSync bool
}

// URL is the LDAP URL of the instance.
func (s *Slapd) URL() string { return fmt.Sprintf("ldap://127.0.0.1:%d", s.Port) }

// LDAPSURL is the ldaps:// URL of an instance with TLS files.
func (s *Slapd) LDAPSURL() string { return fmt.Sprintf("ldaps://127.0.0.1:%d", s.TLSPort) }

func (s *Slapd) tlsOn() bool { return s.TLSCertFile != "" && s.TLSKeyFile != "" }

func (s *Slapd) confPath() string    { return filepath.Join(s.Dir, "slapd.conf") }
func (s *Slapd) pidPath() string     { return filepath.Join(s.Dir, "slapd.pid") }
func (s *Slapd) portPath() string    { return filepath.Join(s.Dir, "port") }
func (s *Slapd) tlsPortPath() string { return filepath.Join(s.Dir, "tlsport") }

// Start writes the configuration and starts slapd, then waits until the admin can bind.
// Starting an instance whose Dir already has a running slapd is a no-op (its port is reused).
func (s *Slapd) Start(ctx context.Context) error {
	if err := s.validate(); err != nil {
		return err
	}
	if s.Running() {
		if b, err := os.ReadFile(s.portPath()); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				s.Port = p
			}
		}
		if b, err := os.ReadFile(s.tlsPortPath()); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				s.TLSPort = p
			}
		}
		return s.waitReady(ctx)
	}
	if _, err := os.Stat(SlapdBinary); err != nil {
		return fmt.Errorf("slapd binary %s: %w", SlapdBinary, err)
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "data"), 0o700); err != nil {
		return fmt.Errorf("slapd dir %s: %w", s.Dir, err)
	}
	// A port this instance picks may be taken between FreePort and slapd's bind (tests of
	// several packages start servers at once): slapd then exits 1, saying why only to
	// syslog. It picks another, a few times.
	pickPort, pickTLS := s.Port == 0, s.TLSPort == 0
	var err error
	for try := 0; try < 3; try++ {
		if pickPort {
			s.Port = FreePort()
		}
		if pickTLS && s.tlsOn() {
			s.TLSPort = FreePort()
		}
		if err = s.exec(); err == nil || !pickPort && !(pickTLS && s.tlsOn()) {
			break
		}
	}
	if err != nil {
		return err
	}
	return s.waitReady(ctx)
}

// exec writes the configuration and ports and starts slapd on them.
func (s *Slapd) exec() error {
	_ = os.Remove(s.pidPath()) // stale pidfile of a dead instance
	if err := os.WriteFile(s.confPath(), []byte(s.config()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", s.confPath(), err)
	}
	if err := os.WriteFile(s.portPath(), []byte(strconv.Itoa(s.Port)), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", s.portPath(), err)
	}
	listen := fmt.Sprintf("ldap://127.0.0.1:%d/", s.Port)
	if s.tlsOn() {
		if err := os.WriteFile(s.tlsPortPath(), []byte(strconv.Itoa(s.TLSPort)), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", s.tlsPortPath(), err)
		}
		listen += fmt.Sprintf(" ldaps://127.0.0.1:%d/", s.TLSPort)
	}
	// slapd daemonizes: the command returns once the server has forked.
	cmd := exec.Command(SlapdBinary, "-h", listen, "-f", s.confPath())
	cmd.Dir = s.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("start slapd (dir %s, port %d): %w: %s", s.Dir, s.Port, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *Slapd) validate() error {
	switch {
	case s.Dir == "":
		return errors.New("slapd: Dir is empty")
	case s.Suffix == "":
		return errors.New("slapd: Suffix is empty")
	case s.AdminDN == "":
		return errors.New("slapd: AdminDN is empty")
	case s.AdminPassword == "":
		return errors.New("slapd: AdminPassword is empty")
	case s.Port < 0 || s.Port > 65535:
		return fmt.Errorf("slapd: Port %d out of range", s.Port)
	}
	abs, err := filepath.Abs(s.Dir)
	if err != nil {
		return fmt.Errorf("slapd: Dir %s: %w", s.Dir, err)
	}
	s.Dir = abs
	return nil
}

func (s *Slapd) config() string {
	schemaDir, moduleDir := s.SchemaDir, s.ModuleDir
	if schemaDir == "" {
		schemaDir = "/etc/ldap/schema"
	}
	if moduleDir == "" {
		moduleDir = "/usr/lib/ldap"
	}
	limit := "500"
	if s.SizeLimit > 0 {
		limit = strconv.Itoa(s.SizeLimit)
	}
	var b strings.Builder
	for _, sc := range []string{"core", "cosine", "inetorgperson", "nis"} {
		fmt.Fprintf(&b, "include %s\n", filepath.Join(schemaDir, sc+".schema"))
	}
	fmt.Fprintf(&b, "pidfile %s\n", s.pidPath())
	fmt.Fprintf(&b, "argsfile %s\n", filepath.Join(s.Dir, "slapd.args"))
	fmt.Fprintf(&b, "modulepath %s\nmoduleload back_mdb\nmoduleload syncprov\n", moduleDir)
	fmt.Fprintf(&b, "sizelimit size.soft=%s size.hard=%s size.prtotal=unlimited\n", limit, limit)
	if s.tlsOn() {
		fmt.Fprintf(&b, "TLSCertificateFile %q\nTLSCertificateKeyFile %q\n", s.TLSCertFile, s.TLSKeyFile)
	}
	b.WriteString("database mdb\n")
	fmt.Fprintf(&b, "suffix %q\n", s.Suffix)
	fmt.Fprintf(&b, "rootdn %q\n", s.AdminDN)
	fmt.Fprintf(&b, "rootpw %s\n", slapdSSHA(s.AdminPassword))
	fmt.Fprintf(&b, "directory %s\n", filepath.Join(s.Dir, "data"))
	// Room for the 100k-user benchmark; the map is sparse, so this costs no disk up front.
	b.WriteString("maxsize 4294967296\n")
	b.WriteString("dbnosync\n") // a dev stack trades durability for load speed
	b.WriteString("index objectClass eq\nindex member eq\nindex entryUUID eq\nindex uid,mail eq\n")
	fmt.Fprintf(&b, "limits dn.exact=%q size=unlimited time=unlimited\n", s.AdminDN)
	for _, a := range s.Access {
		fmt.Fprintf(&b, "access %s\n", a)
	}
	// RFC 4533 content synchronization, for incremental reads (directory.Reader.SyncMirror).
	// The session log lets a refresh with a cookie name the deleted entries instead of
	// listing every unchanged one. (After the database's own directives: what follows an
	// overlay line configures the overlay.)
	if !s.NoContentSync {
		b.WriteString("index entryCSN eq\noverlay syncprov\nsyncprov-checkpoint 100 5\nsyncprov-sessionlog 200000\n")
	}
	return b.String()
}

// slapdSSHA hashes a password in slapd's {SSHA} scheme, so the plain password is not in the file.
func slapdSSHA(pw string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	h := sha1.New()
	h.Write([]byte(pw))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...))
}

// waitReady polls until the admin can bind, the process dies, or ctx ends.
func (s *Slapd) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	var lastErr error
	for {
		conn, err := ldap.DialURL(s.URL(), ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
		if err == nil {
			err = conn.Bind(s.AdminDN, s.AdminPassword)
			conn.Close()
			if err == nil {
				return nil
			}
			if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
				return fmt.Errorf("slapd at %s: admin %s cannot bind (instance started with another password?)", s.URL(), s.AdminDN)
			}
		}
		lastErr = err
		if _, perr := os.Stat(s.pidPath()); perr == nil && !s.Running() {
			return fmt.Errorf("slapd at %s exited during startup (see syslog)", s.URL())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slapd at %s not ready: %w", s.URL(), lastErr)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("slapd at %s not ready: %w", s.URL(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pid reads the pidfile; 0 when there is none.
func (s *Slapd) pid() int {
	b, err := os.ReadFile(s.pidPath())
	if err != nil {
		return 0
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return p
}

// Running reports whether the slapd of this Dir is alive.
func (s *Slapd) Running() bool {
	return slapdAlive(s.pid())
}

// slapdAlive is true for a live (non-zombie) slapd process: pids get reused, so check the name.
func slapdAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// Format: pid (comm) state ...
	s := string(stat)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open || close+2 >= len(s) {
		return true
	}
	return s[open+1:close] == "slapd" && s[close+2] != 'Z'
}

// Stop sends SIGTERM to the instance and waits until it has exited. Stopping a stopped
// instance is a no-op.
func (s *Slapd) Stop() error {
	pid := s.pid()
	if !slapdAlive(pid) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop slapd pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for slapdAlive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("stop slapd pid %d: still running after 30s, killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// AddBeyondTheMark adds entries (LDIF, without their entryCSN) to the instance with an
// entryCSN an hour ahead of the server's contextCSN: it stops the instance, adds them with
// slapadd and starts it again. That is the state concurrent writes can leave (slapd moves
// its contextCSN only to the newest CSN with no older write still pending, and only
// forward, so a write that commits before an older one stays beyond it until the next
// write): syncprov's refresh reads only the entries up to its contextCSN, a search all.
// For tests and the benchmark.
func (s *Slapd) AddBeyondTheMark(ctx context.Context, ldif string) error {
	if err := s.Stop(); err != nil {
		return err
	}
	csn := time.Now().UTC().Add(time.Hour).Format("20060102150405.000000Z") + "#000000#000#000000"
	ldif = strings.ReplaceAll(strings.TrimSpace(ldif), "\n\n", "\nentryCSN: "+csn+"\n\n") + "\nentryCSN: " + csn + "\n"
	path := filepath.Join(s.Dir, "beyond.ldif")
	if err := os.WriteFile(path, []byte(ldif), 0o600); err != nil {
		return err
	}
	defer os.Remove(path)
	slapadd := filepath.Join(filepath.Dir(SlapdBinary), "slapadd")
	if out, err := exec.Command(slapadd, "-f", s.confPath(), "-l", path).CombinedOutput(); err != nil {
		return fmt.Errorf("slapadd: %v: %s", err, out)
	}
	return s.Start(ctx)
}

// LoadEntries adds entries to the directory at url, parents before children, skipping
// entries that already exist (so loading the demo twice is safe). Large loads use several
// connections in parallel.
func LoadEntries(ctx context.Context, url, bindDN, pw string, entries []*ldap.AddRequest) error {
	levels, err := entriesByDepth(entries)
	if err != nil {
		return err
	}
	workers := 1 + len(entries)/500
	if workers > 8 {
		workers = 8
	}
	conns := make([]*ldap.Conn, 0, workers)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range workers {
		c, err := ldap.DialURL(url, ldap.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}))
		if err != nil {
			return fmt.Errorf("load entries: dial %s: %w", url, err)
		}
		conns = append(conns, c)
		if err := c.Bind(bindDN, pw); err != nil {
			return fmt.Errorf("load entries: bind as %s: %w", bindDN, err)
		}
	}
	for _, level := range levels {
		if err := addParallel(ctx, conns, level); err != nil {
			return err
		}
	}
	return nil
}

// entriesByDepth groups entries by the number of RDNs in their DN, shallowest first.
func entriesByDepth(entries []*ldap.AddRequest) ([][]*ldap.AddRequest, error) {
	var levels [][]*ldap.AddRequest
	for _, e := range entries {
		dn, err := ldap.ParseDN(e.DN)
		if err != nil {
			return nil, fmt.Errorf("load entries: dn %q: %w", e.DN, err)
		}
		d := len(dn.RDNs)
		for len(levels) <= d {
			levels = append(levels, nil)
		}
		levels[d] = append(levels[d], e)
	}
	return levels, nil
}

// addParallel adds one level of entries over conns; it returns the first error.
func addParallel(ctx context.Context, conns []*ldap.Conn, level []*ldap.AddRequest) error {
	if len(level) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *ldap.AddRequest)
	errs := make(chan error, len(conns))
	for _, c := range conns {
		go func() {
			for e := range work {
				err := c.Add(e)
				if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
					errs <- fmt.Errorf("load entries: add %s: %w", e.DN, err)
					cancel()
					for range work { // drain so the feeder finishes
					}
					return
				}
			}
			errs <- nil
		}()
	}
feed:
	for _, e := range level {
		select {
		case work <- e:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	var first error
	for range conns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first == nil && ctx.Err() != nil {
		// Our own cancel only follows an error, so this is the caller's context.
		first = fmt.Errorf("load entries: %w", ctx.Err())
	}
	return first
}

// ReaderEntry is a read-only service account's entry (compose's cn=usersync-reader): what it
// may read is the directory's access rules' business (scripts/compose-ldap).
func ReaderEntry(dn, password string) (*ldap.AddRequest, error) {
	rdn, _, ok := strings.Cut(dn, ",")
	name, value, isCN := strings.Cut(rdn, "=")
	if !ok || !isCN || !strings.EqualFold(name, "cn") || value == "" {
		return nil, fmt.Errorf("reader DN %q: want cn=<name>,<parent>", dn)
	}
	e := ldap.NewAddRequest(dn, nil)
	e.Attribute("objectClass", []string{"applicationProcess", "simpleSecurityObject"})
	e.Attribute("cn", []string{value})
	e.Attribute("userPassword", []string{slapdSSHA(password)})
	return e, nil
}
