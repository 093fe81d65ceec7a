// Package codec encrypts what usersync puts into Temporal: workflow and activity inputs and
// results, signals, queries, heartbeat details, local activity markers, and the messages of
// failures. Whoever can read the Temporal history (the UI, an export, the server's database)
// then sees ciphertext; the codec server (`starter codec-server`) decrypts for the UI users
// allowed to hold the key.
//
// Payloads are sealed with AES-256-GCM under the current key of a key file (the format of the
// organizations' secrets keys, see orgs.Keyring), the key ID kept in the payload's metadata so
// keys can be rotated; a payload without our encoding is passed through, so that histories
// written before the codec was turned on still replay.
package codec

import (
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload.
const (
	Encoding = "binary/encrypted"
	keyIDKey = "encryption-key-id"
)

// EncodingRefused marks, in place of its content, a payload that arrived unencrypted at a
// codec that requires encryption. Nothing converts it: the workflows' strict decoding rejects
// and records it (a signal, an update), any other read fails.
const EncodingRefused = "binary/refused-unencrypted"

// The additional data of every payload: a ciphertext of another kind (an organization's
// secret) does not open as a payload.
const aadOrg, aadField = "temporal", "payload"

// Keys seal and open under a rotating key file (orgs.Keyring). Declared here so the workflows,
// which link the codec, do not link the organizations' settings and the directory client.
type Keys interface {
	Seal(org, field, plaintext string) (keyID string, ciphertext []byte, err error)
	Open(org, field, keyID string, ciphertext []byte) (string, error)
}

// Codec is the payload codec over a key file.
type Codec struct {
	Keys Keys
	// RequireEncryption refuses payloads that are not sealed (USERSYNC_PAYLOAD_REQUIRE_ENCRYPTION):
	// someone without the key (the UI, the temporal CLI) cannot make the worker act.
	RequireEncryption bool
}

var _ converter.PayloadCodec = Codec{}

// Encode seals each payload (the whole payload, metadata included) under the current key.
func (c Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		b, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("payload codec: %w", err)
		}
		id, sealed, err := c.Keys.Seal(aadOrg, aadField, string(b))
		if err != nil {
			return nil, fmt.Errorf("payload codec: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding), keyIDKey: []byte(id)},
			Data:     sealed,
		}
	}
	return out, nil
}

// Decode opens the payloads this codec sealed and passes the others through. A sealed
// payload it cannot open (another key, changed bytes) is passed through sealed too, not
// made an error: the SDK drops a signal whose decoding fails and waits for the next one on
// that channel, which would stall the organization's workflow; sealed, the workflow's
// strict decoding rejects and records it (an unknown encoding), and any other value fails
// to convert where it is read.
func (c Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		out[i] = p
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			if c.RequireEncryption {
				out[i] = &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(EncodingRefused)}}
			}
			continue
		}
		plain, err := c.Keys.Open(aadOrg, aadField, string(p.GetMetadata()[keyIDKey]), p.GetData())
		if err != nil {
			continue
		}
		var q commonpb.Payload
		if err := proto.Unmarshal([]byte(plain), &q); err != nil {
			continue
		}
		out[i] = &q
	}
	return out, nil
}

// DataConverter is Temporal's default data converter with payloads encrypted.
func (c Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter also encrypts failure messages and stack traces (they may name users).
func (c Codec) FailureConverter() converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter: c.DataConverter(), EncodeCommonAttributes: true})
}
