package vocab

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// HeldDigest names a set of held suspensions by the externalIds of its users (opaque
// directory IDs, no personal data): the first 12 hex digits of the SHA-256 of the sorted IDs,
// one a line. An approval names the set it approves by its size and this digest, so that it is
// refused when the set changed since the admin looked at it.
func HeldDigest(externalIDs []string) string {
	ids := slices.Clone(externalIDs)
	slices.Sort(ids)
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return hex.EncodeToString(sum[:])[:12]
}
