package scim

import (
	"encoding/json"
	"testing"
)

// A target's answer, whatever it holds, decodes to a user or to an error: never a panic.
func FuzzParseUser(f *testing.F) {
	for _, s := range []string{
		`{"id":"1","userName":"ann@acme.test","active":true,"emails":[{"value":"ann@acme.test","primary":true}]}`,
		`{"id":"2","userName":"b","name":{"givenName":"B"},"entitlements":[{"value":"Meeting"}],` +
			`"urn:ietf:params:scim:schemas:extension:usersync:2.0:User":{"settingsTemplate":"T"}}`,
		`{"id":3}`, `[]`, `null`, `{"emails":"x"}`, `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":[]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := parseUser(Extension{}, json.RawMessage(raw))
		if err == nil && u == nil {
			t.Fatal("no user and no error")
		}
		if err == nil {
			_ = u.State()
		}
	})
}
