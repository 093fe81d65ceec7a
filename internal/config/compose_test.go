package config_test

import (
	"cmp"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/usersync/usersync/internal/config"
)

// The compose file is for users (no Docker engine here): this test keeps it in line with the
// code. Our services are those compose builds from this repository.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

// composeSecret is a service's secret, short ("name") or long ({source, target}) syntax.
type composeSecret struct {
	Source, Target string
}

func (c *composeSecret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		c.Source, c.Target = n.Value, n.Value
		return nil
	}
	var long struct {
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	c.Source, c.Target = long.Source, cmp.Or(long.Target, long.Source)
	return nil
}

// mounts says whether a service mounts a secret as /run/secrets/<file>.
func mounts(secrets []composeSecret, file string) bool {
	return slices.ContainsFunc(secrets, func(s composeSecret) bool { return s.Target == file })
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Target string `yaml:"target"`
	} `yaml:"build"`
	Environment yaml.Node       `yaml:"environment"` // a mapping or a list of NAME=value
	Entrypoint  yaml.Node       `yaml:"entrypoint"`  // a string or a list
	Command     yaml.Node       `yaml:"command"`
	Secrets     []composeSecret `yaml:"secrets"`
	Healthcheck *struct {
		Test yaml.Node `yaml:"test"`
	} `yaml:"healthcheck"`
	Restart   string         `yaml:"restart"`
	DependsOn map[string]any `yaml:"depends_on"`
	User      string         `yaml:"user"`
}

const repoRoot = "../.."

func readCompose(t *testing.T) composeFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil { // resolves the anchors and <<: merges
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	return c
}

func strs(t *testing.T, n yaml.Node) []string {
	t.Helper()
	switch n.Kind {
	case 0:
		return nil
	case yaml.ScalarNode:
		return []string{n.Value}
	}
	var out []string
	if err := n.Decode(&out); err != nil {
		t.Fatalf("line %d: %v", n.Line, err)
	}
	return out
}

func environment(t *testing.T, n yaml.Node) map[string]string {
	t.Helper()
	out := map[string]string{}
	if n.Kind == yaml.AliasNode { // environment: *usersync-env
		n = *n.Alias
	}
	switch n.Kind {
	case 0:
	case yaml.MappingNode:
		if err := n.Decode(&out); err != nil {
			t.Fatalf("environment, line %d: %v", n.Line, err)
		}
	default:
		for _, kv := range strs(t, n) {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	}
	return out
}

func TestComposeImagesArePinnedToAVersion(t *testing.T) {
	tag := regexp.MustCompile(`^[^:@]+(:[^:@]*[0-9][^:@]*)(@sha256:[0-9a-f]{64})?$`)
	for name, s := range readCompose(t).Services {
		switch {
		case s.Image == "" && s.Build == nil:
			t.Errorf("service %s: neither image nor build", name)
		case s.Image == "":
		case !tag.MatchString(s.Image) || strings.HasSuffix(s.Image, ":latest"):
			t.Errorf("service %s: image %q is not pinned to a version tag", name, s.Image)
		}
	}
}

// readVariables are the environment variables usersync's programs read: the settings of
// internal/config (the worker's, which include the starter's and devstack's), and those the
// libraries we use read on their own.
func readVariables() map[string]bool {
	known := map[string]bool{
		"PGPASSFILE": true, // pgx: the database password from a file
		"GOMEMLIMIT": true, // the Go runtime (the worker sets one when unset)
	}
	for _, s := range config.All() {
		known[s.Env] = true
	}
	return known
}

// readByDevstack says whether the devstack command (demo-setup's loader) reads variable k:
// its sources name it, or name the secret whose _FILE variant k is.
func readByDevstack(t *testing.T, k string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "internal/devstack/cmd/devstack/*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"`+k+`"`) || strings.Contains(string(b), `"`+strings.TrimSuffix(k, "_FILE")+`"`) {
			return true
		}
	}
	return false
}

