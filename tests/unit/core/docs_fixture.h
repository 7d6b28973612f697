/* docs_fixture.h — a cmocka fixture for the documents' domain modules: a
 * fresh SQLite documents store in a directory of its own under
 * IOT_TEST_TMPDIR, removed at teardown. Header-only; include after
 * <cmocka.h>. */
#ifndef IOT_TESTS_DOCS_FIXTURE_H
#define IOT_TESTS_DOCS_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "store/docs.h"

struct fx {
    char dir[512];
    struct iot_docs docs;
};

static int docs_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    const char *base = getenv("IOT_TEST_TMPDIR") ? getenv("IOT_TEST_TMPDIR") : "/tmp";
    mkdir(base, 0755);
    snprintf(f->dir, sizeof f->dir, "%s/docs-domain-XXXXXX", base);
    char url[700];
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(url, sizeof url, "sqlite://%s/documents.db", f->dir);
    if (iot_docs_open(url, &f->docs))
        return -1;
    *state = f;
    return 0;
}

static int docs_teardown(void **state)
{
    struct fx *f = *state;
    iot_docs_close(&f->docs);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

#endif
