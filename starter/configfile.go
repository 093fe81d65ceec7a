package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/store"
)

// Configuration as code: an organization's whole configuration as one YAML file, exported and
// applied at once. Every section goes through the store's own writes (the ones the other
// commands use, with their checks and history rows), in one transaction (store.InTx).

// configFile is the file's shape, in the order export writes it.
type configFile struct {
	Organization string            `yaml:"organization"`
	Catalog      fileCatalog       `yaml:"catalog"`
	Licenses     map[string]int    `yaml:"licenses"`
	Domains      map[string]bool   `yaml:"domains"`  // domain: validated
	Mappings     map[string]string `yaml:"mappings"` // target: directory attribute
	Rules        []fileRule        `yaml:"rules"`
	Target       fileTarget        `yaml:"target"`
	Settings     map[string]any    `yaml:"settings,omitempty"` // orgs.Settings by its JSON names, plus secrets
}

type fileCatalog struct {
	Products  []string `yaml:"products"`
	Roles     []string `yaml:"roles"`
	Templates []string `yaml:"templates"`
}

type fileRule struct {
	Priority         int               `yaml:"priority"`
	Group            string            `yaml:"group"`
	Role             string            `yaml:"role,omitempty"`
	Products         []string          `yaml:"products,omitempty"`
	UserGroup        string            `yaml:"userGroup,omitempty"`
	DeviceGroups     []string          `yaml:"deviceGroups,omitempty"`
	SettingsTemplate string            `yaml:"settingsTemplate,omitempty"`
	CustomFields     map[string]string `yaml:"customFields,omitempty"`
	Note             string            `yaml:"note,omitempty"`
}

type fileTarget struct {
	CustomSchema      string `yaml:"customSchema"`
	TemplateAttribute string `yaml:"templateAttribute"`
}

// Secret references: a secret is never written to the file.
const (
	secretKeep = "keep" // the stored secret stays
	secretNone = "none" // not set
)

func configCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Export an organization's whole configuration as YAML, and apply such a file at once",
		Long: `export writes the catalog, licenses, domains, mappings, rules (in priority order), the target's
extension settings and the organization's settings (starter orgs) as YAML. Secrets are never
written: they appear as "keep" (the stored one stays) or "none"; to change one, write
{file: /path} (read by starter, like --scim-token-file).

apply reads such a file, shows what it adds (+), changes (~) and removes (-) per section, and
applies it in one transaction, with one history row per change: all of it or, when a value is
refused, nothing. The order of the sections does not matter (a rule may name a product the
same file adds to the catalog). A section left out of the file is left as it is; an empty one
(rules: []) removes everything in it. Errors name the file, line and field.`,
		Example: `  starter --org acme config export > acme.yaml
  starter --org acme config apply -f acme.yaml --dry-run
  starter --org acme --actor alice config apply -f acme.yaml`,
	}
	export := &cobra.Command{
		Use: "export", Short: "Write the organization's configuration as YAML (no secret values)", Args: cobra.NoArgs,
		Example: `  starter --org acme config export > acme.yaml`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			cf, err := a.readConfig(ctx, db)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			fmt.Fprintf(&buf, "# usersync configuration of organization %s (starter config export).\n", a.Org)
			fmt.Fprintf(&buf, "# Apply: starter --org %s config apply -f FILE [--dry-run]. Rules are in priority order.\n", a.Org)
			fmt.Fprintf(&buf, "# Secrets are never exported: %q keeps the stored one, {file: PATH} sets a new one.\n", secretKeep)
			enc := yaml.NewEncoder(&buf)
			enc.SetIndent(2)
			if err := enc.Encode(cf); err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(buf.Bytes())
			return err
		},
	}
	var file string
	var dryRun, noDirectoryCheck bool
	apply := &cobra.Command{
		Use: "apply -f FILE [--dry-run]", Short: "Show the changes a configuration file makes and apply them in one transaction", Args: cobra.NoArgs,
		Example: `  starter --org acme config apply -f acme.yaml --dry-run
  starter --org acme config apply -f acme.yaml --no-directory-check`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("-f: required, the configuration file (starter config export writes one)")
			}
			return a.applyConfig(cmd, file, dryRun, noDirectoryCheck)
		},
	}
	apply.Flags().StringVarP(&file, "file", "f", "", "configuration file (YAML)")
	apply.Flags().BoolVar(&dryRun, "dry-run", false, "show the changes and check them in a transaction that is rolled back")
	apply.Flags().BoolVar(&noDirectoryCheck, "no-directory-check", false, "do not check that new rules' groups exist in the directory")
	cmd.AddCommand(export, apply)
	return cmd
}

