package main

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/store"
)

// ---- mappings ----

// enterpriseAttributes are the SCIM enterprise extension attributes a mapping may target.
var enterpriseAttributes = []string{"employeeNumber", "costCenter", "division", "department"}

var (
	ldapAttribute = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)$`)
	customName    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)
)

func checkMappingTarget(t string) error {
	if attr, ok := strings.CutPrefix(t, "enterprise:"); ok && slices.Contains(enterpriseAttributes, attr) {
		return nil
	}
	if name, ok := strings.CutPrefix(t, "custom:"); ok && customName.MatchString(name) {
		return nil
	}
	return fmt.Errorf("target %q: want enterprise:%s or custom:<name> (letters, digits, _ and -)", t, strings.Join(enterpriseAttributes, "|"))
}

func mappingsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mappings",
		Short: "Map directory attributes to SCIM enterprise or custom attributes",
		Example: `  starter mappings list
  starter mappings set employeeNumber enterprise:employeeNumber
  starter mappings set l custom:office
  starter mappings remove custom:office`,
	}
	list := &cobra.Command{
		Use: "list", Short: "List the attribute mappings", Example: "  starter mappings list --output csv", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.printMappings(cmd) },
	}
	set := &cobra.Command{
		Use:     "set <source-attribute> <target>",
		Short:   "Copy a directory attribute to a target attribute at each sync",
		Example: `  starter mappings set departmentNumber enterprise:department`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			source, target := strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
			if !ldapAttribute.MatchString(source) {
				return fmt.Errorf("source attribute %q: not an LDAP attribute name", source)
			}
			if err := checkMappingTarget(target); err != nil {
				return err
			}
			return a.setMapping(cmd, source, target)
		},
	}
	remove := &cobra.Command{
		Use:     "remove <target>",
		Short:   "Stop mapping a target attribute",
		Example: `  starter mappings remove enterprise:costCenter`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := strings.TrimSpace(args[0])
			if err := checkMappingTarget(target); err != nil {
				return err
			}
			return a.setMapping(cmd, "", target)
		},
	}
	cmd.AddCommand(listing(list), listing(set), listing(remove))
	return cmd
}

func (a *app) setMapping(cmd *cobra.Command, source, target string) error {
	ctx := cmd.Context()
	db, err := a.store(ctx)
	if err != nil {
		return err
	}
	if err := db.SetMapping(ctx, a.Org, a.actor, source, target); err != nil {
		return err
	}
	return a.printMappings(cmd)
}

func (a *app) printMappings(cmd *cobra.Command) error {
	ctx := cmd.Context()
	db, err := a.store(ctx)
	if err != nil {
		return err
	}
	ms, err := db.Mappings(ctx, a.Org)
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []plan.Mapping{}
	}
	return emitRows(a, cmd, rowSet[plan.Mapping]{rows: ms, cols: mappingColumns, none: "No attribute mappings."})
}

var mappingColumns = []column[plan.Mapping]{
	{"SOURCE", func(m plan.Mapping) string { return m.Source }},
	{"TARGET", func(m plan.Mapping) string { return m.Target }},
}

// ---- licenses ----

func licensesCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "licenses",
		Short: "Show and set the seats of each product",
		Long: `Each product has a seat pool. A sync never entitles more accounts than there are seats;
