package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/config"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// explainResult is what explain knows about one user. Explanation is nil when the user is
// neither in a ruled group nor linked.
type explainResult struct {
	Query string `json:"query"`
	// InRuledGroups is true when the directory read of the ruled groups found the user.
	InRuledGroups bool              `json:"inRuledGroups"`
	Explanation   *plan.Explanation `json:"explanation,omitempty"`
	// Applied is what the last successful provisioning wrote (nil: not linked).
	Applied *plan.Applied        `json:"applied,omitempty"`
	Failure *store.FailureRecord `json:"failure,omitempty"`
	// Known is false when neither the directory read nor the store knows the user.
	Known    bool     `json:"known"`
	Warnings []string `json:"warnings,omitempty"`
}

func explainCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "explain <userName or externalId>",
		Short: "Explain one user: groups, matching rules, how each value was chosen, license, diff",
		Long: `explain reads the ruled groups from the organization's directory (its settings, starter orgs;
without settings the environment's LDAP_URL, LDAP_BIND_DN, LDAP_BIND_PASSWORD or
LDAP_BIND_PASSWORD_FILE, LDAP_BASE_DN, LDAP_PROFILE and SUSPEND_THRESHOLD_*) and plans a sync
exactly as the worker would, without writing anything. For the user it shows the ruled groups
holding it, the rules that matched in priority order, which rule or attribute set each value,
the license decision, what the sync would do and how the desired state differs from the last
state written to the target, and the user's current failure.`,
		Example: `  starter explain anna.schmidt@example.com
  starter explain 6f1c2a4e-8d9b-4e57-9a43-1d2c3b4a5f60 --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := strings.TrimSpace(args[0])
			if q == "" {
				return fmt.Errorf("explain: empty userName or externalId")
			}
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			in, err := activities.LoadPlanInput(ctx, db, a.Org)
			if err != nil {
				return err
			}
			// The organization's settings when it has some, else the environment, as before.
			o, err := a.orgSettings(ctx, a.Org)
			if err != nil {
				return fmt.Errorf("explain: %w", err)
			}
			if o != nil {
				in.SuspendThresholdPercent, in.SuspendThresholdMax = o.Settings.SuspendThresholdPercent, o.Settings.SuspendThresholdMax
			} else {
				thresholds, err := suspendThresholdsFromEnv()
				if err != nil {
					return err
				}
				in.SuspendThresholdPercent, in.SuspendThresholdMax = thresholds.SuspendThresholdPercent, thresholds.SuspendThresholdMax
			}
			if in.Users, err = readRuledGroups(ctx, &in, a.Org, o); err != nil {
				return err
			}
			failures, err := db.Failures(ctx, a.Org, vocab.Filter{})
			if err != nil {
				return err
			}
			res := explainUser(q, in, failures)
			return a.emit(cmd, res, func(w io.Writer) { printExplanation(w, res) })
		},
	}
}

// readRuledGroups reads the users of the ruled groups, as a sync's snapshot does, from the
// directory of o (nil: of the environment). As a sync does, it first finds each ruled
// group where it is now (by its ID) and sets the current DN in in.Rules, so that the
// explanation shows it; unlike a sync, it stores nothing.
func readRuledGroups(ctx context.Context, in *plan.Input, org string, o *orgs.Org) ([]directory.User, error) {
	if len(in.Rules) == 0 {
		return nil, nil
	}
	cfg, err := directoryOf(org, o)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	dir, err := directory.Dial(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	defer dir.Close()
	refs := make([]directory.GroupRef, len(in.Rules))
	for i, r := range in.Rules {
		refs[i] = directory.GroupRef{DN: r.GroupDN, ID: r.GroupID}
	}
	located, found, err := dir.LocateGroups(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	in.Rules = slices.Clone(in.Rules)
	for i := range in.Rules {
		if found[i] {
			in.Rules[i].GroupDN, in.Rules[i].GroupID = located[i].DN, located[i].ID
		}
	}
	groupDNs, attrs := activities.SnapshotScope(in.Rules, in.Mappings)
	var users []directory.User
	if _, err := dir.Snapshot(ctx, groupDNs, attrs, 1000, func(us []directory.User) error {
		users = append(users, us...)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("explain: directory read: %w", err)
	}
	return users, nil
}

// directoryFromEnv is the directory configuration of the LDAP_* environment, read and
// validated by the worker's own settings (internal/config).
func directoryFromEnv() (directory.Config, error) {
	var l config.LDAP
	if err := l.Settings().Load(); err != nil {
		return directory.Config{}, err
	}
	if l.LDAPURL == "" {
		return directory.Config{}, fmt.Errorf("LDAP_URL is not set (set LDAP_URL, LDAP_BIND_DN, " +
			"LDAP_BIND_PASSWORD or LDAP_BIND_PASSWORD_FILE, LDAP_BASE_DN, LDAP_PROFILE)")
	}
	password, err := l.BindPassword()
	if err != nil {
		return directory.Config{}, err
	}
	return l.Directory(password), nil
}

// directoryOf is the directory configuration of the organization: its settings (o) when it
// has some, else the LDAP_* environment, the single-organization setup.
func directoryOf(org string, o *orgs.Org) (directory.Config, error) {
	if o != nil {
		return o.Settings.Directory.Config(o.Secrets.BindPassword), nil
	}
	cfg, err := directoryFromEnv()
	if err != nil {
		return cfg, fmt.Errorf("organization %s has no settings (starter orgs create %s), and the environment's: %w", org, org, err)
	}
	return cfg, nil
}

// suspendThresholdsFromEnv are the worker's SUSPEND_THRESHOLD_* settings.
func suspendThresholdsFromEnv() (config.SuspendThresholds, error) {
	var t config.SuspendThresholds
	return t, t.Settings().Load()
}

// explainUser finds q (a userName, case-insensitive, or an externalId) among in.Users, the
// linked accounts and the failures, and explains it. Pure, for tests.
func explainUser(q string, in plan.Input, failures []store.FailureRecord) explainResult {
	res := explainResult{Query: q}
	match := func(externalID, userName string) bool {
		return externalID == q || (userName != "" && strings.EqualFold(userName, q))
	}
	var found []directory.User
	for _, u := range in.Users {
		if match(u.ExternalID, u.UserName) {
			found = append(found, u)
		}
	}
	var u directory.User
	switch {
	case len(found) > 0:
		u, res.InRuledGroups = found[0], true
		if len(found) > 1 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%d directory users match %q; showing externalId %s (explain by externalId to pick another)",
				len(found), q, u.ExternalID))
		}
	default:
		// Not in a ruled group: the store may still know it (linked, or failed earlier).
		for _, id := range slices.Sorted(maps.Keys(in.Applied)) {
			if ap := in.Applied[id]; match(id, ap.State.UserName) {
				u = directory.User{ExternalID: id, UserName: ap.State.UserName, Email: ap.State.Email}
				break
			}
		}
		if u.ExternalID == "" {
			for _, f := range failures {
				if match(f.ExternalID, f.UserName) {
					u = directory.User{ExternalID: f.ExternalID, UserName: f.UserName}
					break
				}
			}
		}
	}
	if u.ExternalID == "" {
		return res
	}
	res.Known = true
	if ap, ok := in.Applied[u.ExternalID]; ok {
		res.Applied = &ap
	}
	for _, f := range failures {
		if f.ExternalID == u.ExternalID {
			res.Failure = &f
			break
		}
	}
	// A user who only failed (never linked) and left the ruled groups has nothing to plan.
	if res.InRuledGroups || res.Applied != nil {
		e := plan.Explain(u, in)
		res.Explanation = &e
	}
	return res
}

func printExplanation(w io.Writer, r explainResult) {
	w = toTerminal(w)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	if !r.Known {
		fmt.Fprintf(w, "%s: not in any ruled group of the directory, not linked and no failure recorded.\n", r.Query)
		fmt.Fprintln(w, "The user is out of scope (in no group a rule names), or no such user exists.")
		return
	}
	e := r.Explanation
	name, id := r.Query, ""
	switch {
	case e != nil:
		name, id = e.UserName, e.ExternalID
	case r.Failure != nil:
		name, id = r.Failure.UserName, r.Failure.ExternalID
	}
	fmt.Fprintf(w, "User %s (externalId %s)\n", orDash(name), id)

	if !r.InRuledGroups {
		fmt.Fprintln(w, "Groups: in no ruled group of the directory (left them, or deleted): out of scope.")
	} else {
		fmt.Fprintln(w, "Ruled groups holding the user:")
		for _, g := range e.Groups {
			fmt.Fprintf(w, "  %s\n", g)
		}
		switch {
		case e.InScope:
			fmt.Fprintln(w, "Scope: in scope.")
		default:
			fmt.Fprintf(w, "Scope: out of scope (%s).\n", e.OutOfScope)
		}
	}
	if e != nil && len(e.MatchedRules) > 0 {
		fmt.Fprintln(w, "Matched rules, in priority order:")
		tw := table(w, "  PRIORITY", "RULE", "GROUP", "NOTE")
		for _, m := range e.MatchedRules {
			row(tw, "  "+strconv.Itoa(m.Priority), m.ID, m.GroupDN, m.Note)
		}
		tw.Flush()
	}
	if e != nil && len(e.Fields) > 0 {
		fmt.Fprintln(w, "Assignments (single values: the highest-priority rule setting one; sets: the union):")
		tw := table(w, "  FIELD", "VALUE", "FROM")
		for _, f := range e.Fields {
			from := ""
			switch {
			case f.Attribute != "":
				from = "directory attribute " + f.Attribute
			case f.RuleID != 0:
				from = fmt.Sprintf("rule %d (priority %d)", f.RuleID, f.Priority)
			}
			row(tw, "  "+f.Field, f.Value, from)
		}
		tw.Flush()
	}
	if e != nil {
		fmt.Fprintf(w, "License: %s\n", e.License.Decision)
	}
	printTargetDiff(w, r)
	if f := r.Failure; f != nil {
		what := f.Type
		if f.Product != "" {
			what += " (" + f.Product + ")"
		}
		fmt.Fprintf(w, "Current failure: %s: %s (since %s, %d attempts)\n", what, f.Message, f.Since, f.Attempts)
		if advice := vocab.Advice(f.Type, f.Product); advice != "" {
			fmt.Fprintf(w, "  what to do: %s\n", advice)
		}
	} else {
		fmt.Fprintln(w, "Current failure: none.")
	}
	if e != nil {
		for _, warn := range e.Warnings {
			fmt.Fprintf(w, "Sync warning: %s\n", warn)
		}
	}
}

// printTargetDiff shows the link, what the next sync would do and, per changed field, the
// value last written to the target next to the desired one.
func printTargetDiff(w io.Writer, r explainResult) {
	w = toTerminal(w)
	if r.Applied != nil {
		fmt.Fprintf(w, "Target: linked (SCIM id %s).\n", r.Applied.ScimID)
	} else {
		fmt.Fprintln(w, "Target: not linked (no account written by usersync).")
	}
	e := r.Explanation
	if e == nil {
		return
	}
	switch {
	case e.Action == "":
		fmt.Fprintln(w, "Next sync: nothing to do (the target has the desired state).")
		return
	case e.Action == plan.Fail:
		fmt.Fprintf(w, "Next sync: fails with %s: %s\n", e.Failure.Type, e.Failure.Message)
		return
	default:
		fmt.Fprintf(w, "Next sync: %s\n", e.Action)
	}
	if e.Desired == nil {
		return
	}
	if r.Applied == nil {
		fmt.Fprintln(w, "Account to create:")
		tw := table(w, "  FIELD", "VALUE")
		for _, f := range desiredFields {
			if v := fieldValue(*e.Desired, f); v != "" {
				row(tw, "  "+f, v)
			}
		}
		tw.Flush()
		return
	}
	if len(e.Changed) == 0 {
		return
	}
	fmt.Fprintln(w, "Changes against the last state written to the target:")
	tw := table(w, "  FIELD", "TARGET", "DESIRED")
	for _, f := range e.Changed {
		row(tw, "  "+f, fieldValue(r.Applied.State, f), fieldValue(*e.Desired, f))
	}
	tw.Flush()
}

// desiredFields are plan.Desired's JSON names, in display order.
var desiredFields = []string{"externalId", "userName", "email", "givenName", "familyName", "displayName", "active",
	"role", "products", "userGroup", "deviceGroups", "settingsTemplate", "enterprise", "custom"}

// fieldValue renders one top-level field of d, named by its JSON name (as Item.Changed).
func fieldValue(d plan.Desired, field string) string {
	b, _ := json.Marshal(d) // only strings, bools, slices and maps
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	switch v := m[field].(type) {
	case nil:
		return ""
	case string:
		return v
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = fmt.Sprint(x)
		}
		return strings.Join(parts, ",")
	case map[string]any:
		keys := slices.Sorted(maps.Keys(v))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%v", k, v[k])
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(v)
	}
}
