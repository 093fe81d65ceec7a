package e2e

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/internal/codec"
	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// lockedBuffer collects the workers' logs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The leak scan: a whole sync with known secrets and known personal data (a first sync with
// every kind of failure, a retry of one user by email through the CLI, a resync), then every
// Temporal history (all workflows, children included) is read raw, as the UI and an export
// show it, with the workers' logs, the CLI's output and --help, and the history table. No
// secret appears anywhere; no directory user's userName, email or name appears in any
// Temporal history, with the payload codec and without it. With the codec, nothing the admin
// typed is readable either, and the codec opens the payloads again.
func TestNoSecretOrPersonalDataLeaks(t *testing.T) {
	for _, withCodec := range []bool{false, true} {
		name := "plain"
		if withCodec {
			name = "codec"
		}
		t.Run(name, func(t *testing.T) { leakScan(t, withCodec) })
	}
}

func leakScan(t *testing.T, withCodec bool) {
	d := demo.Org()
	logs := &lockedBuffer{}
	var cd codec.Codec
	var keyFile string
	opts := func(o *client.Options) {
		o.Logger = tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if withCodec {
			o.DataConverter, o.FailureConverter = cd.DataConverter(), cd.FailureConverter()
		}
	}
	if withCodec {
		keyFile = filepath.Join(t.TempDir(), "payload.keys")
		_, err := orgs.AddKey(keyFile)
		require.NoError(t, err)
		keys, err := orgs.LoadKeyring(keyFile)
		require.NoError(t, err)
		// Encryption required too: a whole sync, its retries and the CLI's actions only ever
		// send sealed payloads (an unsealed one would be refused, see workflows).
		cd = codec.Codec{Keys: keys, RequireEncryption: true}
	}
	s := newStackOn(t, d, sandboxTarget, opts)
	const admin = "dana.leakscan"
	s.cliEnv = []string{"USER=" + admin}
	if withCodec {
		s.cliEnv = append(s.cliEnv, "USERSYNC_PAYLOAD_KEY_FILE="+keyFile, "USERSYNC_PAYLOAD_REQUIRE_ENCRYPTION=true")
	}

	var cli strings.Builder
	s.signal(workflows.SignalEnable, workflows.SwitchSignal{Actor: admin})
	first := s.waitRun("")
	require.Equal(t, vocab.RunSucceeded, first.Status, first.Error)
	failed := s.failures(vocab.Filter{Type: vocab.ExistingAccount})
	require.NotEmpty(t, failed)
	cli.WriteString(s.cliOK("retry", "--user", failed[0].UserName))
	for _, args := range [][]string{{"status"}, {"failures"}, {"history", "--limit", "500"}, {"--help"},
		{"orgs", "--help"}, {"retry", "--help"}, {"codec-server", "--help"}} {
		cli.WriteString(s.cliOK(args...))
	}
	r := s.starter("rules", "add", "--group", "cn=nope", "--priority", "99") // an error's text
	cli.WriteString(r.stdout + r.stderr)

	secrets := []string{scimToken, ldapSecret}
	var personal []string
	for _, e := range d.Entries {
		for _, attr := range []string{"mail", "displayName"} {
			if v := entryValue(e, attr); len(v) > 5 {
				personal = append(personal, v)
			}
		}
	}
	require.Greater(t, len(personal), 100, "the demo's users")

	// Every Temporal history, raw.
	var events, sealed int
	var retrySignal *commonpb.Payload
	eachHistoryEvent(t, s, func(where string, e *historypb.HistoryEvent, b []byte) {
		events++
		for _, v := range append(secrets, personal...) {
			require.False(t, bytes.Contains(b, []byte(v)), "%s holds %q in clear", where, v)
		}
		if withCodec {
			require.False(t, bytes.Contains(b, []byte(admin)), "%s holds the admin's name in clear", where)
			sealed += bytes.Count(b, []byte(codec.Encoding))
		}
		// starter sends retry as an update: its input is in the accepted event.
		if u := e.GetWorkflowExecutionUpdateAcceptedEventAttributes(); u != nil &&
			u.GetAcceptedRequest().GetInput().GetName() == workflows.SignalRetry {
			retrySignal = u.GetAcceptedRequest().GetInput().GetArgs().GetPayloads()[0]
		}
	})
	require.Greater(t, events, 100, "the histories were read")
	require.NotNil(t, retrySignal, "the CLI's retry update is in the history")
	if withCodec {
		require.Greater(t, sealed, 50, "payloads are sealed")
		opened, err := cd.Decode([]*commonpb.Payload{retrySignal})
		require.NoError(t, err)
		require.Contains(t, string(opened[0].GetData()), admin, "the codec opens them")
		require.Contains(t, string(opened[0].GetData()), failed[0].ExternalID, "the retry names the user by externalId")
	} else {
		require.Contains(t, string(retrySignal.GetData()), failed[0].ExternalID, "the retry names the user by externalId")
	}

	// Secrets: nowhere in the logs, the CLI's output or the history table.
	hist, err := s.store.History(s.ctx, org, store.HistoryFilter{Limit: 10000})
	require.NoError(t, err)
	var rows strings.Builder
	for _, e := range hist {
		rows.WriteString(e.Type + e.Action + e.Actor + e.Status)
		for k, v := range e.Details {
			rows.WriteString(k)
			rows.WriteString(strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(fmtAny(v), "\n", " "), "\t", " ")))
		}
	}
	for _, v := range secrets {
		require.NotContains(t, logs.String(), v, "worker logs")
		require.NotContains(t, cli.String(), v, "CLI output")
		require.NotContains(t, rows.String(), v, "history table")
	}
	require.NotEmpty(t, logs.String(), "the workers' logs were captured")
}
