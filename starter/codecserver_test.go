package main

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/usersync/usersync/internal/codec"
	"github.com/usersync/usersync/internal/orgs"
)

// The codec server decodes for the UI's origin with the token, and for nobody else.
func TestCodecServerDecodesForTheUIOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payload.keys")
	_, err := orgs.AddKey(path)
	require.NoError(t, err)
	keys, err := orgs.LoadKeyring(path)
	require.NoError(t, err)
	cd := codec.Codec{Keys: keys}
	p, err := cd.DataConverter().ToPayload(map[string]string{"actor": "alice", "user": "bob@acme.test"})
	require.NoError(t, err)
	body, err := protojson.Marshal(&common.Payloads{Payloads: []*common.Payload{p}})
	require.NoError(t, err)

	const ui = "http://127.0.0.1:8233"
	h, err := codecHandler(cd, ui, "tok-1")
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	call := func(method, origin, auth string, cookies ...*http.Cookie) (int, string, http.Header) {
		req, err := http.NewRequest(method, srv.URL+"/decode", strings.NewReader(string(body)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}

	code, _, hdr := call(http.MethodOptions, ui, "")
	require.Equal(t, http.StatusNoContent, code, "the browser's preflight")
	require.Equal(t, ui, hdr.Get("Access-Control-Allow-Origin"))

	code, out, _ := call(http.MethodPost, ui, "Bearer tok-1")
	require.Equal(t, http.StatusOK, code, out)
	var decoded common.Payloads
	require.NoError(t, protojson.Unmarshal([]byte(out), &decoded))
	require.Contains(t, string(decoded.Payloads[0].Data), "bob@acme.test")

	code, out, _ = call(http.MethodPost, "http://evil.example", "Bearer tok-1")
	require.Equal(t, http.StatusForbidden, code)
	require.NotContains(t, out, "bob@acme.test")
	code, out, _ = call(http.MethodPost, ui, "Bearer wrong")
	require.Equal(t, http.StatusUnauthorized, code)
	require.NotContains(t, out, "bob@acme.test")
	code, _, _ = call(http.MethodPost, ui, "")
	require.Equal(t, http.StatusUnauthorized, code)

	// A browser signs in on the server's /login page once: its session cookie then decodes.
	postLogin := func(origin, tok string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader("token="+tok))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := postLogin(srv.URL, "wrong")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Empty(t, resp.Cookies(), "no session for a wrong token")
	resp = postLogin(ui, "tok-1")
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "only the server's own form signs in")
	require.Empty(t, resp.Cookies())
	resp = postLogin(srv.URL, "tok-1")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, resp.Cookies(), 1)
	session := resp.Cookies()[0]
	require.True(t, session.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, session.SameSite)
	require.NotContains(t, session.Value, "tok-1", "the browser never holds the token")
	code, out, _ = call(http.MethodPost, ui, "", session)
	require.Equal(t, http.StatusOK, code, out)
	require.Contains(t, out, base64.StdEncoding.EncodeToString(decoded.Payloads[0].Data)[:16])
	code, out, _ = call(http.MethodPost, ui, "", &http.Cookie{Name: session.Name, Value: session.Value[1:] + "0"})
	require.Equal(t, http.StatusUnauthorized, code)
	require.NotContains(t, out, "bob@acme.test")

	_, err = codecHandler(cd, "http://127.0.0.1:8233/", "")
	require.ErrorContains(t, err, "--ui-origin")
}

func TestCodecServerNeedsATokenOffLoopback(t *testing.T) {
	require.True(t, loopbackListen("127.0.0.1:8089"))
	require.True(t, loopbackListen("[::1]:8089"))
	require.True(t, loopbackListen("localhost:8089"))
	require.False(t, loopbackListen("0.0.0.0:8089"))
	require.False(t, loopbackListen(":8089"))
}
