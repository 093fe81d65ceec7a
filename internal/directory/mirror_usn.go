package directory

import (
	"context"
	"time"
)

func (r *Reader) syncUSN(ctx context.Context, tx MirrorTx, server string, kinds []mirrorKind, fullEvery time.Duration) (SyncStats, error) {
	return SyncStats{}, ErrNoContentSync
}
