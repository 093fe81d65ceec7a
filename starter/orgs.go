package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/workflows"
)

func orgsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "orgs",
		Short: "Organizations' settings: directory, target, thresholds; secrets encrypted",
		Long: `Each organization's settings (its directory, its SCIM target, its suspension thresholds) live in
PostgreSQL, versioned: every change is a new version and a history row (type setting). The two
secrets, the LDAP bind password and the SCIM token, are encrypted with AES-256-GCM under a key
of the secrets key file (--secrets-key-file, env USERSYNC_SECRETS_KEY_FILE; mode 0600) before
they are stored, and are never printed. They are read from a file (--ldap-bind-password-file,
--scim-token-file) or, by create (by set with --secrets-from-env), from the environment
(LDAP_BIND_PASSWORD, SCIM_TOKEN); never from a flag's value.`,
		Example: `  starter orgs new-key
  starter orgs create acme --ldap-url ldaps://dc.acme.com --ldap-bind-dn cn=usersync,ou=svc,dc=acme,dc=com \
      --ldap-bind-password-file /run/secrets/acme-ldap --ldap-base-dn dc=acme,dc=com --ldap-profile ad \
      --scim-url https://api.example.com/identity/v2 --scim-token-file /run/secrets/acme-scim
  starter orgs test acme
  starter orgs set acme --scim-rate 5
  starter orgs show acme`,
	}
	cmd.AddCommand(orgsListCmd(a), orgsShowCmd(a), orgsCreateCmd(a), orgsSetCmd(a), orgsDeleteCmd(a),
		orgsTestCmd(a), orgsNewKeyCmd(a), orgsRotateKeyCmd(a))
	return cmd
}

// repo joins the store and the keyring. Without the key file setting, Keys is nil: only
// reading or writing a secret fails.
func (a *app) repo(ctx context.Context) (orgs.Repo, error) {
	db, err := a.store(ctx)
	if err != nil {
		return orgs.Repo{}, err
	}
	r := orgs.Repo{Store: db}
	if a.SecretsKeyFile != "" {
		if r.Keys, err = orgs.LoadKeyring(a.SecretsKeyFile); err != nil {
			return orgs.Repo{}, fmt.Errorf("USERSYNC_SECRETS_KEY_FILE: %w", err)
		}
	}
	return r, nil
}