// readConfig reads the organization's configuration as the file holds it.
func (a *app) readConfig(ctx context.Context, db *store.Store) (configFile, error) {
	cf := configFile{Organization: a.Org, Licenses: map[string]int{}, Domains: map[string]bool{}, Mappings: map[string]string{}, Rules: []fileRule{}}
	cat, err := db.Catalog(ctx, a.Org)
	if err != nil {
		return cf, err
	}
	cf.Catalog = fileCatalog{Products: nonNilList(cat.Products), Roles: nonNilList(cat.Roles), Templates: nonNilList(cat.Templates)}
	ls, err := db.Licenses(ctx, a.Org)
	if err != nil {
		return cf, err
	}
	for _, l := range ls {
		cf.Licenses[l.Product] = l.Seats
	}
	ds, err := db.Domains(ctx, a.Org)
	if err != nil {
		return cf, err
	}
	for _, d := range ds {
		cf.Domains[d.Name] = d.Validated
	}
	ms, err := db.Mappings(ctx, a.Org)
	if err != nil {
		return cf, err
	}
	for _, m := range ms {
		cf.Mappings[m.Target] = m.Source
	}
	rs, err := db.Rules(ctx, a.Org)
	if err != nil {
		return cf, err
	}
	for _, r := range rs {
		cf.Rules = append(cf.Rules, toFileRule(r))
	}
	e, err := db.TargetExtension(ctx, a.Org)
	if err != nil {
		return cf, err
	}
	cf.Target = fileTarget{CustomSchema: e.URN, TemplateAttribute: e.TemplateAttribute}
	repo := orgs.Repo{Store: db}
	o, set, err := repo.Inspect(ctx, a.Org)
	switch {
	case errors.Is(err, orgs.ErrNotFound):
	case err != nil:
		return cf, err
	default:
		m, err := settingsMap(o.Settings)
		if err != nil {
			return cf, err
		}
		m["secrets"] = map[string]any{"bindPassword": secretWord(set.BindPassword), "token": secretWord(set.Token)}
		cf.Settings = m
	}
	return cf, nil
}

func secretWord(set bool) string {
	if set {
		return secretKeep
	}
	return secretNone
}

func nonNilList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func toFileRule(r rules.Rule) fileRule {
	return fileRule{Priority: r.Priority, Group: r.GroupDN, Role: r.Role, Products: r.Products, UserGroup: r.UserGroup,
		DeviceGroups: r.DeviceGroups, SettingsTemplate: r.SettingsTemplate, CustomFields: r.CustomFields, Note: r.Note}
}

// settingsMap is s by its JSON names (the names orgs' errors use).
func settingsMap(s orgs.Settings) (map[string]any, error) {
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(raw, &m)
}

// ---- reading a file ----

// posErr is an error at a place of the file.
type posErr struct {
	file string
	line int
	path string
	msg  string
}

func (e *posErr) Error() string {
	if e.path == "" {
		return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.file, e.line, e.path, e.msg)
}

// desired is what a file asks for; nil sections are not in the file.
type desired struct {
	org      string
	catalog  *rules.Catalog
	licenses map[string]int
	domains  map[string]bool
	mappings map[string]string
	rules    []rules.Rule
	target   *scim.Extension
	settings *orgs.Settings
	secrets  map[string]string // field -> secretKeep, secretNone or a value read from a file
	// where is the node of each path (rules[2].products[1], settings.directory.url, ...)
	// for errors found later.
	where map[string]*yaml.Node
	file  string
}

func (d *desired) errAt(path, format string, args ...any) error {
	line := 0
	if n := d.where[path]; n != nil {
		line = n.Line
	}
	return &posErr{file: d.file, line: line, path: path, msg: fmt.Sprintf(format, args...)}
}

// parser walks the YAML nodes, recording where each path is.
type parser struct {
	d *desired
}

func (p *parser) fail(n *yaml.Node, path, format string, args ...any) error {
	return &posErr{file: p.d.file, line: n.Line, path: path, msg: fmt.Sprintf(format, args...)}
}

// fields returns a mapping's keys and values in order, refusing keys not in known (nil: any)
// and keys given twice.
func (p *parser) fields(n *yaml.Node, path string, known ...string) ([]string, map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, nil, p.fail(n, path, "want a mapping (key: value lines), got %s", kindName(n))
	}
	var keys []string
	vals := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			return nil, nil, p.fail(k, path, "a key must be a plain value")
		}
		if known != nil && !slices.Contains(known, k.Value) {
			return nil, nil, p.fail(k, sub, "unknown field (known: %s)", strings.Join(known, ", "))
		}
		if _, dup := vals[k.Value]; dup {
			return nil, nil, p.fail(k, sub, "given twice")
		}
		keys = append(keys, k.Value)
		vals[k.Value] = v
		p.d.where[sub] = v
	}
	return keys, vals, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	return strconv.Quote(n.Value)
}

func (p *parser) str(n *yaml.Node, path string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.fail(n, path, "want a text value, got %s", kindName(n))
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

func (p *parser) integer(n *yaml.Node, path string) (int, error) {
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		return 0, p.fail(n, path, "%s is not a whole number", kindName(n))
	}
	return v, nil
}

func (p *parser) boolean(n *yaml.Node, path string) (bool, error) {
	var v bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&v) != nil {
		return false, p.fail(n, path, "%s is not true or false", kindName(n))
	}
	return v, nil
}

func (p *parser) list(n *yaml.Node, path string) ([]string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.fail(n, path, "want a list ([a, b] or - lines), got %s", kindName(n))
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		sub := fmt.Sprintf("%s[%d]", path, i)
		p.d.where[sub] = item
		v, err := p.str(item, sub)
		if err != nil {
			return nil, err
		}
		out = append(out, strings.TrimSpace(v))
	}
	return out, nil
}

