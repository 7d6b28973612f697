/* registry_sqlite_schema.c — the SQLite registry's schema: its migrations,
 * the checks that must pass before a step runs and the notes logged after
 * one (sqlite_db.c runs them; registry_sqlite.c names them in its schema).
 * Data only. */
#include "store/sqlite/registry_sqlite_int.h"

/* Append-only: never edit a shipped step, add a new one. Times are INTEGER
 * ms; "never" (0) is stored as NULL so that comparisons such as
 * last_seen >= ? are false for it. An empty api_key_hash is stored as NULL
 * so that it is never unique-conflicting nor matched by a lookup. */
const char *const iot_reg_sqlite_migrations[IOT_REG_SQLITE_N_MIGRATIONS] = {
    /* 1: initial schema */
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user_id TEXT NOT NULL UNIQUE,"
    " username TEXT NOT NULL UNIQUE,"
    " email TEXT NOT NULL UNIQUE,"
    " password_hash TEXT NOT NULL,"
    " is_active INTEGER NOT NULL DEFAULT 1,"
    " is_admin INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " last_login INTEGER);"
    "CREATE TABLE devices ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " description TEXT NOT NULL DEFAULT '',"
    " device_type TEXT NOT NULL DEFAULT '',"
    " status TEXT NOT NULL DEFAULT 'active',"
    " location TEXT NOT NULL DEFAULT '',"
    " firmware_version TEXT NOT NULL DEFAULT '',"
    " hardware_version TEXT NOT NULL DEFAULT '',"
    " api_key_hash TEXT UNIQUE,"
    " api_key_prefix TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " last_seen INTEGER,"
    " UNIQUE (user_id, name));"
    "CREATE INDEX devices_by_user ON devices(user_id);"
    "CREATE INDEX devices_by_status ON devices(status);"
    "CREATE INDEX devices_by_type ON devices(device_type);"
    "CREATE TABLE device_groups ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " description TEXT NOT NULL DEFAULT '',"
    " color TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " UNIQUE (user_id, name));"
    "CREATE INDEX groups_by_user ON device_groups(user_id);"
    "CREATE TABLE device_group_members ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " group_id INTEGER NOT NULL REFERENCES device_groups(id) ON DELETE CASCADE,"
    " device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    " added_at INTEGER NOT NULL,"
    " UNIQUE (group_id, device_id));"
    /* (group_id) alone: its implicit rowid suffix yields membership order. */
    "CREATE INDEX members_by_group ON device_group_members(group_id);"
    "CREATE INDEX members_by_device ON device_group_members(device_id);",
    /* 2: usernames and emails unique regardless of ASCII case (SQLite's
     * lower() folds ASCII only: so does PostgreSQL's under COLLATE "C", so
     * both backends agree). The lookups compare lower() = lower() and so
     * use these indexes. */
    "CREATE UNIQUE INDEX users_username_nocase ON users(lower(username));"
    "CREATE UNIQUE INDEX users_email_nocase ON users(lower(email));",
    /* 3: who set a device's status last (registry.h, iot_device_held_off).
     * Rows from before: never seen and inactive is a new device; active is
     * taken as the device's own doing; a used device that is off may have
     * been switched off by an admin, and the admin API was the only way a
     * person could: it stays off until a person switches it back on. */
    "ALTER TABLE devices ADD COLUMN status_set_by TEXT NOT NULL DEFAULT 'new'"
    " CHECK (status_set_by IN ('new', 'device', 'admin'));"
    "UPDATE devices SET status_set_by = CASE"
    " WHEN status = 'active' THEN 'device'"
    " WHEN status = 'inactive' AND last_seen IS NULL THEN 'new'"
    " ELSE 'admin' END;",
    /* 4: pending telemetry clean-ups of deleted devices and users
     * (registry.h, ops version 3), written in the delete's transaction.
     * Ids are never reused, so (kind, target_id) names one deletion. */
    "CREATE TABLE telemetry_cleanups ("
    " kind TEXT NOT NULL CHECK (kind IN ('device', 'user')),"
    " target_id INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at INTEGER NOT NULL,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY (kind, target_id));"
    "CREATE INDEX telemetry_cleanups_due ON telemetry_cleanups(next_at, kind, target_id);",
};

/* Before step 2: accounts that differ only in case would make the unique
 * indexes fail. Picking one silently would lock the other out, so start-up
 * stops and names them; the operator renames or merges them. */
const char *const iot_reg_sqlite_migration_checks[IOT_REG_SQLITE_N_MIGRATIONS] = {
    /* group_concat over no duplicates is NULL, and so is the message */
    [1] = "SELECT m FROM (SELECT 'usernames or emails that differ only in case, now required"
          " to be unique regardless of case: ' || group_concat(v, ', ') || '; rename all but"
          " one of each (UPDATE users SET username = ... / email = ...) and start again' AS m"
          " FROM (SELECT group_concat(quote(username), ' = ') AS v FROM users"
          " GROUP BY lower(username) HAVING COUNT(*) > 1"
          " UNION ALL SELECT group_concat(quote(email), ' = ') FROM users"
          " GROUP BY lower(email) HAVING COUNT(*) > 1)) WHERE m IS NOT NULL",
};

/* After step 3: the used devices it took as switched off by an admin (an
 * admin may have done it; they may also have switched themselves off, which
 * was allowed before). The rule errs on the side of a person confirming;
 * this says so once, with how to switch them on. */
const char *const iot_reg_sqlite_migration_notes[IOT_REG_SQLITE_N_MIGRATIONS] = {
    [2] = "SELECT n || ' used device(s) that were inactive or in maintenance are now taken as"
          " switched off by an admin (status_set_by = ''admin'', ids ' || ids || CASE WHEN n > 20"
          " THEN ', ...' ELSE '' END || '): their API keys are refused and they cannot switch"
          " themselves on until an admin does, with PUT /api/v1/admin/devices/{id}/status"
          " {\"status\": \"active\"} (see docs/OPERATIONS.md)' FROM (SELECT COUNT(*) AS n,"
          " (SELECT group_concat(id, ', ') FROM (SELECT id FROM devices"
          " WHERE status_set_by = 'admin' ORDER BY id LIMIT 20)) AS ids"
          " FROM devices WHERE status_set_by = 'admin') WHERE n > 0",
};

/* The count in registry_sqlite_int.h must follow the array: a step added
 * without raising it would be cut off silently otherwise. */
_Static_assert(sizeof iot_reg_sqlite_migrations / sizeof iot_reg_sqlite_migrations[0] ==
                   IOT_REG_SQLITE_N_MIGRATIONS,
               "IOT_REG_SQLITE_N_MIGRATIONS must count iot_reg_sqlite_migrations");
