package rules

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

func TestNormalizeDN(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"already canonical", "cn=sales,ou=groups,dc=example,dc=com", "cn=sales,ou=groups,dc=example,dc=com"},
		{"upper-case types and values", "CN=Sales,OU=Groups,DC=Example,DC=COM", "cn=sales,ou=groups,dc=example,dc=com"},
		{"spaces around separators", " CN = Sales , OU=Groups ,DC= example ", "cn=sales,ou=groups,dc=example"},
		{"spaces inside a value kept", "CN=Sales Team EU,DC=x", "cn=sales team eu,dc=x"},
		{"escaped comma", `CN=Doe\, John , OU=Users`, `cn=doe\, john,ou=users`},
		{"hex-escaped comma", `CN=Doe\2C John,DC=x`, `cn=doe\, john,dc=x`},
		{"lower-case hex-escaped comma", `CN=Doe\2c John,DC=x`, `cn=doe\, john,dc=x`},
		{"escaped equals needs no escape", `CN=a\=b\+c,DC=x`, `cn=a=b\+c,dc=x`},
		{"hex-escaped plus", `CN=a\2Bc,DC=x`, `cn=a\+c,dc=x`},
		{"invalid escapes: lenient", `CN=\S\a\l\e\s,DC=x`, `cn=\s\a\l\e\s,dc=x`},
		{"trailing escaped space kept", `CN=foo\ ,DC=x`, `cn=foo\ ,dc=x`},
		{"trailing hex-escaped space kept", `CN=foo\20,DC=x`, `cn=foo\ ,dc=x`},
		{"escaped backslash then space trimmed", `CN=foo\\ ,DC=x`, `cn=foo\\,dc=x`},
		{"leading space and hash escaped", `CN=\ x,CN=\#y,DC=x`, `cn=\ x,cn=\#y,dc=x`},
		{"special characters", `CN=\"q\"\;\<\>,DC=x`, `cn=\"q\"\;\<\>,dc=x`},
		{"multi-valued RDN", "CN=A + UID=b,DC=x", "cn=a+uid=b,dc=x"},
		{"multi-valued RDN sorted", "UID=b+CN=A,DC=x", "cn=a+uid=b,dc=x"},
		{"empty components dropped", "CN=A,,DC=x,", "cn=a,dc=x"},
		{"empty", "", ""},
		{"unicode value", "CN=Ärger,DC=x", "cn=ärger,dc=x"},
		{"hex-escaped UTF-8", `CN=\C3\84rger,DC=x`, "cn=ärger,dc=x"},
		{"not UTF-8 stays escaped", `CN=\FFx,DC=x`, `cn=\ffx,dc=x`},
		{"control character escaped", `CN=a\0Ab,DC=x`, `cn=a\0ab,dc=x`},
		{"OID type", "2.5.4.3=Sales,0.9.2342.19200300.100.1.25=x", "cn=sales,dc=x"},
		{"OID. prefix", "OID.2.5.4.11=Sales,DC=x", "ou=sales,dc=x"},
		{"semicolon separator (RFC 2253)", "CN=Sales;DC=x", "cn=sales,dc=x"},
		{"BER-encoded value", "CN=#0405536174616E,DC=x", "cn=satan,dc=x"}, // OCTET STRING "Satan"
		{"not a DN: lenient", "Sales", "sales"},
		{"not a DN: raw quote", `CN=a"b , DC=x`, `cn=a"b,dc=x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NormalizeDN(tt.in); got != tt.want {
				t.Errorf("NormalizeDN(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// Normalizing twice changes nothing.
			if got := NormalizeDN(NormalizeDN(tt.in)); got != tt.want {
				t.Errorf("NormalizeDN twice (%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestNormalizeDNMatchesEqualFold: two spellings normalize alike exactly when go-ldap's
// DN.EqualFold (distinguishedNameMatch, case-insensitive) says they are the same DN.
func TestNormalizeDNMatchesEqualFold(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"escaped vs hex-escaped comma", `cn=Sales\, EMEA,ou=Groups,dc=example,dc=com`, `CN=Sales\2C EMEA,OU=Groups,DC=example,DC=com`, true},
		{"hex case", `cn=Sales\2c EMEA,dc=x`, `cn=Sales\2C EMEA,dc=x`, true},
		{"UTF-8 vs hex-escaped", `cn=Müller,dc=x`, `cn=M\C3\BCller,dc=x`, true},
		{"UTF-8 case", `cn=MÜLLER,dc=x`, `cn=müller,dc=x`, true},
		{"multi-valued RDN order", `cn=Ann+uid=ann,dc=x`, `UID=ann + CN=Ann,dc=x`, true},
		{"escaped space vs hex", `cn=a\ ,dc=x`, `cn=a\20,dc=x`, true},
		{"needless escape", `cn=\61bc,dc=x`, `cn=abc,dc=x`, true},
		{"spaces around separators", `cn = Sales , dc = x`, `cn=Sales,dc=x`, true},
		{"escaped comma vs two RDNs", `cn=Doe\, John,dc=x`, `cn=Doe,cn=John,dc=x`, false},
		{"escaped plus vs multi-valued RDN", `cn=a\+uid=b,dc=x`, `cn=a+uid=b,dc=x`, false},
		{"different value", `cn=Sales EMEA,dc=x`, `cn=Sales APAC,dc=x`, false},
		{"trailing escaped space is significant", `cn=a\ ,dc=x`, `cn=a,dc=x`, false},
		{"RDN order is significant", `cn=a,ou=b,dc=x`, `ou=b,cn=a,dc=x`, false},
		{"umlaut is not its base letter", `cn=Müller,dc=x`, `cn=Muller,dc=x`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			da, err := ldap.ParseDN(tt.a)
			if err != nil {
				t.Fatalf("ParseDN(%q): %v", tt.a, err)
			}
			db, err := ldap.ParseDN(tt.b)
			if err != nil {
				t.Fatalf("ParseDN(%q): %v", tt.b, err)
			}
			if da.EqualFold(db) != tt.same {
				t.Fatalf("test case is wrong: EqualFold(%q, %q) = %v", tt.a, tt.b, !tt.same)
			}
			na, nb := NormalizeDN(tt.a), NormalizeDN(tt.b)
			if (na == nb) != tt.same {
				t.Errorf("NormalizeDN: %q -> %q, %q -> %q; same = %v, want %v", tt.a, na, tt.b, nb, na == nb, tt.same)
			}
		})
	}
}

func TestNormalizeDNDistinguishesEscapedComma(t *testing.T) {
	// "CN=Doe\, John" is one RDN; "CN=Doe, John" would be two components: they must differ.
	a := NormalizeDN("CN=Doe\\, John,DC=x")
	b := NormalizeDN("CN=Doe,John,DC=x")
	if a == b {
		t.Fatalf("escaped and unescaped comma normalize to the same DN %q", a)
	}
}

// FuzzNormalizeDN: the form is stable, valid UTF-8, and names the same DN as its input.
func FuzzNormalizeDN(f *testing.F) {
	for _, s := range []string{
		`cn=Sales\, EMEA,ou=Groups,dc=example,dc=com`, `CN=\C3\84rger+UID=x,DC=y`, `cn=\ a\ ,dc=x`,
		`cn=#0405536174616E,dc=x`, `CN=A,,DC=x,`, `cn=\FF\FE,dc=x`, `cn=ǅ ſ K İ,dc=x`, "cn=a\x00b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dn string) {
		n := NormalizeDN(dn)
		if NormalizeDN(n) != n {
			t.Fatalf("NormalizeDN(%q) = %q, but NormalizeDN of that = %q", dn, n, NormalizeDN(n))
		}
		if !utf8.ValidString(n) {
			t.Fatalf("NormalizeDN(%q) = %q: not UTF-8", dn, n)
		}
		orig, err := ldap.ParseDN(dn)
		if err != nil || strings.TrimSpace(dn) == "" {
			return
		}
		canon, err := ldap.ParseDN(n)
		if err != nil {
			t.Fatalf("NormalizeDN(%q) = %q does not parse: %v", dn, n, err)
		}
		if !orig.EqualFold(canon) && !hasOIDTypes(orig) {
			t.Fatalf("NormalizeDN(%q) = %q names another DN", dn, n)
		}
	})
}