// parseConfig reads a configuration file; checks of one value alone happen here, with the
// value's line.
func parseConfig(name string, data []byte) (*desired, error) {
	d := &desired{file: name, where: map[string]*yaml.Node{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty file", name)
	}
	p := &parser{d: d}
	keys, top, err := p.fields(doc.Content[0], "", "organization", "catalog", "licenses", "domains", "mappings", "rules", "target", "settings")
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		n := top[k]
		switch k {
		case "organization":
			if d.org, err = p.str(n, k); err == nil {
				err = orgs.ValidateName(d.org)
				if err != nil {
					err = p.fail(n, k, "%v", err)
				}
			}
		case "catalog":
			err = p.catalog(n)
		case "licenses":
			err = p.licenses(n)
		case "domains":
			err = p.domains(n)
		case "mappings":
			err = p.mappings(n)
		case "rules":
			err = p.rules(n)
		case "target":
			err = p.target(n)
		case "settings":
			err = p.settings(n)
		}
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (p *parser) catalog(n *yaml.Node) error {
	keys, vals, err := p.fields(n, "catalog", "products", "roles", "templates")
	if err != nil {
		return err
	}
	c := &rules.Catalog{} // a list left out stays as it is (nil here)
	for _, k := range keys {
		path := "catalog." + k
		vs, err := p.list(vals[k], path)
		if err != nil {
			return err
		}
		// The check of `catalog set`, naming the file's field instead of the flag.
		vs, err = catalogNames(k, vs)
		if err != nil {
			return p.fail(vals[k], path, "%s", strings.TrimPrefix(err.Error(), "--"+k+": "))
		}
		switch k {
		case "products":
			c.Products = vs
		case "roles":
			c.Roles = vs
		case "templates":
			c.Templates = vs
		}
	}
	p.d.catalog = c
	return nil
}

func (p *parser) licenses(n *yaml.Node) error {
	keys, vals, err := p.fields(n, "licenses")
	if err != nil {
		return err
	}
	p.d.licenses = map[string]int{}
	for _, k := range keys {
		path := "licenses." + k
		seats, err := p.integer(vals[k], path)
		if err != nil {
			return err
		}
		if seats < 0 {
			return p.fail(vals[k], path, "%d seats: must be 0 or more", seats)
		}
		p.d.licenses[strings.TrimSpace(k)] = seats
	}
	return nil
}

func (p *parser) domains(n *yaml.Node) error {
	keys, vals, err := p.fields(n, "domains")
	if err != nil {
		return err
	}
	p.d.domains = map[string]bool{}
	for _, k := range keys {
		path := "domains." + k
		validated, err := p.boolean(vals[k], path)
		if err != nil {
			return err
		}
		dom := strings.ToLower(strings.TrimSpace(k))
		if err := checkDomain(dom); err != nil {
			return p.fail(vals[k], path, "%v", err)
		}
		p.d.domains[dom] = validated
	}
	return nil
}

func (p *parser) mappings(n *yaml.Node) error {
	keys, vals, err := p.fields(n, "mappings")
	if err != nil {
		return err
	}
	p.d.mappings = map[string]string{}
	for _, k := range keys {
		path := "mappings." + k
		target := strings.TrimSpace(k)
		if err := checkMappingTarget(target); err != nil {
			return p.fail(vals[k], path, "%v", err)
		}
		source, err := p.str(vals[k], path)
		if err != nil {
			return err
		}
		if source = strings.TrimSpace(source); !ldapAttribute.MatchString(source) {
			return p.fail(vals[k], path, "source attribute %q: not an LDAP attribute name", source)
		}
		p.d.mappings[target] = source
	}
	return nil
}

var ruleKeys = []string{"priority", "group", "role", "products", "userGroup", "deviceGroups", "settingsTemplate", "customFields", "note"}

func (p *parser) rules(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		p.d.rules = []rules.Rule{}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return p.fail(n, "rules", "want a list of rules, got %s", kindName(n))
	}
	out := make([]rules.Rule, len(n.Content))
	priorities := map[int]int{} // priority -> index
	for i, item := range n.Content {
		path := fmt.Sprintf("rules[%d]", i)
		p.d.where[path] = item
		keys, vals, err := p.fields(item, path, ruleKeys...)
		if err != nil {
			return err
		}
		r := &out[i]
		for _, k := range keys {
			v, sub := vals[k], path+"."+k
			switch k {
			case "priority":
				if r.Priority, err = p.integer(v, sub); err == nil {
					if r.Priority < 1 || r.Priority > len(n.Content) {
						err = p.fail(v, sub, "%d is not a position 1..%d", r.Priority, len(n.Content))
					} else if j, dup := priorities[r.Priority]; dup {
						err = p.fail(v, sub, "%d is also rules[%d]'s priority", r.Priority, j)
					}
					priorities[r.Priority] = i
				}
			case "group":
				r.GroupDN, err = p.str(v, sub)
				r.GroupDN = strings.TrimSpace(r.GroupDN)
			case "role":
				r.Role, err = p.str(v, sub)
			case "products":
				r.Products, err = p.list(v, sub)
			case "userGroup":
				r.UserGroup, err = p.str(v, sub)
			case "deviceGroups":
				r.DeviceGroups, err = p.list(v, sub)
			case "settingsTemplate":
				r.SettingsTemplate, err = p.str(v, sub)
			case "note":
				r.Note, err = p.str(v, sub)
			case "customFields":
				var names []string
				var fv map[string]*yaml.Node
				if names, fv, err = p.fields(v, sub); err == nil {
					r.CustomFields = map[string]string{}
					for _, name := range names {
						if r.CustomFields[name], err = p.str(fv[name], sub+"."+name); err != nil {
							break
						}
					}
				}
			}
			if err != nil {
				return err
			}
		}
		if _, ok := vals["group"]; !ok || r.GroupDN == "" {
			return p.fail(item, path+".group", "required, the DN of a directory group")
		}
		r.Role, r.UserGroup, r.SettingsTemplate = strings.TrimSpace(r.Role), strings.TrimSpace(r.UserGroup), strings.TrimSpace(r.SettingsTemplate)
		if len(r.CustomFields) == 0 {
			r.CustomFields = nil
		}
		if len(r.Products) == 0 {
			r.Products = nil
		}
		if len(r.DeviceGroups) == 0 {
			r.DeviceGroups = nil
		}
	}
	// Priorities, when given, order the rules (each once, 1..n); else the file's order does.
	if len(priorities) > 0 && len(priorities) < len(out) {
		for i := range out {
			if out[i].Priority == 0 {
				return p.fail(n.Content[i], fmt.Sprintf("rules[%d].priority", i), "missing: give every rule a priority, or none")
			}
		}
	}
	for i := range out {
		if out[i].Priority == 0 {
			out[i].Priority = i + 1
		}
	}
	p.d.rules = out
	return nil
}

func (p *parser) target(n *yaml.Node) error {
	keys, vals, err := p.fields(n, "target", "customSchema", "templateAttribute")
	if err != nil {
		return err
	}
	e := &scim.Extension{}
	for _, k := range keys {
		v, err := p.str(vals[k], "target."+k)
		if err != nil {
			return err
		}
		switch k {
		case "customSchema":
			e.URN = resetDefault(v)
		case "templateAttribute":
			e.TemplateAttribute = resetDefault(v)
		}
	}
	// Stored empty when default, as `target set` stores them.
	if e.URN == scim.DefaultCustomSchema {
		e.URN = ""
	}
	if e.TemplateAttribute == scim.DefaultTemplateAttribute {
		e.TemplateAttribute = ""
	}
	if err := e.Validate(); err != nil {
		return p.fail(n, "target", "%v", err)
	}
	p.d.target = e
	return nil
}

// settings reads orgs.Settings by its JSON names: a field left out takes the default of
// `orgs create`.
func (p *parser) settings(n *yaml.Node) error {
	s := orgs.Settings{
		Directory:               orgs.Directory{Profile: directory.ProfileOpenLDAP, PageSize: directory.DefaultPageSize},
		Target:                  orgs.Target{Rate: orgs.DefaultRate},
		SuspendThresholdPercent: orgs.DefaultSuspendThresholdPercent,
		SuspendThresholdMax:     orgs.DefaultSuspendThresholdMax,
	}
	known, err := settingsMap(orgs.Settings{})
	if err != nil {
		return err
	}
	keys, vals, err := p.fields(n, "settings", append(slices.Sorted(maps.Keys(known)), "secrets")...)
	if err != nil {
		return err
	}
	given := map[string]any{}
	for _, k := range keys {
		v, path := vals[k], "settings."+k
		if k == "secrets" {
			if err := p.secrets(v); err != nil {
				return err
			}
			continue
		}
		sub, isGroup := known[k].(map[string]any)
		if !isGroup {
			x, err := p.settingValue(v, path, known[k])
			if err != nil {
				return err
			}
			given[k] = x
			continue
		}
		fk, fv, err := p.fields(v, path, slices.Sorted(maps.Keys(sub))...)
		if err != nil {
			return err
		}
		group := map[string]any{}
		for _, f := range fk {
			x, err := p.settingValue(fv[f], path+"."+f, sub[f])
			if err != nil {
				return err
			}
			group[f] = x
		}
		given[k] = group
	}
	// Overlay what is given on the defaults, through the settings' own JSON form.
	raw, err := json.Marshal(given)
	if err == nil {
		err = json.Unmarshal(raw, &s)
	}
	if err != nil {
		return p.fail(n, "settings", "%v", err)
	}
	p.d.settings = &s
	return nil
}

// settingValue decodes a setting's value as the type of its zero value.
func (p *parser) settingValue(n *yaml.Node, path string, zero any) (any, error) {
	switch zero.(type) {
	case bool:
		return p.boolean(n, path)
	case float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
			return nil, p.fail(n, path, "%s is not a number", kindName(n))
		}
		return f, nil
	default:
		return p.str(n, path)
	}
}

