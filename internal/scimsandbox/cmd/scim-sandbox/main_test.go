package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseSeats(t *testing.T) {
	got, err := parseSeats("Meeting=100, Webinar=20")
	if err != nil || !reflect.DeepEqual(got, map[string]int{"Meeting": 100, "Webinar": 20}) {
		t.Fatalf("parseSeats = %v, %v", got, err)
	}
	for _, bad := range []string{"Meeting", "Meeting=x", "=3", "Meeting=-1"} {
		if _, err := parseSeats(bad); err == nil {
			t.Errorf("parseSeats(%q) accepted", bad)
		}
	}
}

func TestTokenComesFromFileOrEnvironment(t *testing.T) {
	t.Setenv("SCIM_TOKEN", "")
	if _, err := readToken(""); err == nil {
		t.Fatal("started without a token")
	}
	t.Setenv("SCIM_TOKEN", "from-env")
	if tok, err := readToken(""); err != nil || tok != "from-env" {
		t.Fatalf("env token = %q, %v", tok, err)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := readToken(file); err != nil || tok != "from-file" {
		t.Fatalf("file token = %q, %v", tok, err)
	}
}

func TestCustomSchemaFlagsAreValidatedBeforeStarting(t *testing.T) {
	for _, args := range [][]string{
		{"--custom-schema", "not-a-urn"},
		{"--custom-attributes", "office,Office"},
		{"--custom-attributes", "bad name"},
	} {
		if err := run(args); err == nil || !strings.Contains(err.Error(), "custom") {
			t.Errorf("run(%q) = %v, want a custom schema error", args, err)
		}
	}
}
