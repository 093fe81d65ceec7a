package directory

import "testing"

func TestSIDAndPrimaryGroupKey(t *testing.T) {
	// S-1-5-21-1004336348-1177238915-682003330-1104, as AD stores it.
	user := []byte{1, 5, 0, 0, 0, 0, 0, 5,
		21, 0, 0, 0, 0xdc, 0xf4, 0xdc, 0x3b, 0x83, 0x3d, 0x2b, 0x46, 0x82, 0x8b, 0xa6, 0x28, 0x50, 0x04, 0, 0}
	if got, err := sidString(user); err != nil || got != "S-1-5-21-1004336348-1177238915-682003330-1104" {
		t.Fatalf("sidString = %q, %v", got, err)
	}
	if got := userPrimaryGroupKey(user, "513"); got != "<SID=S-1-5-21-1004336348-1177238915-682003330-513>" {
		t.Errorf("primary group key = %q", got)
	}
	for _, c := range []struct {
		sid []byte
		pg  string
	}{{user, ""}, {user, "x"}, {nil, "513"}, {user[:27], "513"}, {[]byte{1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0}, "513"}} {
		if got := userPrimaryGroupKey(c.sid, c.pg); got != "" {
			t.Errorf("userPrimaryGroupKey(% x, %q) = %q, want none", c.sid, c.pg, got)
		}
	}
}

func TestGUIDBytesInvertsGUIDString(t *testing.T) {
	raw := []byte{0x13, 0xfc, 0x7f, 0xfd, 0xa9, 0xd0, 0xb1, 0x44, 0x82, 0x67, 0x7d, 0xb0, 0x76, 0x07, 0xc4, 0x4f}
	s, err := guidString(raw)
	if err != nil || s != "fd7ffc13-d0a9-44b1-8267-7db07607c44f" {
		t.Fatalf("guidString = %q, %v", s, err)
	}
	if b, err := guidBytes(s); err != nil || string(b) != string(raw) {
		t.Errorf("guidBytes(%s) = % x, %v; want % x", s, b, err, raw)
	}
	for _, bad := range []string{"", "fd7ffc13d0a944b182677db07607c44f", "fd7ffc13-d0a9-44b1-8267-7db07607c44", "zd7ffc13-d0a9-44b1-8267-7db07607c44f"} {
		if _, err := guidBytes(bad); err == nil {
			t.Errorf("guidBytes(%q) succeeded", bad)
		}
	}
}