func (p *parser) secrets(n *yaml.Node) error {
	keys, vals, err := p.fields(n, "settings.secrets", "bindPassword", "token")
	if err != nil {
		return err
	}
	p.d.secrets = map[string]string{}
	for _, k := range keys {
		v, path := vals[k], "settings.secrets."+k
		field := map[string]string{"bindPassword": orgs.FieldBindPassword, "token": orgs.FieldToken}[k]
		if v.Kind == yaml.ScalarNode {
			word, _ := p.str(v, path)
			if word != secretKeep && word != secretNone {
				// Never echo it: it may be the secret itself, written where a reference belongs.
				return p.fail(v, path, "want %q, %q or {file: PATH} (a secret's value is never written in the file)", secretKeep, secretNone)
			}
			p.d.secrets[field] = word
			continue
		}
		_, fv, err := p.fields(v, path, "file")
		if err != nil {
			return err
		}
		file, err := p.str(fv["file"], path+".file")
		if err != nil {
			return err
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(p.d.file), file) // relative to the configuration file
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return p.fail(v, path+".file", "%v", err)
		}
		value := strings.TrimSpace(string(b))
		if value == "" {
			return p.fail(v, path+".file", "%s is empty", file)
		}
		p.d.secrets[field] = value
	}
	return nil
}

