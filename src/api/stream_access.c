#include "api/stream_access.h"

#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "util/err.h"

void iot_stream_grant_of(struct iot_req *r, const struct iot_principal *p,
                         const struct iot_device *d, struct iot_stream_grant *out)
{
    memset(out, 0, sizeof *out);
    out->device_id = d->id;
    if (!p) {
        iot_credential_device_key(r, &out->cred);
        return;
    }
    iot_credential_user_side(r, &out->cred);
    if (p->has_user) {
        out->user_id = p->user.id;
        memcpy(out->user_pub, p->user.user_id, sizeof out->user_pub);
    }
}

void iot_stream_grant_of_user(struct iot_req *r, const struct iot_principal *p,
                              struct iot_stream_grant *out)
{
    static const struct iot_device none = {.id = 0};
    iot_stream_grant_of(r, p, &none, out);
    out->sees_all = p->admin;
}


/* A store error leaves the grant undecided (kept until the next batch). */
static bool undecided(int rc) { return rc != IOT_OK && rc != IOT_ENOTFOUND; }

static const char *user_verdict(const struct iot_stream_grant *g, const struct iot_stream_facts *f)
{
    if (undecided(f->user_rc))
        return NULL;
    /* An internal id can be reused after a deletion; the public id cannot. */
    if (f->user_rc == IOT_ENOTFOUND || strcmp(f->user->user_id, g->user_pub) != 0)
        return IOT_REVOKED_USER_DELETED;
    if (!f->user->is_active)
        return IOT_REVOKED_USER_INACTIVE;
    if (g->cred.kind == IOT_CRED_SESSION) {
        if (undecided(f->session_rc))
            return NULL;
        if (f->session_rc == IOT_ENOTFOUND || strcmp(f->session_user, g->user_pub) != 0)
            return IOT_REVOKED_SESSION;
    }
    if (!g->device_id) /* the user's own data, or everyone's while an admin */
        return g->sees_all && !f->user->is_admin ? IOT_REVOKED_ACCESS : NULL;
    if (!f->user->is_admin && f->device->user_id != f->user->id)
        return IOT_REVOKED_ACCESS;
    return NULL;
}

static const char *key_verdict(const struct iot_stream_grant *g, const struct iot_stream_facts *f)
{
    if (strcmp(f->device->api_key_hash, g->cred.hash) != 0)
        return IOT_REVOKED_KEY;
    /* The refusals authn makes when a key is used (a device switched off by
     * an admin, a deactivated owner) end a key's open streams too. */
    return iot_device_key_usable(f->device) ? NULL : IOT_REVOKED_DEVICE_REFUSED;
}

const char *iot_stream_grant_verdict(const struct iot_stream_grant *g,
                                     const struct iot_stream_facts *f)
{
    if (g->device_id && undecided(f->device_rc))
        return NULL;
    if (g->device_id && f->device_rc == IOT_ENOTFOUND)
        return IOT_REVOKED_DEVICE_DELETED;
    switch (g->cred.kind) {
    case IOT_CRED_ADMIN:
        return NULL; /* the token is fixed for the life of the process */
    case IOT_CRED_SESSION:
    case IOT_CRED_USER_ID:
        return user_verdict(g, f);
    case IOT_CRED_DEVICE_KEY:
        return key_verdict(g, f);
    case IOT_CRED_NONE:
        break;
    }
    /* Not a credential this module can re-check: end rather than trust. */
    return IOT_REVOKED_ACCESS;
}

/* ---- one batch -------------------------------------------------------------
 * Every distinct device, user and session is looked up once, in sorted
 * arrays found again by binary search. The first store error stops the
 * lookups (a down store would otherwise cost one timeout per stream); what
 * was not looked up is undecided. */

/* Each fact starts with its sort key, so cmp_i64/cmp_str compare facts as
 * well as bare keys (a struct's address is its first member's). */
struct dev_fact {
    int64_t id;
    int rc;
    struct iot_device d;
};

struct user_fact {
    int64_t id;
    int rc;
    struct iot_user u;
};

struct session_fact {
    const char *hash;
    int rc;
    char user[IOT_USER_ID_LEN + 1];
};

struct batch {
    struct iot_app *app;
    int halt; /* the store error that stopped the lookups, or IOT_OK */
    struct dev_fact *devs;
    size_t n_devs;
    struct user_fact *users;
    size_t n_users;
    struct session_fact *sessions;
    size_t n_sessions;
};

static int ask(struct batch *b, int rc)
{
    if (undecided(rc) && b->halt == IOT_OK)
        b->halt = rc;
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts v and drops repeats; returns how many are left. */
static size_t sort_unique(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    char *base = v;
    qsort(base, n, size, cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && cmp(base + (k - 1) * size, base + i * size) == 0)
            continue;
        if (k != i)
            memcpy(base + k * size, base + i * size, size);
        k++;
    }
    return k;
}

