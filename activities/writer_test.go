package activities

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/directory"
)

// The snapshot writer writes every batch in order, and a failed write stops the read (put
// reports it) and fails the snapshot (close reports it): a partial snapshot never looks whole.
func TestSnapshotWriterKeepsOrderAndReportsAFailedWrite(t *testing.T) {
	var got []string
	w := startWriter(func(us []directory.User) error {
		got = append(got, us[0].ExternalID)
		return nil
	})
	for _, id := range []string{"a", "b", "c", "d"} {
		require.NoError(t, w.put([]directory.User{{ExternalID: id}}))
	}
	require.NoError(t, w.close())
	require.Equal(t, []string{"a", "b", "c", "d"}, got)

	boom := errors.New("copy failed")
	w = startWriter(func([]directory.User) error { return boom })
	var putErr error
	require.Eventually(t, func() bool {
		putErr = w.put([]directory.User{{ExternalID: "x"}})
		return putErr != nil
	}, 5*time.Second, time.Millisecond, "the read stops soon after a write failed")
	require.ErrorIs(t, putErr, boom)
	require.ErrorIs(t, w.close(), boom)
}
