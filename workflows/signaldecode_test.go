package workflows

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodersRejectWhatTheTypesDoNotHold(t *testing.T) {
	dc := func(s string) *signalError {
		_, bad := decodeRetry(rawJSON(s))
		return bad
	}
	require.Nil(t, dc(`{}`))
	require.Nil(t, dc(`null`))
	require.Nil(t, dc(`{"Actor":"a","FILTER":{"Type":"out_of_licenses","product":"p","user":"u"}}`), "names match as in encoding/json")
	require.Nil(t, dc(`{"filter":null}`))
	for _, s := range []string{`{"actor":"a","Actor":"b"}`, `[]`, `{"filter":{"type":"out_of_licenses"}} {}`, `{"filter":{"product":1}}`} {
		require.NotNil(t, dc(s), s)
	}
	for _, s := range []string{`"-1h"`, `"29s"`, `-1`, `1.5`, `"1"`, `true`} {
		_, bad := decodeEnable(rawJSON(`{"interval":` + s + `}`))
		require.NotNil(t, bad, s)
	}
	s, bad := decodeDisable(rawJSON(`{"actor":"bob","interval":"1s"}`))
	require.Nil(t, bad, "disable ignores the interval")
	require.Equal(t, "bob", s.Actor)
	_, bad = decodeActor(nil)
	require.Nil(t, bad, "a signal without input is an empty payload")

	long := strings.Repeat("é", 100)
	_, bad = decodeRetry(rawJSON(`{"filter":{"type":"` + long + `"}}`))
	require.NotNil(t, bad)
	require.Less(t, len(bad.Value), 80, "values are clipped")
}
