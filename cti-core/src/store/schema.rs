//! The store's schema, as numbered migrations. `PRAGMA user_version` holds the number
//! of the last migration applied; opening a store applies the missing ones in order,
//! each in its own transaction, so a store written by an older Hotline is upgraded in
//! place and a store from a newer one is refused rather than misread.

/// Each entry brings the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: calls, their timeline and legs, agent state intervals, recordings,
    // recording schedules, voicemail.
    r#"
    CREATE TABLE calls (
        id            INTEGER PRIMARY KEY,
        run           INTEGER NOT NULL,   -- Unix ms at the engine's time zero: one per engine run
        call          INTEGER NOT NULL,   -- the engine's call number within the run
        state         TEXT NOT NULL,      -- open | closed | cut (open when a crash stopped us)
        direction     TEXT NOT NULL,      -- inbound | outbound | internal
        caller        TEXT,
        called        TEXT,
        location      TEXT,
        vip           INTEGER NOT NULL DEFAULT 0,
        queue         TEXT,
        agent         TEXT,
        arrived_ms    INTEGER NOT NULL,
        ivr_entered_ms INTEGER,
        ivr_left_ms   INTEGER,
        queued_ms     INTEGER,
        rung_ms       INTEGER,
        answered_ms   INTEGER,
        ended_ms      INTEGER,
        released_by   TEXT,
        released_side TEXT,
        cause         INTEGER,
        outcome       TEXT,
        missed        TEXT,
        timed_out     INTEGER NOT NULL DEFAULT 0,
        holds         INTEGER NOT NULL DEFAULT 0,
        hold_ms       INTEGER NOT NULL DEFAULT 0,
        transfers     INTEGER NOT NULL DEFAULT 0,
        conferences   INTEGER NOT NULL DEFAULT 0,
        data          TEXT NOT NULL DEFAULT '{}',
        UNIQUE (run, call)
    );
    CREATE INDEX calls_arrived ON calls (arrived_ms);
    CREATE INDEX calls_caller ON calls (caller, arrived_ms);
    CREATE INDEX calls_agent ON calls (agent, arrived_ms);
    CREATE TABLE call_events (
        id      INTEGER PRIMARY KEY,
        run     INTEGER NOT NULL,
        call    INTEGER NOT NULL,
        at_ms   INTEGER NOT NULL,
        kind    TEXT NOT NULL,
        device  TEXT,
        agent   TEXT,
        detail  TEXT
    );
    CREATE INDEX call_events_call ON call_events (run, call, id);
    CREATE INDEX call_events_at ON call_events (kind, at_ms);
    CREATE TABLE call_legs (
        id          INTEGER PRIMARY KEY,
        run         INTEGER NOT NULL,
        call        INTEGER NOT NULL,
        device      TEXT NOT NULL,
        agent       TEXT,
        rung_ms     INTEGER,
        answered_ms INTEGER,
        ended_ms    INTEGER,
        outcome     TEXT NOT NULL
    );
    CREATE INDEX call_legs_call ON call_legs (run, call);
    CREATE TABLE agent_states (
        id      INTEGER PRIMARY KEY,
        agent   TEXT NOT NULL,
        state   TEXT NOT NULL,
        reason  TEXT,
        from_ms INTEGER NOT NULL,
        to_ms   INTEGER,            -- NULL while the agent is in this state
        cut     INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX agent_states_agent ON agent_states (agent, from_ms);
    CREATE INDEX agent_states_from ON agent_states (from_ms);
    CREATE TABLE recordings (
        id          INTEGER PRIMARY KEY,  -- the recording id the policy gave
        run         INTEGER,
        call        INTEGER,
        agent       TEXT,
        queue       TEXT,
        caller      TEXT,
        started_ms  INTEGER NOT NULL,
        duration_ms INTEGER,
        path        TEXT NOT NULL,
        format      TEXT NOT NULL,
        reason      TEXT NOT NULL,      -- policy | on_demand | scheduled
        finished    INTEGER NOT NULL DEFAULT 0,
        cut_short   INTEGER NOT NULL DEFAULT 0,
        dropped     INTEGER NOT NULL DEFAULT 0,
        retention   TEXT NOT NULL DEFAULT 'normal',
        tag         TEXT
    );
    CREATE INDEX recordings_started ON recordings (started_ms);
    CREATE TABLE recording_schedules (
        id          INTEGER PRIMARY KEY,
        agent       TEXT NOT NULL,
        from_ms     INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        note        TEXT
    );
    CREATE TABLE voicemail (
        id          INTEGER PRIMARY KEY,
        run         INTEGER,
        call        INTEGER,
        mailbox     TEXT NOT NULL,
        caller      TEXT,
        access      TEXT,
        queue       TEXT,
        left_ms     INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        path        TEXT NOT NULL,
        listened    INTEGER NOT NULL DEFAULT 0,
        note        TEXT
    );
    CREATE INDEX voicemail_left ON voicemail (left_ms);
    CREATE TABLE ivr_visits (
        id      INTEGER PRIMARY KEY,
        run     INTEGER NOT NULL,
        call    INTEGER NOT NULL,
        at_ms   INTEGER NOT NULL,
        flow    TEXT,
        node    TEXT NOT NULL
    );
    CREATE INDEX ivr_visits_at ON ivr_visits (at_ms);
    "#,
    // 2: a recording whose file could not be written, and one retention deleted.
    r#"
    ALTER TABLE recordings ADD COLUMN failed TEXT;       -- why the file could not be written
    ALTER TABLE recordings ADD COLUMN deleted_ms INTEGER; -- when retention deleted the file
    "#,
];