func hasOIDTypes(dn *ldap.DN) bool {
	for _, r := range dn.RDNs {
		for _, a := range r.Attributes {
			if a.Type != "" && (a.Type[0] >= '0' && a.Type[0] <= '9' || strings.HasPrefix(strings.ToLower(a.Type), "oid.")) {
				return true
			}
		}
	}
	return false
}

func TestFoldRuneASCIIFastPathAgreesWithOrbits(t *testing.T) {
	for r := rune(0); r < 0x3000; r++ {
		got := foldRune(r)
		if foldRune(got) != got {
			t.Fatalf("foldRune(%q) = %q, not a fixed point", r, got)
		}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if foldRune(f) != got {
				t.Fatalf("foldRune(%q) = %q but foldRune(%q) = %q: same orbit", r, got, f, foldRune(f))
			}
		}
	}
}

func BenchmarkNormalizeDN(b *testing.B) {
	dn := "uid=ann.lee,OU=People,OU=Sales EMEA,DC=corp,DC=example,DC=com"
	for b.Loop() {
		NormalizeDN(dn)
	}
}

// FuzzSimpleDN: the shortcut gives what parsing gives.
func FuzzSimpleDN(f *testing.F) {
	for _, s := range []string{"cn=a,dc=x", " CN = A b , DC=x ", "cn=,dc=x", "cn=a=b,dc=x", "cn=a,,dc=x", "cn=a,", "=a", "a",
		"2.5.4.3=a", "cn-x=a", "cn=a, dc=x  ", "cn=  ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dn string) {
		if fast, ok := simpleDN(dn); ok && fast != normalizeParsed(dn) {
			t.Fatalf("simpleDN(%q) = %q, parsing gives %q", dn, fast, normalizeParsed(dn))
		}
	})
}
