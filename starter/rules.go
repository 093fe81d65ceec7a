package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
)

func rulesCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "List and edit the group rules (priority 1 wins for single values)",
		Long: `A rule maps a directory group to what its members get: a role, products, a user group,
device groups, a settings template and custom field values. Priorities are a dense 1..n
sequence; for single values the highest-priority rule that sets one wins, multi values
(products, device groups) are the union. Changes take effect at the next sync.`,
		Example: `  starter rules list
  starter rules add --group "cn=Sales,ou=Groups,dc=example,dc=com" --role Member --products Meeting,Webinar
  starter rules move 7 --to 1`,
	}
	cmd.AddCommand(listing(rulesListCmd(a)), rulesShowCmd(a), listing(rulesAddCmd(a)), listing(rulesEditCmd(a)),
		listing(rulesRemoveCmd(a)), listing(rulesMoveCmd(a)))
	return cmd
}

func rulesListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the rules in priority order",
		Example: `  starter rules list --output json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			rs, err := db.Rules(ctx, a.Org)
			if err != nil {
				return err
			}
			return a.printRules(cmd, rs)
		},
	}
}

func rulesShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "show <id>",
		Short:   "Show one rule",
		Example: `  starter rules show 3`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRuleID(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			rs, err := db.Rules(ctx, a.Org)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(rs, func(r rules.Rule) bool { return r.ID == id })
			if i < 0 {
				return fmt.Errorf("rule %d: no such rule", id)
			}
			r := rs[i]
			return a.emit(cmd, r, func(w io.Writer) {
				tw := table(w)
				row(tw, "ID:", r.ID)
				row(tw, "Priority:", r.Priority)
				row(tw, "Group:", r.GroupDN)
				groupID := r.GroupID
				if groupID == "" {
					groupID = "(not known yet: the next sync finds the group by its DN)"
				}
				row(tw, "Group ID:", groupID)
				row(tw, "Role:", r.Role)
				row(tw, "Products:", list(r.Products))
				row(tw, "User group:", r.UserGroup)
				row(tw, "Device groups:", list(r.DeviceGroups))
				row(tw, "Settings template:", r.SettingsTemplate)
				row(tw, "Custom fields:", customString(r.CustomFields))
				row(tw, "Note:", r.Note)
				tw.Flush()
			})
		},
	}
}

// ruleFlags are the assignment flags of rules add and rules edit.
type ruleFlags struct {
	group, role, userGroup, template, note string
	priority                               int
	products, deviceGroups, custom         []string
	noDirectoryCheck                       bool
}

func (f *ruleFlags) bind(cmd *cobra.Command, edit bool) {
	fl := cmd.Flags()
	clear := ""
	if edit {
		clear = ` ("" clears it)`
	}
	fl.StringVar(&f.group, "group", "", "directory group DN")
	fl.IntVar(&f.priority, "priority", 0, "position 1..n (add: 0 appends at the end)")
	fl.StringVar(&f.role, "role", "", "role (from the catalog)"+clear)
	fl.StringSliceVar(&f.products, "products", nil, "products, comma-separated (from the catalog)"+clear)
	fl.StringVar(&f.userGroup, "user-group", "", "user group"+clear)
	fl.StringSliceVar(&f.deviceGroups, "device-groups", nil, "device groups, comma-separated"+clear)
	fl.StringVar(&f.template, "template", "", "settings template (from the catalog)"+clear)
	customHelp := "custom field value name=value (repeatable)"
	if edit {
		customHelp += `; name= removes one field, "" removes all`
	}
	fl.StringArrayVar(&f.custom, "custom", nil, customHelp)
	fl.StringVar(&f.note, "note", "", "free-text note"+clear)
	fl.BoolVar(&f.noDirectoryCheck, "no-directory-check", false, "do not check that the group exists in the directory (the organization's, else LDAP_URL, ...)")
}

// apply copies the flags given on the command line into r (for add: all of them).
func (f *ruleFlags) apply(cmd *cobra.Command, r *rules.Rule) error {
	changed := cmd.Flags().Changed
	if changed("group") {
		r.GroupDN = strings.TrimSpace(f.group)
	}
	if changed("role") {
		r.Role = strings.TrimSpace(f.role)
	}
	if changed("products") {
		r.Products = trimAll(f.products)
	}
	if changed("user-group") {
		r.UserGroup = strings.TrimSpace(f.userGroup)
	}
	if changed("device-groups") {
		r.DeviceGroups = trimAll(f.deviceGroups)
	}
	if changed("template") {
		r.SettingsTemplate = strings.TrimSpace(f.template)
	}
	if changed("note") {
		r.Note = f.note
	}
	if changed("custom") {
		fields := maps.Clone(r.CustomFields)
		if fields == nil {
			fields = map[string]string{}
		}
		for _, kv := range f.custom {
			if strings.TrimSpace(kv) == "" {
				clear(fields)
				continue
			}
			name, value, ok := strings.Cut(kv, "=")
			name = strings.TrimSpace(name)
			if !ok || name == "" {
				return fmt.Errorf("--custom %q: want name=value", kv)
			}
			if value == "" {
				delete(fields, name)
				continue
			}
			fields[name] = value
		}
		r.CustomFields = fields
		if len(fields) == 0 {
			r.CustomFields = nil
		}
	}
	return nil
}

func trimAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.TrimSpace(v)
	}
	return out
}

func rulesAddCmd(a *app) *cobra.Command {
	var f ruleFlags
	cmd := &cobra.Command{
		Use:   "add --group DN [flags]",
		Short: "Add a rule (checked against the catalog and the directory)",
		Long: `add creates a rule. Products, role and template must be in the catalog (starter catalog list);