the users left without a seat fail with out_of_licenses until seats are added and retried.`,
		Example: `  starter licenses list
  starter licenses set Webinar 120 && starter retry --type out_of_licenses`,
	}
	list := &cobra.Command{
		Use: "list", Short: "List products with seats, used and free", Example: `  starter licenses list`, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.printLicenses(cmd) },
	}
	set := &cobra.Command{
		Use:     "set <product> <seats>",
		Short:   "Set a product's seat count (the product must be in the catalog)",
		Example: `  starter licenses set Meeting 300`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			product := strings.TrimSpace(args[0])
			seats, err := strconv.Atoi(strings.TrimSpace(args[1]))
			if err != nil || seats < 0 {
				return fmt.Errorf("seats %q: must be a non-negative integer", args[1])
			}
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			cat, err := db.Catalog(ctx, a.Org)
			if err != nil {
				return err
			}
			if !slices.Contains(cat.Products, product) {
				return fmt.Errorf("product %q: not in the catalog (known: %s)", product, orNone(cat.Products))
			}
			if err := db.SetLicense(ctx, a.Org, a.actor, product, seats); err != nil {
				return err
			}
			return a.printLicenses(cmd)
		},
	}
	// "licenses set Meeting -5" reaches the flag parser as an unknown shorthand: name the field.
	set.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		if _, token, ok := strings.Cut(err.Error(), " in "); ok {
			if _, nerr := strconv.Atoi(token); nerr == nil {
				return fmt.Errorf("seats %q: must be a non-negative integer", token)
			}
		}
		return err
	})
	cmd.AddCommand(listing(list), listing(set))
	return cmd
}

func orNone(vs []string) string {
	if len(vs) == 0 {
		return "none; see starter catalog set"
	}
	return strings.Join(vs, ", ")
}

// licenseRow adds the free seats to store.License for output.
type licenseRow struct {
	store.License
	Free int `json:"free"`
}

func (a *app) printLicenses(cmd *cobra.Command) error {
	ctx := cmd.Context()
	db, err := a.store(ctx)
	if err != nil {
		return err
	}
	ls, err := db.Licenses(ctx, a.Org)
	if err != nil {
		return err
	}
	out := make([]licenseRow, len(ls))
	for i, l := range ls {
		out[i] = licenseRow{License: l, Free: max(l.Seats-l.Used, 0)}
	}
	return emitRows(a, cmd, rowSet[licenseRow]{rows: out, cols: licenseColumns,
		none: "No seat pools set (starter licenses set <product> <seats>)."})
}

var licenseColumns = []column[licenseRow]{
	{"PRODUCT", func(l licenseRow) string { return l.Product }},
	{"SEATS", func(l licenseRow) string { return strconv.Itoa(l.Seats) }},
	{"USED", func(l licenseRow) string { return strconv.Itoa(l.Used) }},
	{"FREE", func(l licenseRow) string { return strconv.Itoa(l.Free) }},
}

// ---- domains ----

var domainLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// checkDomain accepts a lower-cased DNS name of at least two labels with a non-numeric TLD.
func checkDomain(d string) error {
	labels := strings.Split(d, ".")
	bad := len(d) > 253 || len(labels) < 2
	for _, l := range labels {
		bad = bad || !domainLabel.MatchString(l)
	}
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		bad = true
	}
	if bad {
		return fmt.Errorf("domain %q: not a domain name (e.g. example.com)", d)
	}
	return nil
}

func domainsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domains",
		Short: "Manage the validated email domains (only their users are provisioned)",
		Example: `  starter domains list
  starter domains validate partners.example.net && starter retry --type domain_not_validated`,
	}
	list := &cobra.Command{
		Use: "list", Short: "List the organization's domains", Example: `  starter domains list`, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.printDomains(cmd) },
	}
	setter := func(use, short string, validated bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " <domain>", Short: short, Example: "  starter domains " + use + " example.com", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				d := strings.ToLower(strings.TrimSpace(args[0]))
				if err := checkDomain(d); err != nil {
					return err
				}
				ctx := cmd.Context()
				db, err := a.store(ctx)
				if err != nil {
					return err
				}
				if err := db.SetDomain(ctx, a.Org, a.actor, d, validated); err != nil {
					return err
				}
				return a.printDomains(cmd)
			},
		}
	}
	cmd.AddCommand(listing(list),
		listing(setter("validate", "Mark a domain as validated: its users can be provisioned", true)),
		listing(setter("unvalidate", "Mark a domain as not validated: new users of it fail domain_not_validated", false)))
	return cmd
}

func (a *app) printDomains(cmd *cobra.Command) error {
	ctx := cmd.Context()
	db, err := a.store(ctx)
	if err != nil {
		return err
	}
	ds, err := db.Domains(ctx, a.Org)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []store.Domain{}
	}
	return emitRows(a, cmd, rowSet[store.Domain]{rows: ds, cols: domainColumns, none: "No domains."})
}

var domainColumns = []column[store.Domain]{
	{"DOMAIN", func(d store.Domain) string { return d.Name }},
	{"VALIDATED", func(d store.Domain) string { return strconv.FormatBool(d.Validated) }},
}

// ---- catalog ----

func catalogCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "The products, roles and settings templates the target knows (rules are checked against it)",
		Example: `  starter catalog list
  starter catalog set --products Meeting,Webinar,Connect --roles Member,Admin --templates Standard`,
	}
	list := &cobra.Command{
		Use: "list", Short: "Show the catalog", Example: "  starter catalog list --output json", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			cat, err := db.Catalog(ctx, a.Org)
			if err != nil {
				return err
			}
			return a.printCatalog(cmd, cat)
		},
	}
	var products, roles, templates []string
	set := &cobra.Command{
		Use:   "set [--products a,b] [--roles x,y] [--templates t,u]",
		Short: "Replace the products, roles or templates (the lists not given stay)",
		Long: `set replaces the lists given. A name still used by a rule cannot be removed: change or