// ---- applying ----

// change is one line of the diff and the write that makes it.
type change struct {
	section string
	line    string
	apply   func(ctx context.Context, tx *store.Store) error
}

func (a *app) applyConfig(cmd *cobra.Command, file string, dryRun, noDirectoryCheck bool) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("-f: %w", err)
	}
	d, err := parseConfig(filepath.Base(file), data)
	if err != nil {
		return err
	}
	d.file = file
	if d.org != "" && d.org != a.Org {
		return d.errAt("organization", "the file is for %q, and --org (env USERSYNC_ORG) is %q", d.org, a.Org)
	}
	ctx := cmd.Context()
	db, err := a.store(ctx)
	if err != nil {
		return err
	}
	repo, err := a.repo(ctx)
	if err != nil {
		return err
	}
	changes, err := a.plan(ctx, db, repo, d, noDirectoryCheck)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	printChanges(out, changes)
	if len(changes) == 0 {
		return nil
	}
	// Every write in one transaction, through the store's own checks; a dry run rolls it
	// back, so it reports what apply would refuse.
	errDryRun := errors.New("dry run")
	err = db.InTx(ctx, func(tx *store.Store) error {
		for _, c := range changes {
			if err := c.apply(ctx, tx); err != nil {
				if pe := (*posErr)(nil); errors.As(err, &pe) {
					return err
				}
				return d.errAt(c.section, "%s: %v", c.line, err)
			}
		}
		if dryRun {
			return errDryRun
		}
		return nil
	})
	if dryRun && errors.Is(err, errDryRun) {
		fmt.Fprintf(out, "Dry run: %d changes checked, nothing applied.\n", len(changes))
		return nil
	}
	if err != nil {
		if dryRun {
			return fmt.Errorf("dry run: %w", err)
		}
		return fmt.Errorf("%w (nothing was applied)", err)
	}
	fmt.Fprintf(out, "Applied %d changes to organization %s.\n", len(changes), a.Org)
	return nil
}

func printChanges(w io.Writer, changes []change) {
	if len(changes) == 0 {
		fmt.Fprintln(w, "No changes: the organization's configuration is the file's.")
		return
	}
	section := ""
	for _, c := range changes {
		if c.section != section {
			section = c.section
			fmt.Fprintf(w, "%s:\n", section)
		}
		fmt.Fprintf(w, "  %s\n", c.line)
	}
}