func TestComposeSetsOnlyVariablesTheProgramsRead(t *testing.T) {
	known := readVariables()
	ours := 0
	for name, s := range readCompose(t).Services {
		if s.Build == nil {
			continue
		}
		ours++
		for k := range environment(t, s.Environment) {
			if !known[k] && !readByDevstack(t, k) {
				t.Errorf("service %s: environment %s is read by no usersync program (internal/config defines none)", name, k)
			}
		}
	}
	if ours == 0 {
		t.Fatal("no service is built from this repository")
	}
}

// programs are the commands the Dockerfile builds, by name, each a main package of the repo.
func programs(t *testing.T) (map[string]bool, map[string]string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	progs := map[string]bool{}
	for _, m := range regexp.MustCompile(`go build [^\n]*-o /out/(\S+) (\./\S+)`).FindAllStringSubmatch(string(raw), -1) {
		src, err := os.ReadFile(filepath.Join(repoRoot, m[2], "main.go"))
		if err != nil || !strings.Contains(string(src), "package main") {
			t.Errorf("Dockerfile builds %s from %s, which has no main package", m[1], m[2])
			continue
		}
		progs[m[1]] = true
	}
	// Each stage's entrypoint: FROM ... AS <target> ... ENTRYPOINT ["/usr/local/bin/<program>"]
	entry := map[string]string{}
	for _, stage := range regexp.MustCompile(`(?m)^FROM `).Split(string(raw), -1) {
		name := regexp.MustCompile(`^\S+ AS (\S+)`).FindStringSubmatch(stage)
		ep := regexp.MustCompile(`ENTRYPOINT \["([^"]+)"`).FindStringSubmatch(stage)
		if name != nil && ep != nil {
			entry[name[1]] = filepath.Base(ep[1])
		}
	}
	return progs, entry
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// shellCommands are the first words of the commands of a shell script (split at && || ; | and
// line ends).
func shellCommands(script string) []string {
	var out []string
	for _, part := range regexp.MustCompile(`&&|\|\||[;|\n]`).Split(script, -1) {
		f := strings.Fields(part)
		for len(f) > 0 && assignment.MatchString(f[0]) { // VAR=value cmd: the command is cmd
			f = f[1:]
		}
		if len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

func TestComposeCommandsNamePrograms(t *testing.T) {
	progs, entry := programs(t)
	for _, want := range []string{"worker", "starter"} {
		if !progs[want] {
			t.Errorf("the Dockerfile does not build %s", want)
		}
	}
	for name, s := range readCompose(t).Services {
		if s.Build == nil {
			continue
		}
		ep, cmd := strs(t, s.Entrypoint), strs(t, s.Command)
		var named []string
		switch {
		case len(ep) >= 2 && strings.HasSuffix(ep[0], "sh") && ep[len(ep)-1] == "-c":
			for _, script := range cmd {
				named = append(named, shellCommands(script)...)
			}
		case len(ep) > 0:
			named = append(named, filepath.Base(ep[0]))
		default:
			image, ok := entry[s.Build.Target]
			if !ok {
				t.Errorf("service %s: build target %q has no ENTRYPOINT in the Dockerfile", name, s.Build.Target)
			}
			named = append(named, image)
			if len(cmd) > 0 && !strings.HasPrefix(cmd[0], "-") {
				t.Errorf("service %s: command %q should be flags of %s", name, cmd, image)
			}
		}
		if len(named) == 0 {
			t.Errorf("service %s: runs no program", name)
		}
		for _, p := range named {
			if !progs[p] {
				t.Errorf("service %s: runs %q, which is not a program of this repository (%v)", name, p, slices.Sorted(mapKeys(progs)))
			}
		}
	}
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestComposeSecretsAreTheFilesComposeSecretsWrites(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "scripts/compose-secrets.sh"))
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	for _, m := range regexp.MustCompile(`\.secrets/([A-Za-z0-9_.]+)`).FindAllStringSubmatch(string(raw), -1) {
		written[m[1]] = true
	}
	// The loop `for name in a b c; do ... > ".secrets/$name"`.
	for _, m := range regexp.MustCompile(`for name in ([^;]+);`).FindAllStringSubmatch(string(raw), -1) {
		for _, n := range strings.Fields(m[1]) {
			written[n] = true
		}
	}
	c := readCompose(t)
	for name, s := range c.Secrets {
		file := strings.TrimPrefix(s.File, "./.secrets/")
		if file == s.File || !written[file] {
			t.Errorf("secret %s: file %q is not one scripts/compose-secrets.sh writes under ./.secrets", name, s.File)
		}
	}
	mounted := regexp.MustCompile(`/run/secrets/([A-Za-z0-9_.]+)`)
	for name, s := range c.Services {
		for _, sec := range s.Secrets {
			if _, ok := c.Secrets[sec.Source]; !ok {
				t.Errorf("service %s: secret %s is not defined", name, sec.Source)
			}
		}
		text := fmt.Sprint(environment(t, s.Environment), strs(t, s.Entrypoint), strs(t, s.Command))
		if s.Healthcheck != nil {
			text += fmt.Sprint(strs(t, s.Healthcheck.Test))
		}
		for _, m := range mounted.FindAllStringSubmatch(text, -1) {
			if !mounts(s.Secrets, m[1]) {
				t.Errorf("service %s: reads /run/secrets/%s, which it does not mount", name, m[1])
			}
		}
	}
}

// Every service that keeps running has a health check; what waits for a service that has one
// waits for it to be healthy, and the worker's checks its /healthz.
func TestComposeHealthChecks(t *testing.T) {
	c := readCompose(t)
	for name, s := range c.Services {
		if s.Restart != "no" && s.Healthcheck == nil {
			t.Errorf("service %s: no healthcheck", name)
		}
		for dep, cond := range s.DependsOn {
			d, ok := c.Services[dep]
			if !ok {
				t.Errorf("service %s: depends on %s, which is not a service", name, dep)
				continue
			}
			if d.Healthcheck != nil && fmt.Sprint(cond) != "map[condition:service_healthy]" {
				t.Errorf("service %s: waits for %s with %v, want condition service_healthy", name, dep, cond)
			}
		}
	}
	w := c.Services["worker"]
	env := environment(t, w.Environment)
	addr := env["USERSYNC_METRICS_ADDR"]
	_, port, _ := strings.Cut(addr, ":")
	if !strings.HasPrefix(addr, "0.0.0.0:") || w.Healthcheck == nil ||
		!strings.Contains(strings.Join(strs(t, w.Healthcheck.Test), " "), "127.0.0.1:"+port+"/healthz") {
		t.Errorf("worker: USERSYNC_METRICS_ADDR %q (want 0.0.0.0:<port>) and a healthcheck on its /healthz", addr)
	}
	if env["DATABASE_URL"] == "" {
		t.Error("worker: the shared environment (<<: *usersync-env) did not merge")
	}
	if strings.Contains(c.Services["temporal"].Image, "auto-setup") {
		t.Error("temporal: the auto-setup image is for development only")
	}
}

// Temporal keeps its data in databases of its own, whose schema the admin tools set up before
// the server starts.
func TestComposeTemporalHasItsOwnSchemaSetUp(t *testing.T) {
	c := readCompose(t)
	server := environment(t, c.Services["temporal"].Environment)
	dbURL, err := url.Parse(environment(t, c.Services["worker"].Environment)["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	ours := strings.TrimPrefix(dbURL.Path, "/")
	schema, ok := c.Services["temporal-schema"]
	script := strings.Join(strs(t, schema.Command), "\n")
	for _, db := range []string{server["DBNAME"], server["VISIBILITY_DBNAME"]} {
		if db == "" || db == ours {
			t.Errorf("temporal: database %q, want one of its own (usersync's is %q)", db, ours)
		}
		if !strings.Contains(script, db) {
			t.Errorf("temporal-schema does not set up %q", db)
		}
	}
	for _, want := range []string{"--plugin postgres12", "create", "setup-schema", "update-schema", "/etc/temporal/schema/postgresql/v12/"} {
		if !ok || !strings.Contains(script, want) {
			t.Errorf("temporal-schema: %q not in its command:\n%s", want, script)
		}
	}
	if !strings.HasPrefix(schema.Image, "temporalio/admin-tools:") {
		t.Errorf("temporal-schema: image %q, want temporalio/admin-tools", schema.Image)
	}
	if fmt.Sprint(c.Services["temporal"].DependsOn["temporal-schema"]) != "map[condition:service_completed_successfully]" {
		t.Error("temporal: does not wait for temporal-schema to complete")
	}
}

// imageUsers are the users of the images compose sets no `user:` for, as they read their
// secrets: postgres' entrypoint reads POSTGRES_PASSWORD_FILE as root, then runs as postgres
// (999:999, the Debian image's), which its init scripts (the usersync_*_password files) run as:
// its files belong to postgres. osixia/openldap's startup runs as root and reads its secret as
// root.
var imageUsers = map[string]string{"postgres": "999:999", "osixia/openldap": "0:0"}

// Compose bind-mounts secret files as they are on the host: scripts/compose-secrets.sh (run as
// root, in a copy of the repository's layout) leaves each one 0400 and owned by the user of every
// non-root service that mounts it (its `user:`, with .env's USERSYNC_UID/GID), in a 0700 folder.
func TestComposeSecretFilesAreReadableOnlyByTheirContainersUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("USERSYNC_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("scripts/compose-secrets.sh gives files to other users: run this test as root")
		}
		t.Skip("scripts/compose-secrets.sh gives files to other users: run this test as root")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(repoRoot, "scripts/compose-secrets.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scripts/compose-secrets.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	// A user's own UID/GID in .env (compose reads it): usersync's files follow it.
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("USERSYNC_UID=4242\nUSERSYNC_GID=4343\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"USERSYNC_UID": "4242", "USERSYNC_GID": "4343"}
	for range 2 { // again: kept files keep their owners and modes
		if out, err := exec.Command("bash", filepath.Join(dir, "scripts/compose-secrets.sh")).CombinedOutput(); err != nil {
			t.Fatalf("compose-secrets.sh: %v\n%s", err, out)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, ".secrets")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf(".secrets: %v, want a 0700 folder (%v)", fi.Mode(), err)
	}

	c := readCompose(t)
	for name, sec := range c.Secrets {
		readers := map[string][]string{} // uid:gid -> services
		for svc, s := range c.Services {
			if !slices.ContainsFunc(s.Secrets, func(m composeSecret) bool { return m.Source == name }) {
				continue
			}
			user := expandUser(s.User, vars)
			if user == "" {
				image, _, _ := strings.Cut(s.Image, ":")
				var ok bool
				if user, ok = imageUsers[image]; !ok {
					t.Errorf("service %s mounts secret %s but has no `user:` and image %q is not in imageUsers", svc, name, s.Image)
					continue
				}
			}
			if user != "0:0" { // root reads any file
				readers[user] = append(readers[user], svc)
			}
		}
		if len(readers) > 1 {
			t.Errorf("secret %s is read by services of different users %v: give each its own file", name, readers)
			continue
		}
		want := "0:0"
		for u := range readers {
			want = u
		}
		fi, err := os.Stat(filepath.Join(dir, strings.TrimPrefix(sec.File, "./")))
		if err != nil {
			t.Errorf("secret %s: %v", name, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if got := fmt.Sprintf("%d:%d", st.Uid, st.Gid); got != want || fi.Mode().Perm() != 0o400 {
			t.Errorf("secret %s (%s): owner %s mode %v, want owner %s (the user of %v) mode 0400", name, sec.File, got, fi.Mode().Perm(), want, readers[want])
		}
	}
}

// expandUser resolves compose's ${NAME:-default} in a `user:` value.
func expandUser(user string, vars map[string]string) string {
	return regexp.MustCompile(`\$\{([A-Z_]+):-([^}]*)\}`).ReplaceAllStringFunc(user, func(m string) string {
		sub := regexp.MustCompile(`\$\{([A-Z_]+):-([^}]*)\}`).FindStringSubmatch(m)
		return cmp.Or(vars[sub[1]], sub[2])
	})
}
