"""What the documents store holds, read straight from the embedded
store's file (documents.db) — for the clean-up tests, which must see that
documents are really gone, not merely hidden by the API. With documents on
a MongoDB-protocol server (MONGODB_URL) there is no file: docs_embedded()
is False and the callers check through the API only."""
import sqlite3

# enum iot_docs_coll (src/store/docs.h): the SQLite table keeps the number
COLLS = {"configs": 0, "events": 1, "rules": 2, "alerts": 3, "reports": 4, "prefs": 5,
         "metadata": 6}


def docs_embedded(server):
    return "MONGODB_URL" not in server.env


def count_docs(server, coll, **where):
    """Documents of `coll` whose header columns (user_id, device_id, id, k1)
    equal the given values."""
    db = sqlite3.connect(f"file:{server.data_dir / 'documents.db'}?mode=ro", uri=True, timeout=10)
    try:
        sql, args = "SELECT COUNT(*) FROM docs WHERE coll = ?", [COLLS[coll]]
        for column, value in where.items():
            assert column in ("user_id", "device_id", "id", "k1"), column
            sql += f" AND {column} = ?"
            args.append(value)
        return db.execute(sql, args).fetchone()[0]
    finally:
        db.close()


def wait_for_doc(server, coll, timeout=10, **where):
    """Waits until such a document is stored (the event log writes off the
    request path); True when it is."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_docs(server, coll, **where):
            return True
        time.sleep(0.02)
    return False
