package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SCIMMYDirEnv names the directory of the SCIMMY server (server.js and its
// node_modules) when it is not scripts/scimmy under the module root.
const SCIMMYDirEnv = "USERSYNC_SCIMMY_DIR"

// SCIMMYBasePath is where the server mounts its SCIM endpoints.
const SCIMMYBasePath = "/scim/v2"

// SCIMMYInstallHint says how to get node and the server's packages.
const SCIMMYInstallHint = "run scripts/setup.sh (it installs node and npm and runs npm ci in scripts/scimmy)"

// SCIMMY is a SCIM 2.0 server we did not write: scripts/scimmy/server.js,
// the SCIMMY library from npm behind express, with in-memory storage. Tests
// use it as a third-party peer for the SCIM client and whole syncs.
type SCIMMY struct {
	Dir   string // log and pid file
	Token string // bearer token; empty: Start picks a random one
	// CustomSchema is the URN of the custom User extension; empty: the
	// server's default (urn:ietf:params:scim:schemas:extension:usersync:2.0:User);
	// "none": no custom extension.
	CustomSchema string
	// CustomAttributes are the string attributes of the custom extension;
	// empty: the server's default (settingsTemplate, accessTier, office, costCode).
	CustomAttributes []string
	// MaxResults is filter.maxResults and the largest page the server
	// returns; 0: the server's default, 200.
	MaxResults int
	Port       int // on 127.0.0.1; 0: Start picks a free one
}

// FindNode returns the path of node on PATH.
func FindNode() (string, error) {
	p, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("node not found on PATH: %s", SCIMMYInstallHint)
	}
	return p, nil
}

// FindSCIMMYServer returns the directory of server.js: $USERSYNC_SCIMMY_DIR,
// else scripts/scimmy under the module root above the working directory. It
// fails when server.js or its node_modules is missing.
func FindSCIMMYServer() (string, error) {
	dir := os.Getenv(SCIMMYDirEnv)
	if dir == "" {
		root, err := ModuleRoot()
		if err != nil {
			return "", fmt.Errorf("scimmy: %w (or set %s)", err, SCIMMYDirEnv)
		}
		dir = filepath.Join(root, "scripts", "scimmy")
	}
	if !fileExists(filepath.Join(dir, "server.js")) {
		return "", fmt.Errorf("scimmy: no server.js in %s", dir)
	}
	if !fileExists(filepath.Join(dir, "node_modules", "scimmy")) || !fileExists(filepath.Join(dir, "node_modules", "scimmy-routers")) {
		return "", fmt.Errorf("scimmy: packages not installed in %s/node_modules: %s", dir, SCIMMYInstallHint)
	}
	return dir, nil
}

// ModuleRoot is the nearest directory upwards from the working directory
// that holds usersync's go.mod (go test runs in the package's directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/usersync/usersync") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of github.com/usersync/usersync above the working directory")
		}
		dir = parent
	}
}

// URL is the SCIM base URL, e.g. http://127.0.0.1:PORT/scim/v2.
func (s *SCIMMY) URL() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) + SCIMMYBasePath
}

func (s *SCIMMY) daemon(node, serverDir string) *Daemon {
	return &Daemon{
		Name: "scimmy", Path: node, Args: []string{"server.js"}, Dir: serverDir,
		// All set, even when empty (the server's default): none is
		// inherited from our environment.
		Env: []string{
			"PORT=" + strconv.Itoa(s.Port),
			"SCIM_TOKEN=" + s.Token,
			"CUSTOM_SCHEMA=" + s.CustomSchema,
			"CUSTOM_ATTRIBUTES=" + strings.Join(s.CustomAttributes, ","),
			"MAX_RESULTS=" + maxResultsEnv(s.MaxResults),
		},
		LogFile: filepath.Join(s.Dir, "scimmy.log"),
		PIDFile: filepath.Join(s.Dir, "scimmy.pid"),
		// In-memory state lives as long as we do.
		Attached: true,
	}
}

func maxResultsEnv(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// Start starts the server and waits until GET /ServiceProviderConfig with
// the token answers 200. It fills in Port and Token when they are zero.
func (s *SCIMMY) Start(ctx context.Context) error {
	if s.Dir == "" {
		return errors.New("scimmy: Dir is empty")
	}
	if strings.ContainsAny(s.Token, " \t\r\n") {
		return errors.New("scimmy: Token must not contain white space")
	}
	for _, a := range s.CustomAttributes {
		if a == "" || strings.Contains(a, ",") {
			return fmt.Errorf("scimmy: bad custom attribute name %q", a)
		}
	}
	node, err := FindNode()
	if err != nil {
		return err
	}
	serverDir, err := FindSCIMMYServer()
	if err != nil {
		return err
	}
	if s.Port == 0 {
		s.Port = FreePort()
	}
	if s.Token == "" {
		s.Token = randomHex(16)
	}
	if PortOpen(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))) {
		return fmt.Errorf("scimmy: port %d is taken by another process", s.Port)
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("scimmy dir %s: %w", s.Dir, err)
	}
	d := s.daemon(node, serverDir)
	if err := d.Start(); err != nil {
		return err
	}
	if err := d.WaitReady(ctx, s.checkReady); err != nil {
		_ = d.Stop(5 * time.Second)
		return err
	}
	return nil
}

func (s *SCIMMY) checkReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/ServiceProviderConfig", nil)
	if err != nil {
		return fmt.Errorf("%w: %w", err, errGiveUp)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/ServiceProviderConfig: %s", s.URL(), resp.Status)
	}
	return nil
}

// Running reports whether the server of Dir runs.
func (s *SCIMMY) Running() bool { return s.daemon("", "").Running() }

// Stop stops the server; its data is gone. Stopping a server that does not
// run is not an error.
func (s *SCIMMY) Stop() error { return s.daemon("", "").Stop(10 * time.Second) }
