package main

import "testing"

// Stored values come from directories and targets: escape sequences are shown, not obeyed.
func TestPrintableEscapesWhatWouldDriveTheTerminal(t *testing.T) {
	for in, want := range map[string]string{
		"ann@example.com":            "ann@example.com",
		"Zoë Ünal":                   "Zoë Ünal",
		"evil\x1b[2J\x1b[31m@x.test": `evil\x1b[2J\x1b[31m@x.test`,
		"tab\there":                  `tab\there`,
		"csi\u009b31m":               `csi\u009b31m`,
		"rtl\u202eoverride@x.test":   `rtl\u202eoverride@x.test`,
		"new\nline":                  `new\nline`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
