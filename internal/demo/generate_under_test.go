package demo

import (
	"strings"
	"testing"
)

// GenerateUnder is Generate's organization moved below a base: the same users and groups, each
// entry (but the base's) in the base's own People or Groups container, rules on its own groups.
func TestGenerateUnderMovesTheOrganizationBelowItsBase(t *testing.T) {
	const n, base = 450, "ou=org0007," + Suffix
	flat, d := Generate(n, 7), GenerateUnder(n, 7, base)
	if d.Suffix != base {
		t.Errorf("Suffix %q, want %q", d.Suffix, base)
	}
	if d.Entries[0].DN != base || value(d.Entries[0], "ou") != "org0007" {
		t.Errorf("first entry %s (ou %q), want the base", d.Entries[0].DN, value(d.Entries[0], "ou"))
	}
	if len(d.Entries) != len(flat.Entries) { // the base instead of the suffix
		t.Fatalf("%d entries, want %d", len(d.Entries), len(flat.Entries))
	}
	people, groups := "ou=People,"+base, "ou=Groups,"+base
	for i, e := range d.Entries[1:] {
		want := strings.ReplaceAll(flat.Entries[i+1].DN, Suffix, base)
		if e.DN != want {
			t.Fatalf("entry %d: %s, want %s", i+1, e.DN, want)
		}
		if strings.HasPrefix(e.DN, "uid=") && !strings.HasSuffix(e.DN, ","+people) ||
			strings.HasPrefix(e.DN, "cn=") && !strings.HasSuffix(e.DN, ","+groups) {
			t.Errorf("%s is outside its container", e.DN)
		}
		for _, m := range values(e, "member") {
			if !strings.HasSuffix(m, ","+people) && !strings.HasSuffix(m, ","+groups) {
				t.Errorf("%s has member %s outside the base", e.DN, m)
			}
		}
	}
	if len(d.Rules) != len(flat.Rules) {
		t.Fatalf("%d rules, want %d", len(d.Rules), len(flat.Rules))
	}
	for i, r := range d.Rules {
		if want := strings.ReplaceAll(flat.Rules[i].GroupDN, Suffix, base); r.GroupDN != want {
			t.Errorf("rule %d on %s, want %s", r.Priority, r.GroupDN, want)
		}
	}
	if SuffixEntry().DN != Suffix {
		t.Errorf("SuffixEntry is %s", SuffixEntry().DN)
	}
}