// orgSettings returns the organization's settings with its secrets, or nil when it has none.
func (a *app) orgSettings(ctx context.Context, org string) (*orgs.Org, error) {
	r, err := a.repo(ctx)
	if err != nil {
		return nil, err
	}
	o, err := r.Get(ctx, org)
	if errors.Is(err, orgs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// orgFlags are the settings flags of create and set (the worker's names).
type orgFlags struct {
	s                       orgs.Settings
	passwordFile, tokenFile string
	secretsFromEnv          bool
	incremental             bool // --ldap-incremental (stored as directory.FullReads, its opposite)
	changed                 func(string) bool
	flagOf                  map[string]string // setting (directory.url) -> flag
}

func (f *orgFlags) bind(cmd *cobra.Command, set bool) {
	fl := cmd.Flags()
	f.flagOf = map[string]string{}
	d, t := &f.s.Directory, &f.s.Target
	str := func(p *string, name, field, def, help string) {
		fl.StringVar(p, name, def, help+" ("+field+")")
		f.flagOf[field] = "--" + name
	}
	boolean := func(p *bool, name, field, help string) {
		fl.BoolVar(p, name, false, help+" ("+field+")")
		f.flagOf[field] = "--" + name
	}
	integer := func(p *int, name, field string, def int, help string) {
		fl.IntVar(p, name, def, help+" ("+field+")")
		f.flagOf[field] = "--" + name
	}
	str(&d.URL, "ldap-url", "directory.url", "", "directory URL, ldap:// or ldaps://")
	str(&d.BindDN, "ldap-bind-dn", "directory.bindDN", "", "bind DN (its password: --ldap-bind-password-file)")
	str(&d.BaseDN, "ldap-base-dn", "directory.baseDN", "", "search base")
	str(&d.Profile, "ldap-profile", "directory.profile", directory.ProfileOpenLDAP, "attribute profile: openldap or ad")
	str(&d.UserNameAttribute, "ldap-username-attribute", "directory.userNameAttribute", "", "userName source (default per profile: mail, userPrincipalName)")
	str(&d.DisabledAttribute, "ldap-disabled-attribute", "directory.disabledAttribute", "", "attribute marking disabled accounts")
	str(&d.DisabledValue, "ldap-disabled-value", "directory.disabledValue", "", "its value for disabled accounts")
	integer(&d.PageSize, "ldap-page-size", "directory.pageSize", directory.DefaultPageSize, "paged search size")
	boolean(&d.StartTLS, "ldap-start-tls", "directory.startTLS", "upgrade an ldap:// connection with StartTLS")
	str(&d.CAFile, "ldap-ca-file", "directory.caFile", "", "PEM file of the CAs of the directory's certificate, on the worker")
	str(&d.ServerName, "ldap-server-name", "directory.serverName", "", "name the directory's certificate must hold")
	boolean(&d.AllowPlaintextBind, "ldap-allow-plaintext-bind", "directory.allowPlaintextBind", "allow a password bind without TLS")
	boolean(&d.InChain, "ldap-in-chain", "directory.inChain", "AD: resolve nested groups with LDAP_MATCHING_RULE_IN_CHAIN")
	fl.BoolVar(&f.incremental, "ldap-incremental", true,
		"read only the directory's changes between full reads (OpenLDAP syncprov); false: read it all every sync (directory.incremental)")
	f.flagOf["directory.incremental"] = "--ldap-incremental"
	integer(&d.FullReadHours, "ldap-full-read-hours", "directory.fullReadHours", 0, "with incremental reads, read everything every this many hours (0: 24)")
	str(&t.URL, "scim-url", "target.url", "", "SCIM 2.0 base URL, https:// (http:// only to loopback)")
	fl.Float64Var(&t.Rate, "scim-rate", orgs.DefaultRate, "SCIM requests per second across all workers, 0 for no limit (target.rate)")
	f.flagOf["target.rate"] = "--scim-rate"
	boolean(&t.AllowHTTP, "scim-allow-http", "target.allowHTTP", "allow an http:// target URL off loopback (token in clear)")
	str(&t.CAFile, "scim-ca-file", "target.caFile", "", "PEM file of the CAs of the target's certificate, on the worker")
	str(&t.ClientCertFile, "scim-client-cert-file", "target.clientCertFile", "", "PEM client certificate for the target, on the worker")
	str(&t.ClientKeyFile, "scim-client-key-file", "target.clientKeyFile", "", "PEM key of the client certificate, on the worker")
	integer(&f.s.SuspendThresholdPercent, "suspend-threshold-percent", "suspendThresholdPercent", orgs.DefaultSuspendThresholdPercent,
		"hold suspensions above this % (0-100) of active linked users")
	integer(&f.s.SuspendThresholdMax, "suspend-threshold-max", "suspendThresholdMax", orgs.DefaultSuspendThresholdMax,
		"... or above this count")
	fl.StringVar(&f.passwordFile, "ldap-bind-password-file", "", "file holding the bind password (else env LDAP_BIND_PASSWORD)")
	f.flagOf[orgs.FieldBindPassword] = "--ldap-bind-password-file"
	fl.StringVar(&f.tokenFile, "scim-token-file", "", "file holding the SCIM bearer token (else env SCIM_TOKEN)")
	f.flagOf[orgs.FieldToken] = "--scim-token-file"
	if set {
		fl.BoolVar(&f.secretsFromEnv, "secrets-from-env", false,
			"also take the secrets from env LDAP_BIND_PASSWORD and SCIM_TOKEN when set (without it, set changes a secret only from its file)")
	}
	f.changed = fl.Changed
}

// anyGiven reports whether a setting flag was given.
func (f *orgFlags) anyGiven() bool {
	for _, flag := range f.flagOf {
		if f.changed(strings.TrimPrefix(flag, "--")) {
			return true
		}
	}
	return f.changed("secrets-from-env")
}

// apply copies the flags given onto o (all of them for a new organization) and reads the
// secrets, from their files or, with fromEnv, from the environment.
func (f *orgFlags) apply(o *orgs.Org, all, fromEnv bool) error {
	given := func(name string) bool { return all || f.changed(name) }
	s, d, t := &o.Settings, &o.Settings.Directory, &o.Settings.Target
	for _, c := range []struct {
		flag string
		copy func()
	}{
		{"ldap-url", func() { d.URL = f.s.Directory.URL }},
		{"ldap-bind-dn", func() { d.BindDN = f.s.Directory.BindDN }},
		{"ldap-base-dn", func() { d.BaseDN = f.s.Directory.BaseDN }},
		{"ldap-profile", func() { d.Profile = f.s.Directory.Profile }},
		{"ldap-username-attribute", func() { d.UserNameAttribute = f.s.Directory.UserNameAttribute }},
		{"ldap-disabled-attribute", func() { d.DisabledAttribute = f.s.Directory.DisabledAttribute }},
		{"ldap-disabled-value", func() { d.DisabledValue = f.s.Directory.DisabledValue }},
		{"ldap-page-size", func() { d.PageSize = f.s.Directory.PageSize }},
		{"ldap-start-tls", func() { d.StartTLS = f.s.Directory.StartTLS }},
		{"ldap-ca-file", func() { d.CAFile = f.s.Directory.CAFile }},
		{"ldap-server-name", func() { d.ServerName = f.s.Directory.ServerName }},
		{"ldap-allow-plaintext-bind", func() { d.AllowPlaintextBind = f.s.Directory.AllowPlaintextBind }},
		{"ldap-in-chain", func() { d.InChain = f.s.Directory.InChain }},
		{"ldap-incremental", func() { d.FullReads = !f.incremental }},
		{"ldap-full-read-hours", func() { d.FullReadHours = f.s.Directory.FullReadHours }},
		{"scim-url", func() { t.URL = f.s.Target.URL }},
		{"scim-rate", func() { t.Rate = f.s.Target.Rate }},
		{"scim-allow-http", func() { t.AllowHTTP = f.s.Target.AllowHTTP }},
		{"scim-ca-file", func() { t.CAFile = f.s.Target.CAFile }},
		{"scim-client-cert-file", func() { t.ClientCertFile = f.s.Target.ClientCertFile }},
		{"scim-client-key-file", func() { t.ClientKeyFile = f.s.Target.ClientKeyFile }},
		{"suspend-threshold-percent", func() { s.SuspendThresholdPercent = f.s.SuspendThresholdPercent }},
		{"suspend-threshold-max", func() { s.SuspendThresholdMax = f.s.SuspendThresholdMax }},
	} {
		if given(c.flag) {
			c.copy()
		}
	}
	var err error
	if o.Secrets.BindPassword, err = readSecret(o.Secrets.BindPassword, "ldap-bind-password-file", f.passwordFile,
		"LDAP_BIND_PASSWORD", f.changed, fromEnv); err != nil {
		return err
	}
	if o.Secrets.Token, err = readSecret(o.Secrets.Token, "scim-token-file", f.tokenFile, "SCIM_TOKEN", f.changed, fromEnv); err != nil {
		return err
	}
	if d.BindDN == "" {
		o.Secrets.BindPassword = "" // no bind DN, no password bind: nothing to keep
	}
	return nil
}

// readSecret returns the secret from the file flag when given, else from env when allowed and
// set, else cur. Errors name the flag and the file, never the content.
func readSecret(cur, flag, file, env string, changed func(string) bool, fromEnv bool) (string, error) {
	if changed(flag) {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--%s: %w", flag, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("--%s: %s is empty", flag, file)
		}
		return v, nil
	}
	if v := os.Getenv(env); fromEnv && v != "" {
		return v, nil
	}
	return cur, nil
}

// explain adds the flag of the setting an error names.
func (f *orgFlags) explain(err error) error {
	msg := err.Error()
	best := ""
	for field := range f.flagOf {
		if strings.Contains(msg, field+":") || strings.Contains(msg, field+" ") {
			if len(field) > len(best) {
				best = field
			}
		}
	}
	if best == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, f.flagOf[best])
}

