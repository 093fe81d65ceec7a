package rules

import "testing"

func TestNormalizeDN(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"already canonical", "cn=sales,ou=groups,dc=example,dc=com", "cn=sales,ou=groups,dc=example,dc=com"},
		{"upper-case types and values", "CN=Sales,OU=Groups,DC=Example,DC=COM", "cn=sales,ou=groups,dc=example,dc=com"},
		{"spaces around separators", " CN = Sales , OU=Groups ,DC= example ", "cn=sales,ou=groups,dc=example"},
		{"spaces inside a value kept", "CN=Sales Team EU,DC=x", "cn=sales team eu,dc=x"},
		{"escaped comma kept", "CN=Doe\\, John , OU=Users", "cn=doe\\, john,ou=users"},
		{"escaped equals and plus kept", "CN=a\\=b\\+c,DC=x", "cn=a\\=b\\+c,dc=x"},
		{"trailing escaped space kept", "CN=foo\\ ,DC=x", "cn=foo\\ ,dc=x"},
		{"escaped backslash then space trimmed", "CN=foo\\\\ ,DC=x", "cn=foo\\\\,dc=x"},
		{"hex escape lower-cased", "CN=Doe\\2C John,DC=x", "cn=doe\\2c john,dc=x"},
		{"multi-valued RDN", "CN=A + UID=b,DC=x", "cn=a+uid=b,dc=x"},
		{"empty components dropped", "CN=A,,DC=x,", "cn=a,dc=x"},
		{"empty", "", ""},
		{"unicode value", "CN=Ärger,DC=x", "cn=ärger,dc=x"},
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

func TestNormalizeDNDistinguishesEscapedComma(t *testing.T) {
	// "CN=Doe\, John" is one RDN; "CN=Doe, John" would be two components: they must differ.
	a := NormalizeDN("CN=Doe\\, John,DC=x")
	b := NormalizeDN("CN=Doe,John,DC=x")
	if a == b {
		t.Fatalf("escaped and unescaped comma normalize to the same DN %q", a)
	}
}