// plan compares the file with the organization's configuration and checks the references
// between sections against the configuration the file leads to. The changes come in the order
// they can be written (extension, catalog, licenses, domains, mappings, rules, settings).
func (a *app) plan(ctx context.Context, db *store.Store, repo orgs.Repo, d *desired, noDirectoryCheck bool) ([]change, error) {
	org, actor := a.Org, a.actor
	var out []change
	add := func(section, line string, fn func(ctx context.Context, tx *store.Store) error) {
		out = append(out, change{section: section, line: line, apply: fn})
	}

	if d.target != nil {
		cur, err := db.TargetExtension(ctx, org)
		if err != nil {
			return nil, err
		}
		if want := d.target.Resolved(); want != cur {
			e := *d.target
			add("target", fmt.Sprintf("~ customSchema %s, templateAttribute %s -> %s, %s", cur.URN, cur.TemplateAttribute, want.URN, want.TemplateAttribute),
				func(ctx context.Context, tx *store.Store) error { return tx.SetTargetExtension(ctx, org, actor, e) })
		}
	}

	cat, err := db.Catalog(ctx, org)
	if err != nil {
		return nil, err
	}
	if d.catalog != nil {
		for _, l := range []struct {
			file *[]string
			cur  []string
		}{
			{&d.catalog.Products, cat.Products}, {&d.catalog.Roles, cat.Roles}, {&d.catalog.Templates, cat.Templates}} {
			if *l.file == nil {
				*l.file = nonNilList(l.cur)
			}
		}
		var lines []string
		for _, k := range []struct {
			kind     string
			cur, new []string
		}{{"product", cat.Products, d.catalog.Products}, {"role", cat.Roles, d.catalog.Roles}, {"template", cat.Templates, d.catalog.Templates}} {
			for _, n := range k.new {
				if !slices.Contains(k.cur, n) {
					lines = append(lines, fmt.Sprintf("+ %s %s", k.kind, n))
				}
			}
			for _, n := range k.cur {
				if !slices.Contains(k.new, n) {
					lines = append(lines, fmt.Sprintf("- %s %s", k.kind, n))
				}
			}
		}
		if len(lines) > 0 {
			c := *d.catalog
			add("catalog", strings.Join(lines, ", "), func(ctx context.Context, tx *store.Store) error { return tx.SetCatalog(ctx, org, actor, c) })
		}
		cat = *d.catalog
	}

	ls, err := db.Licenses(ctx, org)
	if err != nil {
		return nil, err
	}
	curSeats := map[string]int{}
	for _, l := range ls {
		curSeats[l.Product] = l.Seats
	}
	if d.licenses != nil {
		for _, p := range slices.Sorted(maps.Keys(d.licenses)) {
			seats := d.licenses[p]
			if !slices.Contains(cat.Products, p) {
				return nil, d.errAt("licenses."+p, "%q is not in the catalog (known: %s)", p, orNone(cat.Products))
			}
			old, had := curSeats[p]
			switch {
			case !had:
				add("licenses", fmt.Sprintf("+ %s: %d seats", p, seats), nil)
			case old != seats:
				add("licenses", fmt.Sprintf("~ %s: %d -> %d seats", p, old, seats), nil)
			default:
				continue
			}
			out[len(out)-1].apply = func(ctx context.Context, tx *store.Store) error { return tx.SetLicense(ctx, org, actor, p, seats) }
		}
		for _, p := range slices.Sorted(maps.Keys(curSeats)) {
			if _, keep := d.licenses[p]; !keep {
				add("licenses", fmt.Sprintf("- %s (%d seats)", p, curSeats[p]),
					func(ctx context.Context, tx *store.Store) error { return tx.DeleteLicense(ctx, org, actor, p) })
			}
		}
	}

	if d.domains != nil {
		ds, err := db.Domains(ctx, org)
		if err != nil {
			return nil, err
		}
		cur := map[string]bool{}
		for _, x := range ds {
			cur[x.Name] = x.Validated
		}
		for _, name := range slices.Sorted(maps.Keys(d.domains)) {
			v := d.domains[name]
			old, had := cur[name]
			if had && old == v {
				continue
			}
			sign := "+"
			if had {
				sign = "~"
			}
			add("domains", fmt.Sprintf("%s %s: validated %t", sign, name, v),
				func(ctx context.Context, tx *store.Store) error { return tx.SetDomain(ctx, org, actor, name, v) })
		}
		for _, name := range slices.Sorted(maps.Keys(cur)) {
			if _, keep := d.domains[name]; !keep {
				add("domains", "- "+name, func(ctx context.Context, tx *store.Store) error { return tx.DeleteDomain(ctx, org, actor, name) })
			}
		}
	}

	if d.mappings != nil {
		ms, err := db.Mappings(ctx, org)
		if err != nil {
			return nil, err
		}
		cur := map[string]string{}
		for _, m := range ms {
			cur[m.Target] = m.Source
		}
		for _, target := range slices.Sorted(maps.Keys(d.mappings)) {
			source := d.mappings[target]
			old, had := cur[target]
			if had && old == source {
				continue
			}
			line := fmt.Sprintf("+ %s <- %s", target, source)
			if had {
				line = fmt.Sprintf("~ %s <- %s (was %s)", target, source, old)
			}
			add("mappings", line, func(ctx context.Context, tx *store.Store) error {
				return tx.SetMapping(ctx, org, actor, source, target)
			})
		}
		for _, target := range slices.Sorted(maps.Keys(cur)) {
			if _, keep := d.mappings[target]; !keep {
				add("mappings", fmt.Sprintf("- %s <- %s", target, cur[target]),
					func(ctx context.Context, tx *store.Store) error { return tx.SetMapping(ctx, org, actor, "", target) })
			}
		}
	}

	curRules, err := db.Rules(ctx, org)
	if err != nil {
		return nil, err
	}
	if d.rules == nil {
		// The rules stay: they must still fit the catalog the file leads to (as `catalog set`).
		for _, r := range curRules {
			if err := rules.Validate(r, cat); err != nil {
				return nil, d.errAt("catalog", "rule %d (priority %d) would become invalid: %v", r.ID, r.Priority, err)
			}
		}
	} else {
		rc, err := a.planRules(ctx, d, curRules, cat, noDirectoryCheck)
		if err != nil {
			return nil, err
		}
		out = append(out, rc...)
	}

	if d.settings != nil || d.secrets != nil {
		sc, err := planSettings(ctx, repo, d, org, actor)
		if err != nil {
			return nil, err
		}
		out = append(out, sc...)
	}
	return out, nil
}