func orgsCreateCmd(a *app) *cobra.Command {
	var f orgFlags
	cmd := &cobra.Command{
		Use:   "create <org> --ldap-url URL --ldap-base-dn DN --scim-url URL [flags]",
		Short: "Create an organization's settings (version 1)",
		Long: `create stores a new organization's settings. Unset flags take their defaults. The bind password
is read from --ldap-bind-password-file, else env LDAP_BIND_PASSWORD; the SCIM token from
--scim-token-file, else env SCIM_TOKEN. Files named by --ldap-ca-file, --scim-ca-file and the
client certificate are read by the worker, on its machine.`,
		Example: `  starter orgs create acme --ldap-url ldaps://dc.acme.com --ldap-bind-dn cn=usersync,ou=svc,dc=acme,dc=com \
      --ldap-bind-password-file /run/secrets/acme-ldap --ldap-base-dn dc=acme,dc=com --ldap-profile ad \
      --scim-url https://api.example.com/identity/v2 --scim-token-file /run/secrets/acme-scim --scim-rate 10`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := orgs.ValidateName(name); err != nil {
				return err
			}
			ctx := cmd.Context()
			r, err := a.repo(ctx)
			if err != nil {
				return err
			}
			if _, _, err := r.Inspect(ctx, name); err == nil {
				return fmt.Errorf("organization %s has settings already: change them with `starter orgs set %s`", name, name)
			} else if !errors.Is(err, orgs.ErrNotFound) {
				return err
			}
			o := orgs.Org{Name: name}
			if err := f.apply(&o, true, true); err != nil {
				return err
			}
			v, err := r.Put(ctx, a.actor, o)
			if err != nil {
				return f.explain(err)
			}
			return a.printOrgChange(cmd, r, name, fmt.Sprintf("Created organization %s (version %d).", name, v))
		},
	}
	f.bind(cmd, false)
	return cmd
}

