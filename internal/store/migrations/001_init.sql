-- usersync schema v1. Every table is scoped by org so one database can serve several organizations.

CREATE TABLE rules (
    org               text   NOT NULL,
    id                bigint NOT NULL,
    priority          int    NOT NULL CHECK (priority >= 1),
    group_dn          text   NOT NULL,
    role              text   NOT NULL DEFAULT '',
    products          text[] NOT NULL DEFAULT '{}',
    user_group        text   NOT NULL DEFAULT '',
    device_groups     text[] NOT NULL DEFAULT '{}',
    settings_template text   NOT NULL DEFAULT '',
    custom_fields     jsonb  NOT NULL DEFAULT '{}',
    note              text   NOT NULL DEFAULT '',
    PRIMARY KEY (org, id),
    UNIQUE (org, priority)
);
CREATE SEQUENCE rule_ids;

CREATE TABLE mappings (
    org    text NOT NULL,
    target text NOT NULL,
    source text NOT NULL,
    PRIMARY KEY (org, target)
);

-- What the target knows (products, roles, templates); rules are validated against it.
CREATE TABLE catalog (
    org  text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('product', 'role', 'template')),
    name text NOT NULL,
    PRIMARY KEY (org, kind, name)
);

CREATE TABLE domains (
    org       text    NOT NULL,
    domain    text    NOT NULL,
    validated boolean NOT NULL,
    PRIMARY KEY (org, domain)
);

CREATE TABLE licenses (
    org     text NOT NULL,
    product text NOT NULL,
    seats   int  NOT NULL CHECK (seats >= 0),
    PRIMARY KEY (org, product)
);

-- One row per seat in use. Taken and released in the same transaction as the check.
CREATE TABLE seats (
    org         text        NOT NULL,
    product     text        NOT NULL,
    external_id text        NOT NULL,
    taken_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, product, external_id)
);

CREATE TABLE settings (
    org   text NOT NULL,
    key   text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (org, key)
);

CREATE TABLE runs (
    run_id      text PRIMARY KEY,
    org         text        NOT NULL,
    kind        text        NOT NULL,
    dry_run     boolean     NOT NULL DEFAULT false,
    status      text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    summary     jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_org_started ON runs (org, started_at DESC);

-- The directory as one run read it. Dropped when the run is old.
CREATE TABLE snapshot_users (
    run_id      text  NOT NULL,
    external_id text  NOT NULL,
    data        jsonb NOT NULL,
    PRIMARY KEY (run_id, external_id)
);

-- The per-user work a run planned; activities load items by (run_id, seq).
CREATE TABLE work_items (
    run_id      text  NOT NULL,
    seq         int   NOT NULL,
    external_id text  NOT NULL,
    user_name   text  NOT NULL,
    action      text  NOT NULL,
    item        jsonb NOT NULL,
    outcome     text  NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, seq)
);

-- Last state written to the target for each linked account.
CREATE TABLE user_state (
    org         text        NOT NULL,
    external_id text        NOT NULL,
    scim_id     text        NOT NULL,
    user_name   text        NOT NULL,
    active      boolean     NOT NULL,
    state       jsonb       NOT NULL,
    hash        text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, external_id)
);

-- The current failure of each failed user (one per user); cleared when the user succeeds.
CREATE TABLE failures (
    org          text        NOT NULL,
    external_id  text        NOT NULL,
    user_name    text        NOT NULL,
    type         text        NOT NULL,
    product      text        NOT NULL DEFAULT '',
    message      text        NOT NULL,
    since        timestamptz NOT NULL DEFAULT now(),
    last_attempt timestamptz NOT NULL DEFAULT now(),
    attempts     int         NOT NULL DEFAULT 1,
    run_id       text        NOT NULL,
    PRIMARY KEY (org, external_id)
);
CREATE INDEX failures_type ON failures (org, type);

-- Administrative activity history.
CREATE TABLE history (
    id      bigserial PRIMARY KEY,
    org     text        NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text        NOT NULL,
    type    text        NOT NULL,
    action  text        NOT NULL,
    status  text        NOT NULL,
    details jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX history_org_at ON history (org, at DESC);

-- Target groups (user group, device groups) and the memberships last written to them.
CREATE TABLE scim_groups (
    org     text NOT NULL,
    name    text NOT NULL,
    scim_id text NOT NULL,
    PRIMARY KEY (org, name)
);
CREATE TABLE group_members (
    org         text NOT NULL,
    name        text NOT NULL,
    scim_user   text NOT NULL,
    PRIMARY KEY (org, name, scim_user)
);