the group must exist in the organization's directory (its settings, starter orgs; without
settings the environment's LDAP_URL, LDAP_BIND_DN, LDAP_BIND_PASSWORD or LDAP_BIND_PASSWORD_FILE,
LDAP_BASE_DN and LDAP_PROFILE), unless --no-directory-check is given.`,
		Example: `  starter rules add --group "cn=Sales,ou=Groups,dc=example,dc=com" --role Member \
      --products Meeting,Webinar --user-group Sales --device-groups DG-Sales --template Standard
  starter rules add --group "cn=Executives,ou=Groups,dc=example,dc=com" --priority 1 --role Admin \
      --custom costCenter=CC-100 --note "Executives first"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("group") || strings.TrimSpace(f.group) == "" {
				return fmt.Errorf("--group: required, the DN of a directory group")
			}
			if f.priority < 0 {
				return fmt.Errorf("--priority %d: must be 0 (append at the end) or a position 1..n", f.priority)
			}
			for _, kv := range f.custom {
				if name, value, ok := strings.Cut(kv, "="); !ok || strings.TrimSpace(name) == "" || value == "" {
					return fmt.Errorf("--custom %q: want name=value with a non-empty value", kv)
				}
			}
			r := rules.Rule{Priority: f.priority}
			if err := f.apply(cmd, &r); err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := a.checkRule(ctx, &r, f.noDirectoryCheck); err != nil {
				return err
			}
			db, _ := a.store(ctx) // opened by checkRule
			var before map[int64]bool
			rs, err := db.EditRules(ctx, a.Org, a.actor, "add rule", func(cur []rules.Rule) ([]rules.Rule, error) {
				before = map[int64]bool{}
				for _, x := range cur {
					before[x.ID] = true
				}
				return rules.Insert(cur, r)
			})
			if err != nil {
				return err
			}
			for _, x := range rs {
				if !before[x.ID] && !a.json {
					fmt.Fprintf(cmd.OutOrStdout(), "Added rule %d at priority %d.\n", x.ID, x.Priority)
				}
			}
			return a.printRules(cmd, rs)
		},
	}
	f.bind(cmd, false)
	return cmd
}