func orgsSetCmd(a *app) *cobra.Command {
	var f orgFlags
	cmd := &cobra.Command{
		Use:   "set <org> [flags]",
		Short: "Change an organization's settings: only the flags given change (a new version)",
		Long: `set changes the settings given as flags and keeps the others, as one new version with one
history row; nothing changes when a value is refused. A secret changes only from its file
(--ldap-bind-password-file, --scim-token-file), or from env LDAP_BIND_PASSWORD and SCIM_TOKEN
with --secrets-from-env. Setting --ldap-bind-dn "" drops the bind password too.`,
		Example: `  starter orgs set acme --scim-rate 5 --suspend-threshold-max 200
  starter orgs set acme --scim-token-file /run/secrets/acme-scim-new
  starter orgs set acme --ldap-url ldap://dc.acme.com --ldap-start-tls`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !f.anyGiven() {
				return fmt.Errorf("orgs set %s: nothing to change (give a setting flag, see --help)", name)
			}
			ctx := cmd.Context()
			r, err := a.repo(ctx)
			if err != nil {
				return err
			}
			o, err := r.Get(ctx, name)
			if errors.Is(err, orgs.ErrNotFound) {
				return fmt.Errorf("organization %s has no settings: create them with `starter orgs create %s`", name, name)
			}
			if err != nil {
				return err
			}
			before := o.Version
			if err := f.apply(&o, false, f.secretsFromEnv); err != nil {
				return err
			}
			v, err := r.Put(ctx, a.actor, o)
			if err != nil {
				return f.explain(err)
			}
			done := fmt.Sprintf("Changed organization %s (version %d).", name, v)
			if v == before {
				done = fmt.Sprintf("Organization %s: nothing changed (version %d).", name, v)
			}
			return a.printOrgChange(cmd, r, name, done)
		},
	}
	f.bind(cmd, true)
	return cmd
}

// printOrgChange prints done and the organization as show does.
func (a *app) printOrgChange(cmd *cobra.Command, r orgs.Repo, name, done string) error {
	o, set, err := r.Inspect(cmd.Context(), name)
	if err != nil {
		return err
	}
	if !a.json {
		fmt.Fprintln(cmd.OutOrStdout(), done)
	}
	return a.emit(cmd, orgView(o, set), func(w io.Writer) { printOrg(w, o, set) })
}

// orgJSON is an organization as --output json shows it: secrets as "set" or "not set".
type orgJSON struct {
	orgs.Org
	Secrets map[string]string `json:"secrets"`
}

func orgView(o orgs.Org, set orgs.SecretsSet) orgJSON {
	return orgJSON{Org: o, Secrets: map[string]string{
		orgs.FieldBindPassword: setWord(set.BindPassword), orgs.FieldToken: setWord(set.Token)}}
}

func setWord(b bool) string {
	if b {
		return "set"
	}
	return "not set"
}

