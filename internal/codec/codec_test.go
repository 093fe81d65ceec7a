package codec

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/usersync/usersync/internal/orgs"
)

func newCodec(t *testing.T) (Codec, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "payload.keys")
	_, err := orgs.AddKey(path)
	require.NoError(t, err)
	keys, err := orgs.LoadKeyring(path)
	require.NoError(t, err)
	return Codec{Keys: keys}, path
}

// A value goes through the data converter as ciphertext and comes back whole; payloads
// written before the codec (plain JSON) still decode; a changed ciphertext does not.
func TestPayloadsAreSealedAndOpened(t *testing.T) {
	cd, path := newCodec(t)
	dc := cd.DataConverter()
	type signal struct{ Actor, User string }
	in := signal{Actor: "alice", User: "bob@acme.test"}
	p, err := dc.ToPayload(in)
	require.NoError(t, err)
	require.Equal(t, Encoding, string(p.Metadata[converter.MetadataEncoding]))
	require.False(t, bytes.Contains(p.Data, []byte("bob@acme.test")))
	var out signal
	require.NoError(t, dc.FromPayload(p, &out))
	require.Equal(t, in, out)

	old, err := converter.GetDefaultDataConverter().ToPayload(in)
	require.NoError(t, err)
	out = signal{}
	require.NoError(t, dc.FromPayload(old, &out), "a history from before the codec still replays")
	require.Equal(t, in, out)

	p.Data[len(p.Data)-1] ^= 1
	require.Error(t, dc.FromPayload(p, &out))

	// After a rotation (a new current key), what the old key sealed still opens.
	p, err = dc.ToPayload(in)
	require.NoError(t, err)
	_, err = orgs.AddKey(path)
	require.NoError(t, err)
	rotated, err := orgs.LoadKeyring(path)
	require.NoError(t, err)
	out = signal{}
	require.NoError(t, Codec{Keys: rotated}.DataConverter().FromPayload(p, &out))
	require.Equal(t, in, out)
}

// An organization's secret sealed with the same key file does not open as a payload.
func TestASecretIsNotAPayload(t *testing.T) {
	cd, _ := newCodec(t)
	id, sealed, err := cd.Keys.Seal("acme", "token", "s3cret")
	require.NoError(t, err)
	p := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding), keyIDKey: []byte(id)}, Data: sealed}
	var v string
	require.Error(t, cd.DataConverter().FromPayload(p, &v), "it does not convert")
	out, err := cd.Decode([]*commonpb.Payload{p})
	require.NoError(t, err, "the codec passes it on sealed, for the reader to reject")
	require.Equal(t, Encoding, string(out[0].Metadata[converter.MetadataEncoding]))
}

// Requiring encryption, a payload that is not sealed (sent without the key) decodes to a marker
// nothing converts, its content dropped; sealed ones still open.
func TestRequireEncryptionRefusesUnsealedPayloads(t *testing.T) {
	cd, _ := newCodec(t)
	cd.RequireEncryption = true
	plain, err := converter.GetDefaultDataConverter().ToPayload("alice")
	require.NoError(t, err)
	out, err := cd.Decode([]*commonpb.Payload{plain})
	require.NoError(t, err, "refused, not an error: the SDK would drop a signal that fails to decode")
	require.Equal(t, EncodingRefused, string(out[0].Metadata[converter.MetadataEncoding]))
	require.Empty(t, out[0].Data)
	var v string
	require.Error(t, cd.DataConverter().FromPayload(plain, &v), "nothing converts it")

	sealed, err := cd.DataConverter().ToPayload("bob")
	require.NoError(t, err)
	require.NoError(t, cd.DataConverter().FromPayload(sealed, &v))
	require.Equal(t, "bob", v)
}
