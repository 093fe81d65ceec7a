package config

import (
	"strings"
	"testing"
)

func TestRedactHidesPasswords(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://usersync:s3cret@db.example.com/usersync", "postgres://usersync:xxxxx@db.example.com/usersync"},
		{"postgres://usersync@127.0.0.1:5432/usersync?sslmode=disable", "postgres://usersync@127.0.0.1:5432/usersync?sslmode=disable"},
		{"postgres://u@h/db?password=s3cret&sslmode=require", "postgres://u@h/db?password=xxxxx&sslmode=require"},
		{"postgres://u:p@ss:w0rd@h/db", "postgres://u:xxxxx@h/db"}, // unescaped @: not a valid URL
		{"host=db user=u password=s3cret sslmode=require", "host=db user=u password=xxxxx sslmode=require"},
		{"host=db password='s3 cret' sslmode=require", "host=db password=xxxxx sslmode=require"},
		{"https://api:s3cret@scim.example.com/v2", "https://api:xxxxx@scim.example.com/v2"},
		{"ldap://dc.example.com:389", "ldap://dc.example.com:389"},
		{"127.0.0.1:7233", "127.0.0.1:7233"},
		{"", ""},
	} {
		got := Redact(tc.in)
		if got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "s3") || strings.Contains(got, "w0rd") {
			t.Errorf("Redact(%q) = %q shows the password", tc.in, got)
		}
	}
}

func TestDatabaseTLSWarning(t *testing.T) {
	t.Setenv("PGHOST", "")
	t.Setenv("PGSSLMODE", "")
	for _, tc := range []struct {
		url  string
		warn string // "" for none; else a word of the warning
	}{
		{"postgres://u@127.0.0.1:5432/db?sslmode=disable", ""},
		{"postgres://u@localhost/db", ""},
		{"postgres://u@[::1]:5432/db?sslmode=disable", ""},
		{"postgres:///db?host=/var/run/postgresql", ""},
		{"postgres://u@/db", ""},
		{"host=/tmp dbname=db", ""},
		{"postgres://u@db.example.com/db?sslmode=verify-full&sslrootcert=/etc/ca.pem", ""},
		{"postgres://u@db.example.com/db?sslmode=disable", "not encrypted"},
		{"postgres://u@db.example.com/db", "sslmode=prefer"},
		{"postgres://u@10.0.0.5:5432/db?sslmode=require", "does not verify the server"},
		{"postgres://u@db.example.com/db?sslmode=verify-ca", "host name"},
		{"postgres://u@127.0.0.1,db2.example.com/db?sslmode=require", "db2.example.com"},
		{"host=db.example.com sslmode=disable password='a b'", "not encrypted"},
		{"host=localhost sslmode=disable", ""},
	} {
		got := DatabaseTLSWarning(tc.url)
		switch {
		case tc.warn == "" && got != "":
			t.Errorf("%s: warning %q, want none", tc.url, got)
		case tc.warn != "" && (!strings.Contains(got, tc.warn) || !strings.Contains(got, "verify-full")):
			t.Errorf("%s: warning %q, want one saying %q and advising verify-full", tc.url, got, tc.warn)
		}
	}
	// pgx's environment fallbacks.
	t.Setenv("PGHOST", "db.example.com")
	if got := DatabaseTLSWarning("postgres:///db"); !strings.Contains(got, "db.example.com") {
		t.Errorf("PGHOST remote: %q, want a warning", got)
	}
	t.Setenv("PGSSLMODE", "verify-full")
	if got := DatabaseTLSWarning("postgres:///db"); got != "" {
		t.Errorf("PGSSLMODE=verify-full: %q, want none", got)
	}
	t.Setenv("PGSSLMODE", "")
	t.Setenv("PGHOST", "")
	if got := DatabaseTLSWarning("postgres://u:s3cret@db.example.com/db?sslmode=disable"); strings.Contains(got, "s3cret") {
		t.Errorf("warning %q shows the password", got)
	}
}
