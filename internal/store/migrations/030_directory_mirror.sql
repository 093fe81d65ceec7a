-- A persistent copy of each organization's directory entries (users and groups, as the
-- read asks for them), kept current by incremental reads (RFC 4533 content
-- synchronization): a run's snapshot is taken from it instead of reading the whole
-- directory. A full read replaces it.
CREATE TABLE directory_mirror (
    org   text  NOT NULL,
    kind  text  NOT NULL CHECK (kind IN ('user', 'group')),
    uuid  text  NOT NULL,  -- the entry's entryUUID
    dn    text  NOT NULL,
    entry bytea NOT NULL,  -- the attributes as JSON (values base64: they may hold any byte)
    PRIMARY KEY (org, kind, uuid)
);

-- Where each organization's incremental reads stand: the server's cookie, what the
-- mirror was read with (scope: base, filters, attributes; another scope needs a full
-- read) and when the last full read was.
CREATE TABLE directory_sync (
    org        text        NOT NULL,
    kind       text        NOT NULL,
    scope      text        NOT NULL,
    cookie     bytea,
    full_at    timestamptz NOT NULL,
    PRIMARY KEY (org, kind)
);
