package workflows

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTheOrgWorkflowsInputTakesAGoDurationString(t *testing.T) {
	for in, want := range map[string]time.Duration{
		`{"org":"acme","interval":"1h"}`:         time.Hour,
		`{"org":"acme","interval":900000000000}`: 15 * time.Minute,
		`{"org":"acme"}`:                         0,
	} {
		var st SyncState
		require.NoError(t, json.Unmarshal([]byte(in), &st), in)
		require.Equal(t, SyncState{Org: "acme", Interval: want}, st, in)
	}
	var st SyncState
	require.ErrorContains(t, json.Unmarshal([]byte(`{"org":"acme","interval":"soon"}`), &st), `"soon"`)
	b, err := json.Marshal(SyncState{Org: "acme", Interval: time.Hour, Seq: 3})
	require.NoError(t, err)
	var back SyncState
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, SyncState{Org: "acme", Interval: time.Hour, Seq: 3}, back, "what the workflow writes it reads back")
}