// planRules matches the file's rules with the stored ones by group (a matched rule keeps its
// ID and the group's directory ID) and writes them one change at a time: removals, then
// position by position, so that each step is a dense list and one history row.
func (a *app) planRules(ctx context.Context, d *desired, cur []rules.Rule, cat rules.Catalog, noDirectoryCheck bool) ([]change, error) {
	org, actor := a.Org, a.actor
	want := slices.Clone(d.rules)
	slices.SortStableFunc(want, func(x, y rules.Rule) int { return x.Priority - y.Priority })
	index := map[*rules.Rule]int{} // position in the file, for errors
	for i := range d.rules {
		for j := range want {
			if want[j].Priority == d.rules[i].Priority {
				index[&want[j]] = i
			}
		}
	}
	matched := map[int64]bool{}
	for i := range want {
		r := &want[i]
		path := fmt.Sprintf("rules[%d]", index[r])
		if err := rules.Validate(*r, cat); err != nil {
			return nil, ruleError(d, path, *r, err)
		}
		r.GroupDN = rules.NormalizeDN(r.GroupDN)
		for _, c := range cur {
			if !matched[c.ID] && c.GroupDN == r.GroupDN {
				matched[c.ID], r.ID, r.GroupID = true, c.ID, c.GroupID
				break
			}
		}
		if r.ID == 0 && !noDirectoryCheck {
			id, err := a.checkGroupExists(ctx, r.GroupDN)
			if err != nil {
				return nil, d.errAt(path+".group", "%v", err)
			}
			r.GroupID = id
		}
	}
	var out []change
	for _, c := range cur {
		if !matched[c.ID] {
			id := c.ID
			out = append(out, change{section: "rules", line: fmt.Sprintf("- rule %d (priority %d) %s", c.ID, c.Priority, c.GroupDN),
				apply: func(ctx context.Context, tx *store.Store) error {
					_, err := tx.EditRules(ctx, org, actor, fmt.Sprintf("remove rule %d", id), func(rs []rules.Rule) ([]rules.Rule, error) { return rules.Remove(rs, id) })
					return err
				}})
		}
	}
	// After the removals, the kept rules in their old order, renumbered.
	sim := slices.DeleteFunc(slices.Clone(cur), func(r rules.Rule) bool { return !matched[r.ID] })
	for i := range sim {
		sim[i].Priority = i + 1
	}
	byID := map[int64]rules.Rule{}
	for _, c := range cur {
		byID[c.ID] = c
	}
	for i, w := range want {
		pos := i + 1
		w.Priority = pos
		if w.ID == 0 {
			r := w
			out = append(out, change{section: "rules", line: fmt.Sprintf("+ priority %d %s%s", pos, r.GroupDN, ruleSummary(r)),
				apply: func(ctx context.Context, tx *store.Store) error {
					_, err := tx.EditRules(ctx, org, actor, "add rule", func(rs []rules.Rule) ([]rules.Rule, error) { return rules.Insert(rs, r) })
					return err
				}})
			sim = slices.Insert(sim, i, w)
			continue
		}
		at := slices.IndexFunc(sim, func(x rules.Rule) bool { return x.ID == w.ID })
		old := byID[w.ID]
		fieldsChanged := ruleDiff(old, w)
		if at == i && len(fieldsChanged) == 0 {
			continue
		}
		var what []string
		if at != i || old.Priority != pos {
			what = append(what, fmt.Sprintf("priority %d -> %d", old.Priority, pos))
		}
		what = append(what, fieldsChanged...)
		r := w
		out = append(out, change{section: "rules", line: fmt.Sprintf("~ rule %d %s: %s", r.ID, r.GroupDN, strings.Join(what, ", ")),
			apply: func(ctx context.Context, tx *store.Store) error {
				_, err := tx.EditRules(ctx, org, actor, fmt.Sprintf("edit rule %d", r.ID), func(rs []rules.Rule) ([]rules.Rule, error) {
					next := slices.Clone(rs)
					j := slices.IndexFunc(next, func(x rules.Rule) bool { return x.ID == r.ID })
					if j < 0 {
						return nil, fmt.Errorf("rule %d: no such rule", r.ID)
					}
					keep := next[j].Priority
					next[j] = r
					next[j].Priority = keep
					return rules.Move(next, r.ID, r.Priority)
				})
				return err
			}})
		sim = slices.Delete(sim, at, at+1)
		sim = slices.Insert(sim, i, w)
	}
	return out, nil
}

// ruleError places an error of rules.Validate at the value it names, when it quotes one.
func ruleError(d *desired, path string, r rules.Rule, err error) error {
	msg := err.Error()
	first, _, _ := strings.Cut(msg, "\n") // Validate joins every problem: the first one is enough to place
	for _, f := range []struct {
		field, key string
		vals       []string
	}{
		{"rule products", "products", r.Products}, {"rule deviceGroups", "deviceGroups", r.DeviceGroups},
		{"rule role", "role", []string{r.Role}}, {"rule settingsTemplate", "settingsTemplate", []string{r.SettingsTemplate}},
		{"rule groupDn", "group", []string{r.GroupDN}}, {"rule userGroup", "userGroup", []string{r.UserGroup}},
		{"rule note", "note", []string{r.Note}}, {"rule customFields", "customFields", nil},
	} {
		if !strings.HasPrefix(first, f.field) {
			continue
		}
		rest := strings.TrimPrefix(strings.TrimPrefix(first, f.field), ":")
		sub := path + "." + f.key
		if f.key == "products" || f.key == "deviceGroups" {
			for i, v := range f.vals {
				if v != "" && strings.Contains(first, strconv.Quote(v)) {
					return d.errAt(fmt.Sprintf("%s[%d]", sub, i), "%s", strings.TrimSpace(rest))
				}
			}
		}
		return d.errAt(sub, "%s", strings.TrimSpace(rest))
	}
	return d.errAt(path, "%s", first)
}

