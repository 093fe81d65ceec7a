package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// uiArtifactsEnv names a directory for the browser test's screenshots; unset, they go to a
// temporary directory kept only when the test fails.
const uiArtifactsEnv = "USERSYNC_UI_ARTIFACTS"

// browser finds what the browser test needs: node, Chromium and scripts/uitest's packages
// (scripts/setup.sh installs them). It returns node, chromium and the script.
func browser(t *testing.T) (node, chromium, script string) {
	t.Helper()
	node, err := devstack.FindNode()
	if err != nil {
		devstacktest.SkipUnlessRequired(t, "browser test: %v", err)
	}
	chromium, err = exec.LookPath("chromium")
	if err != nil {
		devstacktest.SkipUnlessRequired(t, "browser test: chromium not found on PATH: apt-get install chromium (scripts/setup.sh)")
	}
	root, err := devstack.ModuleRoot()
	require.NoError(t, err)
	dir := filepath.Join(root, "scripts", "uitest")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		devstacktest.SkipUnlessRequired(t, "browser test: playwright-core not installed: npm ci --prefix scripts/uitest (scripts/setup.sh)")
	}
	return node, chromium, filepath.Join(dir, "retry.mjs")
}

// artifactsDir is where the screenshots go (printed at the end).
func artifactsDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv(uiArtifactsEnv); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		t.Cleanup(func() { t.Logf("screenshots in %s", dir) })
		return dir
	}
	dir, err := os.MkdirTemp("", "usersync-ui-")
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screenshots in %s (kept: the test failed; set %s to keep them always)", dir, uiArtifactsEnv)
			return
		}
		t.Logf("screenshots were in %s (removed: the test passed; set %s to keep them)", dir, uiArtifactsEnv)
		_ = os.RemoveAll(dir)
	})
	return dir
}

// An ops person, in the Temporal UI in a real browser, finds the organizations with failed
// users, opens acme's workflow and sends `retry` from the UI's update form once seats were
// bought: the users waiting for a seat are provisioned and their failures are gone.
func TestOpsRetryFailedUsersFromTheTemporalUI(t *testing.T) {
	node, chromium, script := browser(t)
	s := newStackWithUI(t, demo.Org())
	s.cliOK("enable", "--interval", "1h")
	s.cliOK("status", "--wait", "--timeout", "3m")
	waiting := s.failures(vocab.Filter{Type: vocab.OutOfLicenses})
	require.NotEmpty(t, waiting, "more users are entitled to Webinar than it has seats")
	require.Contains(t, s.list(`UsersyncFailedUsers > 0`), workflows.OrgWorkflowID(org), "the UI's list can find it")
	before := s.lastRunID()
	s.cliOK("licenses", "set", "Webinar", "500")

	dir := artifactsDir(t)
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, s.uiURL, org)
	cmd.Env = append(os.Environ(), "CHROMIUM_PATH="+chromium, "UITEST_ARTIFACTS="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("retry.mjs:\n%s", out)
	require.NoError(t, err)
	// The UI shows the update's answer: the run it started.
	m := regexp.MustCompile(`retry answered: run (usersync/acme/run/\S+)`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "the UI shows the run the update started")

	got := s.waitRun(before)
	require.Equal(t, m[1], got.RunID, "the run the UI showed is the one that ran")
	require.Equal(t, vocab.KindRetry, got.Kind)
	require.Equal(t, len(waiting), got.Outcomes[vocab.Created])
	rows, err := s.store.History(s.ctx, org, store.HistoryFilter{Type: vocab.EventRetry})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, "ops-ui", rows[0].Actor, "the history names who retried from the UI")
	require.Contains(t, s.cliOK("failures", "--type", "out_of_licenses"), "No current failures")
	for _, f := range waiting {
		u, err := s.target.FindUserByUserName(s.ctx, s.ext, f.UserName)
		require.NoError(t, err)
		require.NotNil(t, u, "%s is in the target after the retry", f.UserName)
		require.True(t, u.Active)
		require.Contains(t, u.Products, demo.Webinar)
	}
}
