package directory

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// sidString renders a binary security identifier (AD's objectSid) as S-1-5-21-...:
// revision, 48-bit big-endian authority, then little-endian 32-bit sub-authorities.
func sidString(b []byte) (string, error) {
	if len(b) < 8 || len(b) != 8+4*int(b[1]) {
		return "", fmt.Errorf("objectSid has %d bytes, not a SID", len(b))
	}
	var auth uint64
	for _, x := range b[2:8] {
		auth = auth<<8 | uint64(x)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "S-%d-%d", b[0], auth)
	for i := 8; i < len(b); i += 4 {
		s.WriteString("-" + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[i:])), 10))
	}
	return s.String(), nil
}

// primaryGroupKey is the member key under which a group with SID sid holds the users
// whose primaryGroupID is its RID. AD leaves those users out of the group's member
// attribute (and out of LDAP_MATCHING_RULE_IN_CHAIN), so the reader adds this key as
// one more member of the group and looks it up beside each user's DN. AD's own
// "<SID=...>" form cannot be a normalized member DN, so it collides with none.
func primaryGroupKey(sid string) string { return primaryGroupKeyPrefix + sid + ">" }

// primaryGroupKeyPrefix begins every primaryGroupKey.
const primaryGroupKeyPrefix = "<SID="

// userPrimaryGroupKey is the primaryGroupKey of the user's primary group: the user's own
// SID (objectSid) with its RID replaced by primaryGroupID, i.e. a group of the user's
// domain. "" when either value is missing or malformed: no primary group then.
func userPrimaryGroupKey(objectSid []byte, primaryGroupID string) string {
	sid, err := sidString(objectSid)
	if err != nil {
		return ""
	}
	rid, err := strconv.ParseUint(strings.TrimSpace(primaryGroupID), 10, 32)
	if err != nil {
		return ""
	}
	domain := sid[:strings.LastIndexByte(sid, '-')]
	if strings.Count(domain, "-") < 3 { // S-1-5-<rid>: no domain part
		return ""
	}
	return primaryGroupKey(domain + "-" + strconv.FormatUint(rid, 10))
}