func ruleSummary(r rules.Rule) string {
	var parts []string
	for _, f := range []struct{ k, v string }{
		{"role", r.Role}, {"products", strings.Join(r.Products, ",")}, {"userGroup", r.UserGroup},
		{"deviceGroups", strings.Join(r.DeviceGroups, ",")}, {"settingsTemplate", r.SettingsTemplate},
		{"customFields", customString(r.CustomFields)},
	} {
		if f.v != "" {
			parts = append(parts, f.k+" "+f.v)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// ruleDiff names the assignment fields of b that differ from a's.
func ruleDiff(a, b rules.Rule) []string {
	var out []string
	str := func(name, x, y string) {
		if x != y {
			out = append(out, fmt.Sprintf("%s %q -> %q", name, x, y))
		}
	}
	lst := func(name string, x, y []string) {
		if !slices.Equal(x, y) {
			out = append(out, fmt.Sprintf("%s [%s] -> [%s]", name, strings.Join(x, ","), strings.Join(y, ",")))
		}
	}
	str("role", a.Role, b.Role)
	lst("products", a.Products, b.Products)
	str("userGroup", a.UserGroup, b.UserGroup)
	lst("deviceGroups", a.DeviceGroups, b.DeviceGroups)
	str("settingsTemplate", a.SettingsTemplate, b.SettingsTemplate)
	str("customFields", customString(a.CustomFields), customString(b.CustomFields))
	if a.Note != b.Note {
		out = append(out, "note")
	}
	return out
}

// planSettings compares the file's settings and secret references with the organization's
// and writes them with orgs.Repo.Put (its validation, sealing and history row).
func planSettings(ctx context.Context, repo orgs.Repo, d *desired, org, actor string) ([]change, error) {
	cur, set, err := repo.Inspect(ctx, org)
	exists := err == nil
	if err != nil && !errors.Is(err, orgs.ErrNotFound) {
		return nil, err
	}
	want := cur.Settings
	if d.settings != nil {
		want = *d.settings
	} else if !exists {
		return nil, d.errAt("settings.secrets", "organization %s has no settings: give the settings section too", org)
	}
	hasSecret := map[string]bool{orgs.FieldBindPassword: set.BindPassword, orgs.FieldToken: set.Token}
	wantSecret := map[string]string{} // field -> a new value, or "" to drop
	var lines []string
	curMap, _ := settingsMap(cur.Settings)
	wantMap, _ := settingsMap(want)
	for _, k := range slices.Sorted(maps.Keys(flat(wantMap, ""))) {
		x, y := flat(curMap, "")[k], flat(wantMap, "")[k]
		if !exists {
			lines = append(lines, fmt.Sprintf("+ %s: %s", k, y))
		} else if x != y {
			lines = append(lines, fmt.Sprintf("~ %s: %s -> %s", k, x, y))
		}
	}
	for _, field := range []string{orgs.FieldBindPassword, orgs.FieldToken} {
		ref, given := d.secrets[field]
		switch {
		case !given || ref == secretKeep:
		case ref == secretNone:
			if hasSecret[field] {
				wantSecret[field] = ""
				lines = append(lines, fmt.Sprintf("- %s", field))
			}
		default:
			wantSecret[field] = ref
			lines = append(lines, fmt.Sprintf("~ %s: replaced (from its file)", field))
		}
	}
	if len(lines) == 0 {
		return nil, nil
	}
	apply := func(ctx context.Context, tx *store.Store) error {
		r := orgs.Repo{Store: tx, Keys: repo.Keys}
		o := orgs.Org{Name: org}
		if exists && (hasSecret[orgs.FieldBindPassword] || hasSecret[orgs.FieldToken]) {
			// Put writes the secrets it is given: open the ones that stay.
			got, err := r.Get(ctx, org)
			if err != nil {
				return err
			}
			o.Secrets = got.Secrets
		}
		o.Settings = want
		for field, v := range wantSecret {
			switch field {
			case orgs.FieldBindPassword:
				o.Secrets.BindPassword = v
			case orgs.FieldToken:
				o.Secrets.Token = v
			}
		}
		if o.Settings.Directory.BindDN == "" {
			o.Secrets.BindPassword = "" // as `orgs set`: no bind DN, no password to keep
		}
		_, err := r.Put(ctx, actor, o)
		if err != nil {
			return settingsError(d, err)
		}
		return nil
	}
	return []change{{section: "settings", line: strings.Join(lines, "\n  "), apply: apply}}, nil
}

// settingsError places an orgs error at the setting it names.
func settingsError(d *desired, err error) error {
	msg := err.Error()
	best := ""
	for path := range d.where {
		field, ok := strings.CutPrefix(path, "settings.")
		if ok && (strings.Contains(msg, field+":") || strings.Contains(msg, field+" ")) && len(path) > len(best) {
			best = path
		}
	}
	for field, path := range map[string]string{orgs.FieldBindPassword: "settings.secrets.bindPassword", orgs.FieldToken: "settings.secrets.token"} {
		if best == "" && strings.Contains(msg, field) {
			best = path
		}
	}
	if best == "" {
		return err
	}
	return &posErr{file: d.file, line: d.where[best].Line, path: best, msg: msg}
}

// flat is a settings map by dotted path.
func flat(m map[string]any, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			maps.Copy(out, flat(sub, prefix+k+"."))
			continue
		}
		out[prefix+k] = fmt.Sprint(v)
	}
	return out
}