static int look_up_devices(struct batch *b, const struct iot_stream_grant *g, size_t n)
{
    int64_t *ids = malloc(n * sizeof *ids);
    if (!ids)
        return IOT_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (g[i].device_id) /* 0: a stream with no device */
            ids[m++] = g[i].device_id;
    size_t k = m ? sort_unique(ids, m, sizeof *ids, cmp_i64) : 0;
    b->devs = calloc(k ? k : 1, sizeof *b->devs);
    if (!b->devs) {
        free(ids);
        return IOT_ENOMEM;
    }
    for (size_t i = 0; i < k; i++) {
        b->devs[i].id = ids[i];
        b->devs[i].rc = b->halt ? b->halt
                                : ask(b, iot_reg_device_get(&b->app->registry, ids[i], &b->devs[i].d));
    }
    b->n_devs = k;
    free(ids);
    return IOT_OK;
}

static const struct dev_fact *device_fact(const struct batch *b, int64_t id)
{
    return bsearch(&id, b->devs, b->n_devs, sizeof *b->devs, cmp_i64);
}

/* The user a grant's verdict needs (the acting user), or 0. */
static int64_t user_needed(const struct iot_stream_grant *g)
{
    bool acts_as_user = g->cred.kind == IOT_CRED_SESSION || g->cred.kind == IOT_CRED_USER_ID;
    return acts_as_user ? g->user_id : 0;
}

static int look_up_users(struct batch *b, const struct iot_stream_grant *g, size_t n)
{
    int64_t *ids = malloc(n * sizeof *ids);
    if (!ids)
        return IOT_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if ((ids[m] = user_needed(&g[i])) != 0)
            m++;
    size_t k = m ? sort_unique(ids, m, sizeof *ids, cmp_i64) : 0;
    b->users = calloc(k ? k : 1, sizeof *b->users);
    if (!b->users) {
        free(ids);
        return IOT_ENOMEM;
    }
    for (size_t i = 0; i < k; i++) {
        b->users[i].id = ids[i];
        b->users[i].rc = b->halt ? b->halt
                                 : ask(b, iot_reg_user_get_by_id(&b->app->registry, ids[i], &b->users[i].u));
    }
    b->n_users = k;
    free(ids);
    return IOT_OK;
}

static int look_up_sessions(struct batch *b, const struct iot_stream_grant *g, size_t n)
{
    const char **hashes = malloc(n * sizeof *hashes);
    if (!hashes)
        return IOT_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (g[i].cred.kind == IOT_CRED_SESSION)
            hashes[m++] = g[i].cred.hash;
    size_t k = m ? sort_unique(hashes, m, sizeof *hashes, cmp_str) : 0;
    b->sessions = calloc(k ? k : 1, sizeof *b->sessions);
    if (!b->sessions) {
        free(hashes);
        return IOT_ENOMEM;
    }
    for (size_t i = 0; i < k; i++) {
        struct session_fact *s = &b->sessions[i];
        s->hash = hashes[i];
        s->rc = b->halt ? b->halt : ask(b, iot_cache_session_get(&b->app->cache, s->hash, s->user));
    }
    b->n_sessions = k;
    free(hashes);
    return IOT_OK;
}

static struct iot_stream_facts facts_of(const struct batch *b, const struct iot_stream_grant *g)
{
    struct iot_stream_facts f = {.device_rc = IOT_EUNAVAILABLE, .user_rc = IOT_EUNAVAILABLE,
                                 .session_rc = IOT_EUNAVAILABLE};
    const struct dev_fact *d = device_fact(b, g->device_id);
    if (d) {
        f.device_rc = d->rc;
        f.device = &d->d;
    }
    int64_t uid = user_needed(g);
    const struct user_fact *u =
        uid ? bsearch(&uid, b->users, b->n_users, sizeof *b->users, cmp_i64) : NULL;
    if (u) {
        f.user_rc = u->rc;
        f.user = &u->u;
    }
    if (g->cred.kind == IOT_CRED_SESSION) {
        const char *key = g->cred.hash;
        const struct session_fact *s =
            bsearch(&key, b->sessions, b->n_sessions, sizeof *b->sessions, cmp_str);
        if (s) {
            f.session_rc = s->rc;
            f.session_user = s->user;
        }
    }
    return f;
}

int iot_stream_grants_check(struct iot_app *app, const struct iot_stream_grant *g, size_t n,
                            const char **reasons)
{
    for (size_t i = 0; i < n; i++)
        reasons[i] = NULL;
    if (n == 0)
        return IOT_OK;
    struct batch b = {.app = app};
    int rc = look_up_devices(&b, g, n);
    if (rc == IOT_OK)
        rc = look_up_users(&b, g, n);
    if (rc == IOT_OK)
        rc = look_up_sessions(&b, g, n);
    if (rc == IOT_OK) {
        for (size_t i = 0; i < n; i++) {
            struct iot_stream_facts f = facts_of(&b, &g[i]);
            reasons[i] = iot_stream_grant_verdict(&g[i], &f);
        }
        rc = b.halt;
    }
    free(b.devs);
    free(b.users);
    free(b.sessions);
    return rc;
}
