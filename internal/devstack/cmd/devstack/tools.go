package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
)

// loadDirectory loads the demo organization into an existing directory
// (docker-compose's OpenLDAP). Connection settings come from the worker's
// environment variables; entries that exist are left alone.
func loadDirectory(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devstack load-directory", flag.ContinueOnError)
	url := fs.String("ldap-url", os.Getenv("LDAP_URL"), "directory URL (env LDAP_URL)")
	bindDN := fs.String("bind-dn", os.Getenv("LDAP_BIND_DN"), "bind DN with write access (env LDAP_BIND_DN); password from env LDAP_BIND_PASSWORD or LDAP_BIND_PASSWORD_FILE")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for the directory to accept the bind")
	readerDN := fs.String("reader-dn", os.Getenv("LDAP_READER_DN"),
		"also add this read-only service account, for the worker (env LDAP_READER_DN); password from env LDAP_READER_PASSWORD or LDAP_READER_PASSWORD_FILE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *bindDN == "" {
		return errors.New("LDAP_URL and LDAP_BIND_DN: required, not set")
	}
	pw, err := secretFromEnv("LDAP_BIND_PASSWORD")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	entries := demo.Org().Entries
	if *readerDN != "" {
		// What it may read is the directory's ACL (compose: scripts/compose-ldap).
		readerPW, err := secretFromEnv("LDAP_READER_PASSWORD")
		if err != nil {
			return err
		}
		reader, err := devstack.ReaderEntry(*readerDN, readerPW)
		if err != nil {
			return fmt.Errorf("--reader-dn: %w", err)
		}
		entries = append(append([]*ldap.AddRequest{}, entries...), reader)
	}
	// The directory container may still be starting: retry until it takes the load.
	var lastErr error
	for ctx.Err() == nil {
		if lastErr = devstack.LoadEntries(ctx, *url, *bindDN, pw, entries); lastErr == nil {
			fmt.Printf("loaded %d demo entries into %s\n", len(entries), *url)
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	return fmt.Errorf("load the demo directory into %s: %w", *url, lastErr)
}

// waitTemporal blocks until the Temporal frontend answers health checks.
func waitTemporal(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devstack wait-temporal", flag.ContinueOnError)
	addr := fs.String("address", envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "frontend host:port (env TEMPORAL_ADDRESS)")
	wait := fs.Duration("wait", 5*time.Minute, "how long to wait")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	if err := devstack.WaitTemporal(ctx, *addr); err != nil {
		return fmt.Errorf("temporal at %s: %w", *addr, err)
	}
	fmt.Println("temporal is up at", *addr)
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// secretFromEnv reads KEY, else the file named by KEY_FILE.
func secretFromEnv(key string) (string, error) {
	if v := os.Getenv(key); v != "" {
		return v, nil
	}
	file := os.Getenv(key + "_FILE")
	if file == "" {
		return "", fmt.Errorf("%s or %s_FILE: required, not set", key, key)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// seedSandbox gives a running SCIM sandbox the demo's seat counts and
// pre-existing accounts through its /_sandbox/ API, for a sandbox started
// without --seats/--seed-existing (docker-compose). Re-running is safe.
func seedSandbox(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devstack seed-sandbox", flag.ContinueOnError)
	base := fs.String("scim-url", os.Getenv("SCIM_URL"), "sandbox base URL (env SCIM_URL); token from env SCIM_TOKEN or SCIM_TOKEN_FILE")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for the sandbox")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" {
		return errors.New("SCIM_URL: required, not set")
	}
	token, err := secretFromEnv("SCIM_TOKEN")
	if err != nil {
		return err
	}
	d := demo.Org()
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	post := func(path string, body any) (int, error) {
		b, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*base, "/")+path, bytes.NewReader(b))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var lastErr error
	for ctx.Err() == nil {
		var status int
		status, lastErr = post("/_sandbox/config", map[string]any{"seats": d.TargetSeats()})
		if lastErr == nil && status == http.StatusNoContent {
			break
		}
		if lastErr == nil {
			return fmt.Errorf("sandbox %s: POST /_sandbox/config: HTTP %d", *base, status)
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("sandbox %s: %w", *base, lastErr)
	}
	// 409: already seeded by an earlier run.
	status, err := post("/_sandbox/seed", d.PreExisting)
	if err != nil {
		return fmt.Errorf("sandbox %s: POST /_sandbox/seed: %w", *base, err)
	}
	if status != http.StatusNoContent && status != http.StatusConflict {
		return fmt.Errorf("sandbox %s: POST /_sandbox/seed: HTTP %d", *base, status)
	}
	fmt.Printf("sandbox %s: seats %v, %d pre-existing accounts\n", *base, d.TargetSeats(), len(d.PreExisting))
	return nil
}
