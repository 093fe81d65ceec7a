package main

import (
	"crypto/subtle"
	"errors"
	"fmt"
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
only (CORS), and with --token-file only requests that carry "Authorization: Bearer <token>".`,
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

// codecHandler is the codec protocol behind a CORS check for origin and, with a token, a
// bearer token check. A request from another origin or without the token decodes nothing.
func codecHandler(cd codec.Codec, origin, token string) (http.Handler, error) {
	if origin == "" || strings.HasSuffix(origin, "/") || !strings.Contains(origin, "://") {
		return nil, fmt.Errorf("--ui-origin: %q is not an origin (scheme://host[:port])", origin)
	}
	inner := converter.NewPayloadCodecHTTPHandler(cd)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		if token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+token)) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	}), nil
}
