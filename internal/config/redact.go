package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// redacted replaces a password in what Redact returns.
const redacted = "xxxxx"

// passwordParam matches password=... in a keyword/value connection string or a URL query.
var passwordParam = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]*)`)

// Redact hides the password of a URL (postgres://usersync:xxxxx@host/db), also in a
// password= query parameter or keyword/value connection string (host=db password=xxxxx).
// Text without a password is returned unchanged; so is "".
func Redact(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if u, err := url.Parse(s); err == nil {
			if u.User != nil {
				if _, ok := u.User.Password(); ok {
					u.User = url.UserPassword(u.User.Username(), redacted)
					s = u.String()
				}
			}
		} else {
			// Not a valid URL (e.g. an unescaped @ in the password): hide everything from the
			// first ":" of the authority up to its last "@".
			rest := s[i+3:]
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				if c := strings.Index(rest[:at], ":"); c >= 0 {
					s = s[:i+3] + rest[:c+1] + redacted + rest[at:]
				}
			}
		}
	}
	return passwordParam.ReplaceAllString(s, "${1}"+redacted)
}

// DatabaseTLSWarning returns a warning when the PostgreSQL connection of databaseURL leaves
// this machine (a host that is not loopback nor a Unix socket) without sslmode=verify-full, so
// the password and the data could be read or changed on the way; "" otherwise. Like pgx it
// falls back to PGHOST and PGSSLMODE, and to sslmode prefer.
func DatabaseTLSWarning(databaseURL string) string {
	hosts, sslmode, ok := pgHostsAndSSLMode(databaseURL)
	if !ok {
		return "" // unparseable: connecting reports it
	}
	if len(hosts) == 0 {
		if h := os.Getenv("PGHOST"); h != "" {
			hosts = strings.Split(h, ",")
		}
	}
	if sslmode == "" {
		sslmode = os.Getenv("PGSSLMODE")
	}
	if sslmode == "" {
		sslmode = "prefer"
	}
	if sslmode == "verify-full" {
		return ""
	}
	var remote []string
	for _, h := range hosts {
		if !isLocalHost(h) {
			remote = append(remote, strings.TrimSpace(h))
		}
	}
	if len(remote) == 0 {
		return ""
	}
	var what string
	switch sslmode {
	case "disable":
		what = "is not encrypted"
	case "allow", "prefer":
		what = "may not be encrypted and does not verify the server"
	case "require":
		what = "is encrypted but does not verify the server"
	case "verify-ca":
		what = "does not verify the server's host name"
	default:
		what = "has an unknown sslmode"
	}
	return fmt.Sprintf("DATABASE_URL: the connection to %s with sslmode=%s %s, so the database password and data could be read or changed on the way; use sslmode=verify-full with sslrootcert=<CA file>",
		strings.Join(remote, ","), sslmode, what)
}

// pgHostsAndSSLMode reads the hosts and sslmode of a postgres:// URL or a keyword/value
// connection string. ok is false when it cannot be read.
func pgHostsAndSSLMode(s string) (hosts []string, sslmode string, ok bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			return nil, "", false
		}
		q := u.Query()
		if u.Host != "" {
			hosts = strings.Split(u.Host, ",")
		} else if h := q.Get("host"); h != "" {
			hosts = strings.Split(h, ",")
		}
		return hosts, q.Get("sslmode"), true
	}
	for _, kv := range keywordValues(s) {
		switch kv[0] {
		case "host":
			hosts = strings.Split(kv[1], ",")
		case "sslmode":
			sslmode = kv[1]
		}
	}
	return hosts, sslmode, true
}

// keywordValues splits "host=a password='x y'" into pairs (libpq's keyword/value form).
func keywordValues(s string) [][2]string {
	var out [][2]string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			i := 1
			for ; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			s = s[min(i+1, len(s)):]
		} else {
			end := strings.IndexAny(s, " \t\n")
			if end < 0 {
				end = len(s)
			}
			val.WriteString(s[:end])
			s = s[end:]
		}
		out = append(out, [2]string{key, val.String()})
	}
	return out
}

// isLocalHost: empty (pgx's default, a Unix socket or localhost), a socket directory,
// localhost or a loopback address, with or without a port.
func isLocalHost(h string) bool {
	h = strings.TrimSpace(h)
	if h == "" || strings.HasPrefix(h, "/") || strings.HasPrefix(h, "@") {
		return true
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
