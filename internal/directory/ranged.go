package directory

import (
	"fmt"
	"strconv"
	"strings"
)

// attrRange is an AD ranged attribute description, e.g. member;range=0-1499 or
// member;range=1500-* (the last range).
type attrRange struct {
	Attr string // e.g. member
	Low  int
	High int  // -1 when Last
	Last bool // the server sent the final values ("*")
}

// parseRangedAttr parses an attribute description of the form name;range=low-high.
// ok is false when desc carries no range option.
func parseRangedAttr(desc string) (r attrRange, ok bool, err error) {
	name, opts, found := strings.Cut(desc, ";")
	if !found {
		return attrRange{}, false, nil
	}
	for _, opt := range strings.Split(opts, ";") {
		spec, isRange := cutPrefixFold(opt, "range=")
		if !isRange {
			continue
		}
		lowS, highS, dash := strings.Cut(spec, "-")
		if !dash {
			return attrRange{}, true, fmt.Errorf("attribute %q: range %q has no '-'", desc, spec)
		}
		low, err := strconv.Atoi(lowS)
		if err != nil || low < 0 {
			return attrRange{}, true, fmt.Errorf("attribute %q: range low %q is not a number", desc, lowS)
		}
		r = attrRange{Attr: name, Low: low, High: -1}
		if highS == "*" {
			r.Last = true
			return r, true, nil
		}
		high, err := strconv.Atoi(highS)
		if err != nil || high < low {
			return attrRange{}, true, fmt.Errorf("attribute %q: range high %q is not a number >= %d", desc, highS, low)
		}
		r.High = high
		return r, true, nil
	}
	return attrRange{}, false, nil
}

// next is the attribute description that asks for the values after r: size of them, or
// (size <= 0) all, which the server cuts to its limit.
func (r attrRange) next(size int) string {
	if size > 0 {
		return fmt.Sprintf("%s;range=%d-%d", r.Attr, r.High+1, r.High+size)
	}
	return fmt.Sprintf("%s;range=%d-*", r.Attr, r.High+1)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
