package scim

import (
	"fmt"
	"strings"
)

// DefaultTemplateAttribute is the custom-extension attribute that holds the settings template.
const DefaultTemplateAttribute = "settingsTemplate"

// Extension says where an organization's custom fields and settings template live in the
// target: the custom extension's schema URN and the template's attribute name (spec section
// 4). The zero value means usersync's defaults.
type Extension struct {
	URN               string `json:"urn,omitempty"`
	TemplateAttribute string `json:"templateAttribute,omitempty"`
}

// Resolved fills in the defaults.
func (e Extension) Resolved() Extension {
	if e.URN == "" {
		e.URN = DefaultCustomSchema
	}
	if e.TemplateAttribute == "" {
		e.TemplateAttribute = DefaultTemplateAttribute
	}
	return e
}

// Validate checks the settings before they are saved: a schema URN (RFC 7643 section 3.3:
// "urn:" and at least two more colon-separated parts, no spaces, no attribute path) and an
// attribute name as RFC 7643 section 2.1 allows (ALPHA *(nameChar)).
func (e Extension) Validate() error {
	if e.URN != "" {
		parts := strings.Split(e.URN, ":")
		if !strings.EqualFold(parts[0], "urn") || len(parts) < 3 || strings.ContainsAny(e.URN, " \t\"[]") {
			return fmt.Errorf("custom-schema %q: not a schema URN (e.g. urn:ietf:params:scim:schemas:extension:acme:2.0:User)", e.URN)
		}
		for _, p := range parts {
			if p == "" {
				return fmt.Errorf("custom-schema %q: empty part between colons", e.URN)
			}
		}
	}
	if e.TemplateAttribute != "" && !ValidAttributeName(e.TemplateAttribute) {
		return fmt.Errorf("template-attribute %q: not a SCIM attribute name (a letter, then letters, digits, '-' or '_')", e.TemplateAttribute)
	}
	return nil
}

// ValidAttributeName reports whether s is an RFC 7643 attribute name: ALPHA *(ALPHA / DIGIT / "-" / "_").
func ValidAttributeName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		alpha := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !alpha {
			return false
		}
		if !alpha && !(r >= '0' && r <= '9') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}
