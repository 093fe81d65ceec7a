package devstack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var testSamba struct {
	once sync.Once
	mu   sync.Mutex
	dc   *SambaDC
	err  error
}

// TestSambaDC returns the Samba AD DC of this test binary, provisioned and started on
// first use (a minute or so; waiting first while another test binary's DC runs) and
// stopped by StopTestSambaDC or when the binary exits. It skips when samba is not
// installed or we are not root (fails under USERSYNC_REQUIRE_INTEGRATION=1).
// Realm CORP.EXAMPLE.TEST, domain CORP; the Administrator's password is in the result.
func TestSambaDC(t testing.TB) *SambaDC {
	t.Helper()
	if err := SambaAvailable(); err != nil {
		SkipUnlessRequired(t, "%v", err)
	}
	testSamba.once.Do(func() {
		removeStaleSambaDirs()
		dir, err := os.MkdirTemp("", "usersync-samba-")
		if err != nil {
			testSamba.err = err
			return
		}
		dc := &SambaDC{Dir: dir, Realm: "CORP.EXAMPLE.TEST", Domain: "CORP",
			AdminPassword: "Adm1n-" + randomHex(8) + "-Pw!"}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		if err := dc.Start(ctx); err != nil {
			testSamba.err = err
			_ = os.RemoveAll(dir)
			return
		}
		testSamba.mu.Lock()
		testSamba.dc = dc
		testSamba.mu.Unlock()
	})
	if testSamba.err != nil {
		if errors.Is(testSamba.err, ErrSambaUnavailable) {
			SkipUnlessRequired(t, "%v", testSamba.err)
		}
		t.Fatalf("test samba DC: %v", testSamba.err)
	}
	testSamba.mu.Lock()
	defer testSamba.mu.Unlock()
	if testSamba.dc == nil {
		t.Fatal("test samba DC: stopped already (StopTestSambaDC)")
	}
	return testSamba.dc
}

// StopTestSambaDC stops the DC of TestSambaDC, if it runs, and deletes its directory. A
// TestMain calls it after m.Run, so that the next test binary gets the ports sooner.
func StopTestSambaDC() {
	testSamba.mu.Lock()
	dc := testSamba.dc
	testSamba.dc = nil
	testSamba.mu.Unlock()
	if dc != nil {
		_ = dc.Stop()
		_ = os.RemoveAll(dc.Dir)
	}
}

// removeStaleSambaDirs deletes the directories of earlier test binaries' DCs whose
// samba is gone.
func removeStaleSambaDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "usersync-samba-*"))
	for _, d := range dirs {
		pidFile := filepath.Join(d, "samba-child.pid")
		_, statErr := os.Stat(pidFile)
		if _, alive := PIDFileAlive(pidFile); alive {
			continue
		}
		st, err := os.Stat(d)
		old := err == nil && time.Since(st.ModTime()) > time.Hour // else it may be provisioning
		if statErr == nil || old {
			_ = os.RemoveAll(d)
		}
	}
}
