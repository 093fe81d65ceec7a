package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/store"
)

// targetView is what `starter target show` prints: settings, and what the last run found.
type targetView struct {
	CustomSchema      string               `json:"customSchema"`
	TemplateAttribute string               `json:"templateAttribute"`
	LastDiscovery     *store.TargetProfile `json:"lastDiscovery,omitempty"`
}

func targetCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "target",
		Short: "Show and set the shape of the SCIM target (custom extension URN, template attribute)",
		Long: `Custom fields and the settings template are written to a custom extension of the SCIM User
(spec section 4). Its schema URN and the template's attribute name are per-organization settings;
the default is usersync's own URN. Every sync first reads the target's /ServiceProviderConfig,
/Schemas and /ResourceTypes and refuses to start when the target lacks PATCH or does not declare
the extension or an attribute the rules and mappings write; rule and mapping edits are checked
against what the last sync found.`,
		Example: `  starter target show
  starter target set --custom-schema urn:ietf:params:scim:schemas:extension:acme:2.0:User
  starter target set --template-attribute profileTemplate
  starter target set --custom-schema default`,
	}
	show := &cobra.Command{
		Use: "show", Short: "Show the extension settings and the last discovery of the target", Args: cobra.NoArgs,
		Example: `  starter target show --output json`,
		RunE:    func(cmd *cobra.Command, _ []string) error { return a.printTarget(cmd) },
	}
	var urn, attr string
	set := &cobra.Command{
		Use: "set", Short: "Set the custom extension URN or template attribute (\"default\" resets)", Args: cobra.NoArgs,
		Example: `  starter target set --custom-schema urn:ietf:params:scim:schemas:extension:acme:2.0:User --template-attribute template`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("custom-schema") && !cmd.Flags().Changed("template-attribute") {
				return fmt.Errorf("target set: give --custom-schema or --template-attribute")
			}
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			e, err := db.TargetExtension(ctx, a.Org)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("custom-schema") {
				e.URN = resetDefault(urn)
			}
			if cmd.Flags().Changed("template-attribute") {
				e.TemplateAttribute = resetDefault(attr)
			}
			if e.URN == scim.DefaultCustomSchema {
				e.URN = ""
			}
			if e.TemplateAttribute == scim.DefaultTemplateAttribute {
				e.TemplateAttribute = ""
			}
			if err := db.SetTargetExtension(ctx, a.Org, a.actor, e); err != nil {
				return err
			}
			return a.printTarget(cmd)
		},
	}
	set.Flags().StringVar(&urn, "custom-schema", "", "schema URN of the custom User extension (\"default\": "+scim.DefaultCustomSchema+")")
	set.Flags().StringVar(&attr, "template-attribute", "", "attribute of the custom extension holding the settings template (\"default\": "+scim.DefaultTemplateAttribute+")")
	cmd.AddCommand(show, set)
	return cmd
}

func resetDefault(s string) string {
	if strings.EqualFold(strings.TrimSpace(s), "default") {
		return ""
	}
	return strings.TrimSpace(s)
}

func (a *app) printTarget(cmd *cobra.Command) error {
	ctx := cmd.Context()
	db, err := a.store(ctx)
	if err != nil {
		return err
	}
	e, err := db.TargetExtension(ctx, a.Org)
	if err != nil {
		return err
	}
	p, err := db.TargetProfile(ctx, a.Org)
	if err != nil {
		return err
	}
	v := targetView{CustomSchema: e.URN, TemplateAttribute: e.TemplateAttribute, LastDiscovery: p}
	return a.emit(cmd, v, func(w io.Writer) {
		fmt.Fprintf(w, "Custom extension:   %s\n", e.URN)
		fmt.Fprintf(w, "Template attribute: %s\n", e.TemplateAttribute)
		if p == nil || p.Discovery == nil {
			fmt.Fprintln(w, "Target: not discovered yet (every sync reads its /ServiceProviderConfig, /Schemas and /ResourceTypes first).")
			return
		}
		d := p.Discovery
		fmt.Fprintf(w, "Target as found by %s at %s:\n", p.RunID, p.DiscoveredAt.UTC().Format("2006-01-02 15:04:05Z"))
		fmt.Fprintf(w, "  PATCH %s, filter %s (max results %s), ETags %s\n", yesNo(d.Patch), yesNo(d.Filter), orDash(fmt.Sprint(d.MaxResults)), yesNo(d.ETag))
		if d.HasExtension(e.URN) {
			fmt.Fprintf(w, "  custom extension declared, attributes: %s\n", strings.Join(d.Schemas[schemaKey(d, e.URN)], ", "))
		} else {
			fmt.Fprintf(w, "  custom extension %s NOT declared: custom fields and templates cannot be written\n", e.URN)
		}
	})
}

// schemaKey is the spelling of urn the target used (URNs compare case-insensitively).
func schemaKey(d *scim.Discovery, urn string) string {
	for k := range d.Schemas {
		if strings.EqualFold(k, urn) {
			return k
		}
	}
	return urn
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