func printOrg(w io.Writer, o orgs.Org, set orgs.SecretsSet) {
	d, t := o.Settings.Directory, o.Settings.Target
	fmt.Fprintf(w, "Organization %s, version %d\n", o.Name, o.Version)
	tw := table(w)
	for _, r := range [][2]string{
		{"directory.url", d.URL}, {"directory.bindDN", d.BindDN}, {"directory.bindPassword", setWord(set.BindPassword)},
		{"directory.baseDN", d.BaseDN}, {"directory.profile", d.Profile},
		{"directory.userNameAttribute", d.UserNameAttribute}, {"directory.disabledAttribute", d.DisabledAttribute},
		{"directory.disabledValue", d.DisabledValue}, {"directory.pageSize", strconv.Itoa(d.PageSize)},
		{"directory.startTLS", strconv.FormatBool(d.StartTLS)}, {"directory.caFile", d.CAFile},
		{"directory.serverName", d.ServerName}, {"directory.allowPlaintextBind", strconv.FormatBool(d.AllowPlaintextBind)},
		{"directory.inChain", strconv.FormatBool(d.InChain)},
		{"directory.incremental", strconv.FormatBool(d.Incremental())}, {"directory.fullReadHours", strconv.Itoa(d.FullReadHours)},
		{"target.url", t.URL}, {"target.allowHTTP", strconv.FormatBool(t.AllowHTTP)},
		{"target.token", setWord(set.Token)}, {"target.rate", rateText(t.Rate)},
		{"target.caFile", t.CAFile}, {"target.clientCertFile", t.ClientCertFile}, {"target.clientKeyFile", t.ClientKeyFile},
		{"suspendThresholdPercent", strconv.Itoa(o.Settings.SuspendThresholdPercent)},
		{"suspendThresholdMax", strconv.Itoa(o.Settings.SuspendThresholdMax)},
	} {
		row(tw, "  "+r[0], r[1])
	}
	tw.Flush()
}

func rateText(r float64) string {
	if r == 0 {
		return "no limit"
	}
	return strconv.FormatFloat(r, 'f', -1, 64) + "/s"
}

