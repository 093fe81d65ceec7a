package directory

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// guidString renders an AD objectGUID (16 bytes) in the canonical lower-case form
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx. AD stores the first three fields little-endian,
// so their bytes are reversed; the last two are in network order.
func guidString(b []byte) (string, error) {
	if len(b) != 16 {
		return "", fmt.Errorf("objectGUID has %d bytes, want 16", len(b))
	}
	o := []byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]}
	o = append(o, b[8:]...)
	h := hex.EncodeToString(o)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

// guidBytes is the inverse of guidString: the 16 bytes AD stores for a canonical GUID.
func guidBytes(s string) ([]byte, error) {
	h := strings.ReplaceAll(s, "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 || len(s) != 36 {
		return nil, fmt.Errorf("%q is not a GUID", s)
	}
	return append([]byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]}, b[8:]...), nil
}