func rulesEditCmd(a *app) *cobra.Command {
	var f ruleFlags
	cmd := &cobra.Command{
		Use:   "edit <id> [flags]",
		Short: "Change a rule: only the flags given change",
		Long: `edit changes the fields of one rule given as flags and keeps the others. An empty value
clears a field (--role "", --products ""). --priority moves the rule to that position.`,
		Example: `  starter rules edit 3 --products Meeting,Connect --role ""
  starter rules edit 3 --custom costCenter=CC-200 --custom division=
  starter rules edit 3 --group "cn=Sales-EMEA,ou=Groups,dc=example,dc=com" --priority 2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRuleID(args[0])
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(ruleFieldFlags, cmd.Flags().Changed) {
				return fmt.Errorf("rule %d: nothing to change (give --group, --priority, --role, --products, --user-group, --device-groups, --template, --custom or --note)", id)
			}
			moving := cmd.Flags().Changed("priority")
			if moving && f.priority < 1 {
				return fmt.Errorf("--priority %d: must be a position 1..n", f.priority)
			}
			ctx := cmd.Context()
			var probe rules.Rule // the new group's, with its ID
			if cmd.Flags().Changed("group") {
				if strings.TrimSpace(f.group) == "" {
					return fmt.Errorf("--group: empty; a rule needs a directory group")
				}
				probe = rules.Rule{GroupDN: strings.TrimSpace(f.group)}
				if err := a.checkRule(ctx, &probe, f.noDirectoryCheck); err != nil {
					return err
				}
			}
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			cat, err := db.Catalog(ctx, a.Org)
			if err != nil {
				return err
			}
			rs, err := db.EditRules(ctx, a.Org, a.actor, fmt.Sprintf("edit rule %d", id), func(cur []rules.Rule) ([]rules.Rule, error) {
				i := slices.IndexFunc(cur, func(r rules.Rule) bool { return r.ID == id })
				if i < 0 {
					return nil, fmt.Errorf("rule %d: no such rule", id)
				}
				next := slices.Clone(cur)
				r := next[i]
				r.Products, r.DeviceGroups = slices.Clone(r.Products), slices.Clone(r.DeviceGroups)
				if err := f.apply(cmd, &r); err != nil {
					return nil, err
				}
				if err := rules.Validate(r, cat); err != nil {
					return nil, fmt.Errorf("rule %d: %w", id, err)
				}
				r.GroupDN = rules.NormalizeDN(r.GroupDN)
				if cmd.Flags().Changed("group") {
					r.GroupID = probe.GroupID
				}
				next[i] = r
				if moving {
					return rules.Move(next, id, f.priority)
				}
				return next, nil
			})
			if err != nil {
				return err
			}
			if !a.json {
				fmt.Fprintf(cmd.OutOrStdout(), "Changed rule %d.\n", id)
			}
			return a.printRules(cmd, rs)
		},
	}
	f.bind(cmd, true)
	return cmd
}

// ruleFieldFlags are the flags of rules edit that change something.
var ruleFieldFlags = []string{"group", "priority", "role", "products", "user-group", "device-groups", "template", "custom", "note"}

func rulesRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "remove <id>",
		Short:   "Remove a rule; the rules below move up",
		Example: `  starter rules remove 4`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRuleID(args[0])
			if err != nil {
				return err
			}
			return a.editRules(cmd, fmt.Sprintf("remove rule %d", id), fmt.Sprintf("Removed rule %d.", id),
				func(cur []rules.Rule) ([]rules.Rule, error) { return rules.Remove(cur, id) })
		},
	}
}

func rulesMoveCmd(a *app) *cobra.Command {
	var to int
	cmd := &cobra.Command{
		Use:     "move <id> --to N",
		Short:   "Move a rule to priority N; the others shift",
		Example: `  starter rules move 7 --to 1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRuleID(args[0])
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("to") {
				return fmt.Errorf("--to: required, the new priority 1..n")
			}
			if to < 1 {
				return fmt.Errorf("--to %d: must be a position 1..n", to)
			}
			return a.editRules(cmd, fmt.Sprintf("move rule %d to %d", id, to), fmt.Sprintf("Moved rule %d to priority %d.", id, to),
				func(cur []rules.Rule) ([]rules.Rule, error) { return rules.Move(cur, id, to) })
		},
	}
	cmd.Flags().IntVar(&to, "to", 0, "new priority 1..n")
	return cmd
}

// editRules applies an ordering change and prints the result.
func (a *app) editRules(cmd *cobra.Command, action, done string, edit func([]rules.Rule) ([]rules.Rule, error)) error {
	ctx := cmd.Context()
	db, err := a.store(ctx)
	if err != nil {
		return err
	}
	rs, err := db.EditRules(ctx, a.Org, a.actor, action, edit)
	if err != nil {
		return err
	}
	if !a.json {
		fmt.Fprintln(cmd.OutOrStdout(), done)
	}
	return a.printRules(cmd, rs)
}

