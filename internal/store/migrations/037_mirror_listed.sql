-- When a read from a lagging sync mark last listed the kind's IDs (beyond): a read that
-- skips the listing (same cookie, same entries beyond the mark) lists again once this is
-- an hour old, so that a delete committed beyond the mark is seen within the hour. NULL:
-- since the last full read.
ALTER TABLE directory_sync ADD COLUMN listed_at timestamptz;
