/* cql_result.c — RESULT messages (native_protocol_v4.spec 4.2.5): void,
 * rows (metadata, paging state, cells validated up front and read without
 * copying), set_keyspace, prepared (v4 bind metadata with pk indices) and
 * schema_change. Metadata takes one heap block per message part: column
 * specs, their type trees and pk indices, sized by a validating first pass. */
#include "cql/cql_msg.h"

#include <stdalign.h>
#include <stdlib.h>

#include "cql/cql_be.h"

/* Smallest encoded column spec: name [string] + type id [short], plus
 * keyspace and table [string]s unless the table spec is global. */
#define MIN_COL_SPEC_GLOBAL 4u
#define MIN_COL_SPEC_LOCAL 8u

static int read_col_spec_names(struct cql_reader *r, bool global, struct cql_column *col)
{
    int rc;
    if (!global &&
        ((rc = cql_read_string(r, &col->keyspace)) || (rc = cql_read_string(r, &col->table))))
        return rc;
    return cql_read_string(r, &col->name);
}

/* Pass 1 over the column specs: validate them and count type nodes. */
static int scan_col_specs(struct cql_reader *r, bool global, int32_t n, size_t *n_nodes)
{
    struct cql_column col;
    for (int32_t i = 0; i < n; i++) {
        int rc = read_col_spec_names(r, global, &col);
        if (rc == CQL_OK)
            rc = cql_type_scan(r, n_nodes);
        if (rc)
            return rc;
    }
    return CQL_OK;
}

/* One block: columns, then type nodes, then pk indices (alignment falls
 * naturally in that order, asserted below). */
static void *alloc_meta_block(int32_t n_cols, size_t n_nodes, int32_t pk_count,
                              struct cql_column **cols, struct cql_type **nodes, uint16_t **pks)
{
    _Static_assert(sizeof(struct cql_column) % alignof(struct cql_type) == 0, "layout");
    _Static_assert(sizeof(struct cql_type) % alignof(uint16_t) == 0, "layout");
    size_t cols_size = (size_t)n_cols * sizeof **cols;
    size_t nodes_size = n_nodes * sizeof **nodes;
    size_t total = cols_size + nodes_size + (size_t)pk_count * sizeof **pks;
    if (total == 0)
        return NULL;
    uint8_t *block = calloc(1, total);
    if (!block)
        return NULL;
    *cols = (struct cql_column *)block;
    *nodes = (struct cql_type *)(block + cols_size);
    *pks = (uint16_t *)(block + cols_size + nodes_size);
    return block;
}

/* Pass 2: the same bytes into the block. */
static int build_col_specs(struct cql_reader *r, struct cql_metadata *m, bool global,
                           struct cql_type *nodes, size_t n_nodes)
{
    size_t used = 0;
    for (int32_t i = 0; i < m->n_columns; i++) {
        struct cql_column *col = &m->columns[i];
        int rc = read_col_spec_names(r, global, col);
        if (rc)
            return rc;
        if (global) {
            col->keyspace = m->keyspace;
            col->table = m->table;
        }
        if (used >= n_nodes)
            return CQL_E_PROTOCOL;
        struct cql_type *root = &nodes[used++];
        if ((rc = cql_type_build(r, root, nodes, n_nodes, &used)))
            return rc;
        col->type = root;
    }
    return CQL_OK;
}

/* Rows metadata (bind = false, spec 4.2.5.2) or prepared bind-marker
 * metadata (bind = true, spec 4.2.5.4: pk indices, no paging state). */
static int read_metadata(struct cql_reader *r, bool bind, struct cql_metadata *out)
{
    struct cql_metadata m = {.paging_state = {NULL, CQL_VALUE_NULL}};
    struct cql_slice pk_raw = {0};
    int rc;
    if ((rc = cql_read_int(r, &m.flags)) || (rc = cql_read_int(r, &m.n_columns)))
        return rc;
    if (m.n_columns < 0)
        return CQL_E_PROTOCOL;
    if (bind) {
        if ((rc = cql_read_int(r, &m.pk_count)))
            return rc;
        if (m.pk_count < 0)
            return CQL_E_PROTOCOL;
        if ((rc = cql_read_raw(r, (size_t)m.pk_count * 2, &pk_raw)))
            return rc;
    } else if ((m.flags & CQL_META_HAS_MORE_PAGES) && (rc = cql_read_bytes(r, &m.paging_state))) {
        return rc;
    }

    bool with_specs = !(m.flags & CQL_META_NO_METADATA);
    bool global = m.flags & CQL_META_GLOBAL_TABLES_SPEC;
    size_t n_nodes = 0;
    if (with_specs) {
        if (global &&
            ((rc = cql_read_string(r, &m.keyspace)) || (rc = cql_read_string(r, &m.table))))
            return rc;
        /* Refuse counts the remaining bytes cannot hold before any work. */
        size_t min_spec = global ? MIN_COL_SPEC_GLOBAL : MIN_COL_SPEC_LOCAL;
        if ((size_t)m.n_columns > cql_reader_left(r) / min_spec)
            return CQL_E_TRUNCATED;
        size_t specs_at = r->pos;
        if ((rc = scan_col_specs(r, global, m.n_columns, &n_nodes)))
            return rc;
        r->pos = specs_at;
    }

    struct cql_column *cols = NULL;
    struct cql_type *nodes = NULL;
    uint16_t *pks = NULL;
    int32_t n_cols = with_specs ? m.n_columns : 0;
    m.owned = alloc_meta_block(n_cols, n_nodes, m.pk_count, &cols, &nodes, &pks);
    if (!m.owned && (n_cols > 0 || n_nodes > 0 || m.pk_count > 0))
        return CQL_E_NOMEM;
    for (int32_t i = 0; i < m.pk_count; i++) {
        pks[i] = cql_load16(pk_raw.ptr + 2 * i);
        if (pks[i] >= m.n_columns) {
            free(m.owned);
            return CQL_E_PROTOCOL;
        }
    }
    m.pk_indices = m.pk_count > 0 ? pks : NULL;
    if (with_specs) {
        m.columns = n_cols > 0 ? cols : NULL;
        if ((rc = build_col_specs(r, &m, global, nodes, n_nodes))) {
            free(m.owned);
            return rc;
        }
    }
    *out = m;
    return CQL_OK;
}

