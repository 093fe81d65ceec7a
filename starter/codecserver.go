package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/converter"

	"github.com/usersync/usersync/internal/codec"
	"github.com/usersync/usersync/internal/config"
)

// codecServerCmd serves Temporal's codec endpoints (POST /encode, /decode) so that the
// Temporal UI and CLI show decrypted payloads to those allowed: the browser sends the
// payloads to this server, never the key to the browser.
func codecServerCmd(a *app) *cobra.Command {
	var listen, origin, tokenFile string
	cmd := &cobra.Command{
		Use:   "codec-server",
		Short: "Decrypt payloads for the Temporal UI (USERSYNC_PAYLOAD_KEY_FILE)",
		Long: `codec-server serves the Temporal codec protocol (POST <path>/encode and <path>/decode) with the
payload key: set the UI's "Codec Server endpoint" to its URL. It answers the browser of --ui-origin
only (CORS), and with --token-file only requests that carry "Authorization: Bearer <token>" or the
session cookie its /login page sets once the token is typed in there (for browsers: the Temporal UI
sends cookies when its codec setting "include cross-origin credentials" is on).`,
		Example: `  starter codec-server --listen 127.0.0.1:8089 --ui-origin http://127.0.0.1:8233`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.PayloadKeyFile == "" {
				return errors.New("--payload-key-file: not set (set it or env USERSYNC_PAYLOAD_KEY_FILE)")
			}
			cd, err := a.PayloadCodec()
			if err != nil {
				return err
			}
			token := ""
			if tokenFile == "" && !loopbackListen(listen) {
				return fmt.Errorf("--listen %s is not a loopback address: set --token-file, so that only callers with the token decode", listen)
			}
			if tokenFile != "" {
				if token, err = config.Secret("USERSYNC_CODEC_TOKEN", tokenFile); err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
			}
			h, err := codecHandler(cd, origin, token)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "codec server on http://%s for %s\n", ln.Addr(), origin)
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-cmd.Context().Done()
				_ = srv.Close()
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8089", "host:port to listen on")
	cmd.Flags().StringVar(&origin, "ui-origin", "http://127.0.0.1:8233", "origin of the Temporal UI allowed to call it (scheme://host:port)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding a bearer token callers must send (or env USERSYNC_CODEC_TOKEN)")
	return cmd
}

// loopbackListen reports whether addr (host:port) listens on this machine only.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sessionCookie is the codec server's browser session: the Temporal UI cannot send our bearer
// token (its "pass access token" sends its own login's token), but it sends cookies with
// "include cross-origin credentials" on.
const sessionCookie = "usersync_codec_session"

// sessionValue is the cookie's value for token: derived from it, so that the browser never
// stores the token itself, and void once the token changes.
func sessionValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("usersync codec-server session v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// authorized reports whether r carries the token: as a bearer token or as the session cookie.
func authorized(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+token)) == 1 {
		return true
	}
	c, err := r.Cookie(sessionCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(sessionValue(token))) == 1
}

const loginPage = `<!doctype html><html><head><meta charset="utf-8"><title>usersync codec server</title></head>
<body><h1>usersync codec server</h1><p>%s</p>
<form method="post" action="login"><label>Token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in</button></form></body></html>`

// login is the codec server's own page where a person types the token once: the browser then
// holds the session cookie (HttpOnly, SameSite=Strict: sent only from the same site, such as
// the UI on another port or subdomain) and the UI's decode requests carry it.
func login(w http.ResponseWriter, r *http.Request, token string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	switch r.Method {
	case http.MethodGet:
		msg := "Type the codec server's token to let this browser decode payloads in the Temporal UI."
		if token == "" {
			msg = "This codec server needs no token (it listens on loopback only)."
		}
		fmt.Fprintf(w, loginPage, html.EscapeString(msg))
	case http.MethodPost:
		// The form is this server's own: a post from another page is refused.
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		if token == "" || subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), []byte(token)) != 1 {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, loginPage, "Wrong token.")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sessionValue(token), Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode,
			Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"})
		fmt.Fprint(w, `<!doctype html><html><head><meta charset="utf-8"><title>usersync codec server</title></head>`+
			`<body><h1>usersync codec server</h1><p>Signed in: the Temporal UI in this browser decodes payloads `+
			`(its codec setting "Include cross-origin credentials" must be on).</p></body></html>`)
	default:
		http.Error(w, "GET or POST only", http.StatusMethodNotAllowed)
	}
}

// codecHandler is the codec protocol behind a CORS check for origin and, with a token, a
// bearer token or session cookie check. A request from another origin or without the token
// decodes nothing.
func codecHandler(cd codec.Codec, origin, token string) (http.Handler, error) {
	if origin == "" || strings.HasSuffix(origin, "/") || !strings.Contains(origin, "://") {
		return nil, fmt.Errorf("--ui-origin: %q is not an origin (scheme://host[:port])", origin)
	}
	inner := converter.NewPayloadCodecHTTPHandler(cd)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			login(w, r, token)
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			if o != origin {
				http.Error(w, "origin not allowed", http.StatusForbidden)
				return
			}
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
			w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			w.Header().Set("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if !authorized(r, token) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	}), nil
}