remove the rule first.`,
		Example: `  starter catalog set --products Meeting,Webinar,Connect --roles Member,Admin,Manager --templates Standard,Restricted`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl := cmd.Flags()
			if !fl.Changed("products") && !fl.Changed("roles") && !fl.Changed("templates") {
				return fmt.Errorf("catalog set: give at least one of --products, --roles, --templates")
			}
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			cat, err := db.Catalog(ctx, a.Org)
			if err != nil {
				return err
			}
			for _, f := range []struct {
				flag string
				vals []string
				dst  *[]string
			}{{"products", products, &cat.Products}, {"roles", roles, &cat.Roles}, {"templates", templates, &cat.Templates}} {
				if !fl.Changed(f.flag) {
					continue
				}
				vals, err := catalogNames(f.flag, f.vals)
				if err != nil {
					return err
				}
				*f.dst = vals
			}
			rs, err := db.Rules(ctx, a.Org)
			if err != nil {
				return err
			}
			for _, r := range rs {
				if err := rules.Validate(r, cat); err != nil {
					return fmt.Errorf("catalog: rule %d (priority %d) would become invalid: %w", r.ID, r.Priority, err)
				}
			}
			if err := db.SetCatalog(ctx, a.Org, a.actor, cat); err != nil {
				return err
			}
			return a.printCatalog(cmd, cat)
		},
	}
	set.Flags().StringSliceVar(&products, "products", nil, "product names, comma-separated")
	set.Flags().StringSliceVar(&roles, "roles", nil, "role names, comma-separated")
	set.Flags().StringSliceVar(&templates, "templates", nil, "settings template names, comma-separated")
	cmd.AddCommand(listing(list), listing(set))
	return cmd
}

// catalogNames trims and checks a list: no empty names, no duplicates.
func catalogNames(flag string, vs []string) ([]string, error) {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		v = strings.TrimSpace(v)
		if v == "" {
			return nil, fmt.Errorf("--%s: empty name in %q", flag, strings.Join(vs, ","))
		}
		if slices.Contains(out, v) {
			return nil, fmt.Errorf("--%s: %q listed twice", flag, v)
		}
		if len(v) > rules.MaxValueLen {
			return nil, fmt.Errorf("--%s: %q is longer than %d characters", flag, v, rules.MaxValueLen)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

func (a *app) printCatalog(cmd *cobra.Command, cat rules.Catalog) error {
	for _, l := range []*[]string{&cat.Products, &cat.Roles, &cat.Templates} {
		if *l == nil {
			*l = []string{} // JSON [] rather than null
		}
	}
	// The JSON keeps the catalog's shape, the table a line per list, the CSV a row per name.
	var names []catalogName
	for _, l := range []struct {
		kind  string
		names []string
	}{{"product", cat.Products}, {"role", cat.Roles}, {"template", cat.Templates}} {
		for _, n := range l.names {
			names = append(names, catalogName{l.kind, n})
		}
	}
	return emitRows(a, cmd, rowSet[catalogName]{rows: names, cols: catalogColumns, doc: cat, text: func(w io.Writer) {
		tw := table(w)
		row(tw, "Products:", strings.Join(cat.Products, ", "))
		row(tw, "Roles:", strings.Join(cat.Roles, ", "))
		row(tw, "Templates:", strings.Join(cat.Templates, ", "))
		tw.Flush()
	}})
}

type catalogName struct{ kind, name string }

var catalogColumns = []column[catalogName]{
	{"KIND", func(c catalogName) string { return c.kind }},
	{"NAME", func(c catalogName) string { return c.name }},
}