void cql_metadata_free(struct cql_metadata *meta)
{
    if (!meta)
        return;
    free(meta->owned);
    meta->owned = NULL;
    meta->columns = NULL;
    meta->pk_indices = NULL;
}

/* ---- rows ------------------------------------------------------------------ */

static int read_rows(struct cql_reader *r, struct cql_rows *out)
{
    struct cql_rows rows = {0};
    int rc = read_metadata(r, false, &rows.meta);
    if (rc)
        return rc;
    if ((rc = cql_read_int(r, &rows.n_rows)))
        goto fail;
    rc = CQL_E_PROTOCOL;
    /* Zero columns would make any row count free to claim: refuse it. */
    if (rows.n_rows < 0 || (rows.n_rows > 0 && rows.meta.n_columns == 0))
        goto fail;
    uint64_t n_cells = (uint64_t)rows.n_rows * (uint64_t)rows.meta.n_columns;
    rc = CQL_E_TRUNCATED;
    if (n_cells > cql_reader_left(r) / 4) /* each cell is at least its [int] */
        goto fail;
    size_t content_at = r->pos;
    for (uint64_t i = 0; i < n_cells; i++) {
        struct cql_value cell;
        if ((rc = cql_read_bytes(r, &cell)))
            goto fail;
    }
    rows.content = (struct cql_slice){r->ptr + content_at, r->pos - content_at};
    *out = rows;
    return CQL_OK;
fail:
    cql_metadata_free(&rows.meta);
    return rc;
}

struct cql_row_iter cql_rows_iter(const struct cql_rows *rows)
{
    return (struct cql_row_iter){
        .r = cql_reader_make(rows->content.ptr, rows->content.len),
        .rows_left = rows->n_rows,
        .n_columns = rows->meta.n_columns,
    };
}

bool cql_rows_next(struct cql_row_iter *it, struct cql_value *cells, size_t cap)
{
    if (it->rows_left <= 0)
        return false;
    size_t start = it->r.pos;
    for (int32_t i = 0; i < it->n_columns; i++) {
        struct cql_value cell;
        if (cql_read_bytes(&it->r, &cell)) { /* only if content was not ours */
            it->r.pos = start;
            it->rows_left = 0;
            return false;
        }
        if ((size_t)i < cap)
            cells[i] = cell;
    }
    it->rows_left--;
    return true;
}

/* ---- prepared ---------------------------------------------------------------- */

static int read_prepared(struct cql_reader *r, struct cql_prepared *out)
{
    struct cql_prepared p = {0};
    int rc;
    if ((rc = cql_read_short_bytes(r, &p.id)))
        return rc;
    if (p.id.len == 0) /* nothing could EXECUTE it */
        return CQL_E_PROTOCOL;
    if ((rc = read_metadata(r, true, &p.params)))
        return rc;
    if ((rc = read_metadata(r, false, &p.result))) {
        cql_metadata_free(&p.params);
        return rc;
    }
    *out = p;
    return CQL_OK;
}

/* ---- dispatch -------------------------------------------------------------- */

int cql_parse_result(struct cql_slice body, struct cql_result *out)
{
    struct cql_reader r = cql_reader_make(body.ptr, body.len);
    struct cql_result res = {0};
    int rc = cql_read_int(&r, &res.kind);
    if (rc)
        return rc;
    switch (res.kind) {
    case CQL_RESULT_VOID:
        break;
    case CQL_RESULT_ROWS:
        rc = read_rows(&r, &res.rows);
        break;
    case CQL_RESULT_SET_KEYSPACE:
        rc = cql_read_string(&r, &res.keyspace);
        break;
    case CQL_RESULT_PREPARED:
        rc = read_prepared(&r, &res.prepared);
        break;
    case CQL_RESULT_SCHEMA_CHANGE:
        rc = cql_read_schema_change(&r, &res.schema_change);
        break;
    default:
        rc = CQL_E_UNSUPPORTED;
    }
    if (rc == CQL_OK)
        *out = res;
    return rc;
}

void cql_result_free(struct cql_result *res)
{
    if (!res)
        return;
    cql_metadata_free(&res->rows.meta);
    cql_metadata_free(&res->prepared.params);
    cql_metadata_free(&res->prepared.result);
}