func orgsListCmd(a *app) *cobra.Command {
	return listing(&cobra.Command{
		Use:     "list",
		Short:   "List the organizations that have settings",
		Example: `  starter orgs list --output json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			r, err := a.repo(ctx)
			if err != nil {
				return err
			}
			all, err := r.List(ctx)
			if err != nil {
				return err
			}
			if all == nil {
				all = []orgs.Org{}
			}
			return emitRows(a, cmd, rowSet[orgs.Org]{rows: all, cols: orgColumns,
				none: "No organization has settings (starter orgs create)."})
		},
	})
}

var orgColumns = []column[orgs.Org]{
	{"ORG", func(o orgs.Org) string { return o.Name }},
	{"VERSION", func(o orgs.Org) string { return fmt.Sprint(o.Version) }},
	{"DIRECTORY", func(o orgs.Org) string { return o.Settings.Directory.URL }},
	{"TARGET", func(o orgs.Org) string { return o.Settings.Target.URL }},
	{"RATE", func(o orgs.Org) string { return rateText(o.Settings.Target.Rate) }},
}

func orgsShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "show <org>",
		Short:   "Show an organization's settings (secrets as set or not set)",
		Example: `  starter orgs show acme`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := a.repo(ctx)
			if err != nil {
				return err
			}
			o, set, err := r.Inspect(ctx, args[0])
			if err != nil {
				return err
			}
			return a.emit(cmd, orgView(o, set), func(w io.Writer) { printOrg(w, o, set) })
		},
	}
}

func orgsDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete <org>",
		Short: "Turn an organization's sync off, then delete its settings and secrets",
		Long: `delete first turns the organization's user sync off, as starter disable does (a running sync
stops cleanly), then deletes its settings and secrets, with a history row. When Temporal cannot
be reached, nothing is deleted. The organization's rules, licenses and state are kept; its syncs
fail with "no settings" until it has settings again (starter orgs create).`,
		Example: `  starter orgs delete acme`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ctx := cmd.Context()
			r, err := a.repo(ctx)
			if err != nil {
				return err
			}
			if _, _, err := r.Inspect(ctx, name); err != nil {
				return err
			}
			wasRunning, err := a.disableOrg(ctx, name)
			if err != nil {
				return fmt.Errorf("delete %s: could not turn its sync off first, nothing deleted: %w", name, err)
			}
			if err := r.Delete(ctx, a.actor, name); err != nil {
				return err
			}
			return a.emit(cmd, map[string]any{"org": name, "deleted": true, "syncDisabled": wasRunning}, func(w io.Writer) {
				if wasRunning {
					fmt.Fprintf(w, "User sync of %s is off; a running sync stops cleanly.\n", name)
				}
				fmt.Fprintf(w, "Deleted the settings and secrets of organization %s.\n", name)
			})
		},
	}
}

// disableOrg sends disable to the organization's workflow, as starter disable does, without
// starting one: false when it has none.
func (a *app) disableOrg(ctx context.Context, org string) (bool, error) {
	tc, err := a.temporal()
	if err != nil {
		return false, err
	}
	id := workflows.OrgWorkflowID(org)
	err = tc.SignalWorkflow(ctx, id, "", workflows.SignalDisable, workflows.SwitchSignal{Actor: a.actor})
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", workflows.SignalDisable, id, err)
	}
	return true, nil
}

// orgCheck is one line of orgs test.
type orgCheck struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func orgsTestCmd(a *app) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "test <org>",
		Short: "Check an organization's settings: bind and count users, read the target's ServiceProviderConfig",
		Long: `test connects as the worker would with the organization's settings. Directory: binds, reads
every user and group once and counts them, and the members of the groups its rules name (a
whole read: on a large directory it takes as long as a sync's). Target: reads
/ServiceProviderConfig, /Schemas and /ResourceTypes with the token. It prints what works and
what does not (never a secret) and fails when anything does not. CA and certificate files are
read here, so run it where the worker runs.`,
		Example: `  starter orgs test acme
  starter orgs test acme --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ctx := cmd.Context()
			r, err := a.repo(ctx)
			if err != nil {
				return err
			}
			o, err := r.Get(ctx, name)
			if err != nil {
				return err
			}
			db, _ := a.store(ctx) // opened by repo
			rs, err := db.Rules(ctx, name)
			if err != nil {
				return err
			}
			var groups []string
			for _, rule := range rs {
				groups = append(groups, rule.GroupDN)
			}
			res := map[string]orgCheck{
				"directory": testDirectory(ctx, o, groups, timeout),
				"target":    testTarget(ctx, o, timeout),
			}
			err = a.emit(cmd, map[string]any{"org": name, "version": o.Version, "directory": res["directory"], "target": res["target"]},
				func(w io.Writer) {
					fmt.Fprintf(w, "Organization %s, version %d\n", name, o.Version)
					for _, k := range []string{"directory", "target"} {
						status := "ok"
						if !res[k].OK {
							status = "FAILED"
						}
						fmt.Fprintf(w, "  %-9s  %-6s  %s\n", k, status, printable(res[k].Detail))
					}
				})
			if err != nil {
				return err
			}
			var failed []string
			for _, k := range []string{"directory", "target"} {
				if !res[k].OK {
					failed = append(failed, k)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("orgs test %s: %s failed", name, strings.Join(failed, " and "))
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up on each check after this long")
	return cmd
}

func testDirectory(ctx context.Context, o orgs.Org, groups []string, timeout time.Duration) orgCheck {
	d := o.Settings.Directory
	fail := func(err error) orgCheck {
		msg := hideSecrets(err.Error(), o.Secrets)
		if !strings.Contains(msg, d.URL) {
			msg = d.URL + ": " + msg
		}
		return orgCheck{Detail: msg}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg := d.Config(o.Secrets.BindPassword)
	cfg.Timeout = 15 * time.Second
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	dir, err := directory.Dial(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer dir.Close()
	st, err := dir.Snapshot(ctx, groups, nil, 1000, func([]directory.User) error { return nil })
	if err != nil {
		return fail(err)
	}
	bound := "anonymous bind"
	if d.BindDN != "" {
		bound = "bound as " + d.BindDN
	}
	detail := fmt.Sprintf("%s: %s; %d users, %d groups under %s", d.URL, bound, st.Users, st.Groups, d.BaseDN)
	if len(groups) > 0 {
		detail += fmt.Sprintf("; ruled groups: %d users enabled, %d disabled", st.InScope, st.Disabled)
		if len(st.MissingGroups) > 0 {
			slices.Sort(st.MissingGroups)
			detail += fmt.Sprintf("; %d ruled groups not found: %s", len(st.MissingGroups), strings.Join(st.MissingGroups, "; "))
		}
	}
	return orgCheck{OK: true, Detail: detail}
}

func testTarget(ctx context.Context, o orgs.Org, timeout time.Duration) orgCheck {
	t := o.Settings.Target
	fail := func(err error) orgCheck {
		msg := hideSecrets(err.Error(), o.Secrets)
		if scim.IsAuth(err) {
			msg += " (the target refused the token: check target.token)"
		}
		return orgCheck{Detail: t.URL + ": " + msg}
	}
	hc, err := t.HTTPClient()
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := scim.New(scim.Config{BaseURL: t.URL, Token: o.Secrets.Token, HTTPClient: hc, MaxAttempts: 1})
	disc, err := c.Discover(ctx)
	if err != nil {
		return fail(err)
	}
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "NO"
	}
	detail := fmt.Sprintf("%s: ServiceProviderConfig read: PATCH %s, filter %s; %d schemas", t.URL, yes(disc.Patch), yes(disc.Filter), len(disc.Schemas))
	if o.Secrets.Token == "" {
		detail += "; no token set"
	}
	if !disc.Patch || !disc.Filter {
		return orgCheck{Detail: detail + " (usersync needs PATCH and filtering)"}
	}
	return orgCheck{OK: true, Detail: detail}
}

// hideSecrets replaces the organization's secrets in text: a last guard, as the directory
// and SCIM clients already keep them out of their errors.
func hideSecrets(text string, s orgs.Secrets) string {
	for _, v := range []string{s.BindPassword, s.Token} {
		if v != "" {
			text = strings.ReplaceAll(text, v, "xxxxx")
		}
	}
	return text
}

func orgsNewKeyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "new-key",
		Short: "Add a fresh key to the secrets key file (created 0600 if missing); it seals from now on",
		Long: `new-key appends a random 256-bit key to the secrets key file (--secrets-key-file, env
USERSYNC_SECRETS_KEY_FILE), creating the file with mode 0600 when missing. The last key of the
file seals new secrets; older keys still open what they sealed. Copy the file to every worker
and starter host, then run starter orgs rotate-key to re-encrypt the stored secrets under the
new key; after that the older keys can be removed from the file.`,
		Example: `  starter --secrets-key-file /etc/usersync/secrets.keys orgs new-key
  starter orgs rotate-key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.SecretsKeyFile == "" {
				return errors.New("--secrets-key-file: not set (set it or env USERSYNC_SECRETS_KEY_FILE)")
			}
			id, err := orgs.AddKey(a.SecretsKeyFile)
			if err != nil {
				return err
			}
			return a.emit(cmd, map[string]string{"keyId": id, "file": a.SecretsKeyFile}, func(w io.Writer) {
				fmt.Fprintf(w, "Added key %s to %s; it seals secrets from now on.\n", id, a.SecretsKeyFile)
				fmt.Fprintln(w, "Copy the file to every worker host, then run `starter orgs rotate-key` to re-encrypt the stored secrets.")
			})
		},
	}
}

func orgsRotateKeyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-key",
		Short: "Re-encrypt every organization's secrets under the key file's current (last) key",
		Long: `rotate-key re-encrypts, under the current key (the last line of the secrets key file), every
stored secret sealed under an older key, with a history row per organization. Settings and
versions do not change. Afterwards no secret needs the older keys: they can be removed.`,
		Example: `  starter orgs new-key && starter orgs rotate-key`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.SecretsKeyFile == "" {
				return errors.New("--secrets-key-file: not set (set it or env USERSYNC_SECRETS_KEY_FILE)")
			}
			ctx := cmd.Context()
			r, err := a.repo(ctx)
			if err != nil {
				return err
			}
			done, err := r.RotateKey(ctx, a.actor)
			if done == nil {
				done = []string{}
			}
			if err != nil {
				return fmt.Errorf("rotate-key: re-encrypted %d organizations (%s), then: %w", len(done), strings.Join(done, ", "), err)
			}
			key := r.Keys.Current()
			return a.emit(cmd, map[string]any{"keyId": key, "reencrypted": done}, func(w io.Writer) {
				if len(done) == 0 {
					fmt.Fprintf(w, "Every stored secret is already under key %s.\n", key)
					return
				}
				fmt.Fprintf(w, "Re-encrypted the secrets of %d organizations under key %s: %s.\n", len(done), key, strings.Join(done, ", "))
				fmt.Fprintf(w, "No stored secret needs the older keys of %s any more.\n", a.SecretsKeyFile)
			})
		},
	}
}