// checkRule validates r against the catalog, normalizes its group DN and, unless skipped,
// checks that the group exists in the directory.
func (a *app) checkRule(ctx context.Context, r *rules.Rule, skipDirectory bool) error {
	db, err := a.store(ctx)
	if err != nil {
		return err
	}
	cat, err := db.Catalog(ctx, a.Org)
	if err != nil {
		return err
	}
	if err := rules.Validate(*r, cat); err != nil {
		return err
	}
	raw := r.GroupDN
	r.GroupDN = rules.NormalizeDN(r.GroupDN)
	r.GroupID = "" // the next sync finds the group by DN and fills it in
	if skipDirectory {
		return nil
	}
	r.GroupID, err = a.checkGroupExists(ctx, raw)
	return err
}

// checkGroupExists looks the group up in the organization's directory (its settings when it
// has some, else the LDAP_* environment) and returns the group's immutable ID, which the
// rule keeps so that it follows the group through renames and moves.
func (a *app) checkGroupExists(ctx context.Context, dn string) (string, error) {
	o, err := a.orgSettings(ctx, a.Org)
	if err != nil {
		return "", fmt.Errorf("--group %q: cannot check that the group exists: %w", dn, err)
	}
	if o == nil && os.Getenv("LDAP_URL") == "" {
		return "", fmt.Errorf("--group %q: cannot check that the group exists: organization %s has no settings (starter orgs create) "+
			"and LDAP_URL is not set (set LDAP_URL, LDAP_BIND_DN, LDAP_BIND_PASSWORD or LDAP_BIND_PASSWORD_FILE, LDAP_BASE_DN, "+
			"or pass --no-directory-check)", dn, a.Org)
	}
	cfg, err := directoryOf(a.Org, o)
	if err != nil {
		return "", err
	}
	cfg.Timeout = 15 * time.Second
	url := cfg.URL
	dir, err := directory.Dial(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("--group %q: cannot check that the group exists: %w", dn, err)
	}
	defer dir.Close()
	ok, err := dir.GroupExists(ctx, dn)
	if err != nil {
		return "", fmt.Errorf("--group %q: %w", dn, err)
	}
	if !ok {
		return "", fmt.Errorf("--group %q: no such group in the directory %s (or --no-directory-check to save it anyway)", dn, url)
	}
	located, found, err := dir.LocateGroups(ctx, []directory.GroupRef{{DN: dn}})
	if err != nil {
		return "", fmt.Errorf("--group %q: %w", dn, err)
	}
	if !found[0] {
		return "", nil // no readable ID: the next sync tries again
	}
	return located[0].ID, nil
}

func parseRuleID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("rule id %q: not a rule ID (see starter rules list)", s)
	}
	return id, nil
}

func (a *app) printRules(cmd *cobra.Command, rs []rules.Rule) error {
	if rs == nil {
		rs = []rules.Rule{}
	}
	return emitRows(a, cmd, rowSet[rules.Rule]{rows: rs, cols: ruleColumns, none: "No rules."})
}

var ruleColumns = []column[rules.Rule]{
	{"PRIORITY", func(r rules.Rule) string { return strconv.Itoa(r.Priority) }},
	{"ID", func(r rules.Rule) string { return strconv.FormatInt(r.ID, 10) }},
	{"GROUP", func(r rules.Rule) string { return r.GroupDN }},
	{"ROLE", func(r rules.Rule) string { return r.Role }},
	{"PRODUCTS", func(r rules.Rule) string { return list(r.Products) }},
	{"USER GROUP", func(r rules.Rule) string { return r.UserGroup }},
	{"DEVICE GROUPS", func(r rules.Rule) string { return list(r.DeviceGroups) }},
	{"TEMPLATE", func(r rules.Rule) string { return r.SettingsTemplate }},
	{"CUSTOM", func(r rules.Rule) string { return customString(r.CustomFields) }},
	{"NOTE", func(r rules.Rule) string { return r.Note }},
}

func customString(m map[string]string) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}
