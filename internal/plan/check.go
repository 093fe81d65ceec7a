package plan

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/vocab"
)

// MaxValueLen is the longest attribute value (in characters) sent to the target.
const MaxValueLen = 256

// CheckUser finds the failures of a desired state that make provisioning pointless before
// any request is sent: invalid_user_data (missing or malformed identity fields, oversize
// values, control characters, invisible formatting characters in userName, email and
// names) and domain_not_validated (the email's domain, lower-cased, is not in validated).
// It returns nil when the user can be provisioned. Check adds the directory entry's own
// problems.
func CheckUser(d Desired, validated map[string]bool) *vocab.Failure {
	invalid := func(format string, args ...any) *vocab.Failure {
		return &vocab.Failure{Type: vocab.InvalidUserData, Message: fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(d.ExternalID) == "" {
		return invalid("externalId is empty (user %q)", d.UserName)
	}
	if strings.TrimSpace(d.UserName) == "" {
		return invalid("userName is empty (externalId %s)", d.ExternalID)
	}
	if strings.IndexFunc(d.UserName, unicode.IsSpace) >= 0 {
		return invalid("userName %q contains white space", d.UserName)
	}
	if strings.TrimSpace(d.Email) == "" {
		return invalid("email is empty (user %q)", d.UserName)
	}
	if why := emailProblem(d.Email); why != "" {
		return invalid("email %q is malformed: %s", shorten(d.Email), why)
	}
	// The messages name the field, never its value: names and mapped attributes are
	// personal data (the userName and email are shown above, as they identify the user).
	for _, f := range fields(d) {
		if n := utf8.RuneCountInString(f.value); n > MaxValueLen {
			return invalid("%s is too long: %d characters (max %d)", f.name, n, MaxValueLen)
		}
		if !utf8.ValidString(f.value) {
			return invalid("%s is not valid UTF-8", f.name)
		}
		if strings.IndexFunc(f.value, unicode.IsControl) >= 0 {
			return invalid("%s contains control characters", f.name)
		}
	}
	for _, f := range []struct {
		name, value string
		joiners     bool
	}{{"userName", d.UserName, false}, {"email", d.Email, false},
		{"givenName", d.GivenName, true}, {"familyName", d.FamilyName, true}, {"displayName", d.DisplayName, true}} {
		if i := strings.IndexFunc(f.value, func(r rune) bool { return invisible(r, f.joiners) }); i >= 0 {
			r, _ := utf8.DecodeRuneInString(f.value[i:])
			return invalid("%s contains an invisible formatting character (U+%04X)", f.name, r)
		}
	}
	domain := strings.ToLower(d.Email[strings.LastIndexByte(d.Email, '@')+1:])
	if !validated[domain] {
		return &vocab.Failure{Type: vocab.DomainNotValidated,
			Message: fmt.Sprintf("email domain %q is not a validated domain of the organization (email %q)", domain, d.Email)}
	}
	return nil
}

// invisible reports a format character (Unicode category Cf: U+202E RIGHT-TO-LEFT
// OVERRIDE, U+200B ZERO WIDTH SPACE, U+00AD SOFT HYPHEN, U+FEFF, ...): invisible, it makes
// a name or address look like another. With joiners, ZERO WIDTH NON-JOINER and ZERO WIDTH
// JOINER (U+200C, U+200D) are allowed: Persian, Arabic and Indic names are written with
// them. Never in a userName or email.
func invisible(r rune, joiners bool) bool {
	if joiners && (r == '\u200C' || r == '\u200D') {
		return false
	}
	return unicode.Is(unicode.Cf, r)
}

// CheckDirectoryUser fails a user whose directory entry had values the reader could not
// take as the directory holds them (directory.User.Problems: NUL, invalid UTF-8, oversize,
// malformed objectGUID, several mail values): invalid_user_data, naming the attributes and
// never their values. It returns nil for a user without problems.
func CheckDirectoryUser(u directory.User) *vocab.Failure {
	if len(u.Problems) == 0 {
		return nil
	}
	return &vocab.Failure{Type: vocab.InvalidUserData,
		Message: "directory entry has values that cannot be used: " + strings.Join(u.Problems, "; ")}
}

// Check is every check of an in-scope user before any request is sent: its directory
// entry (CheckDirectoryUser), then its desired state d (CheckUser).
func Check(u directory.User, d Desired, validated map[string]bool) *vocab.Failure {
	if f := CheckDirectoryUser(u); f != nil {
		return f
	}
	return CheckUser(d, validated)
}

type field struct{ name, value string }

// fields lists every string value of d with the name an admin would recognise.
func fields(d Desired) []field {
	fs := []field{
		{"externalId", d.ExternalID}, {"userName", d.UserName}, {"email", d.Email},
		{"givenName", d.GivenName}, {"familyName", d.FamilyName}, {"displayName", d.DisplayName},
		{"role", d.Role}, {"userGroup", d.UserGroup}, {"settingsTemplate", d.SettingsTemplate},
	}
	for _, p := range d.Products {
		fs = append(fs, field{"products", p})
	}
	for _, g := range d.DeviceGroups {
		fs = append(fs, field{"deviceGroups", g})
	}
	for _, k := range sortedKeys(d.Enterprise) {
		fs = append(fs, field{"enterprise " + k, d.Enterprise[k]})
	}
	for _, k := range sortedKeys(d.Custom) {
		fs = append(fs, field{"custom " + k, d.Custom[k]})
	}
	return fs
}

// emailProblem says what is wrong with an address, or "" if it looks deliverable.
// Deliberately simple: one '@', a local part without spaces, a domain of valid labels.
func emailProblem(email string) string {
	at := strings.LastIndexByte(email, '@')
	switch {
	case at < 0:
		return "no @"
	case strings.Count(email, "@") > 1:
		return "more than one @"
	case at == 0:
		return "nothing before @"
	case at == len(email)-1:
		return "no domain after @"
	}
	local, domain := email[:at], email[at+1:]
	if strings.IndexFunc(local, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "white space before @"
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" {
			return "empty label in domain " + fmt.Sprintf("%q", domain)
		}
		if strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Sprintf("domain label %q starts or ends with '-'", label)
		}
		if strings.IndexFunc(label, func(r rune) bool { return r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) }) >= 0 {
			return fmt.Sprintf("invalid character in domain %q", domain)
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// shorten keeps messages readable when a value is far too long.
func shorten(v string) string {
	const keep = 40
	if utf8.RuneCountInString(v) <= keep {
		return v
	}
	return string([]rune(v)[:keep]) + "…"
}
