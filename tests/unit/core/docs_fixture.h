/* docs_fixture.h — cmocka fixtures for the modules that run on the
 * embedded (SQLite) stores. A test's stores live in a fresh directory of
 * their own under IOT_TEST_TMPDIR (fx_dir_make, fx_store_url), removed
 * with them at teardown (fx_dir_remove); and the fixture of the
 * documents' domain modules, a fresh SQLite documents store in such a
 * directory (struct docs_fx, docs_setup, docs_teardown). Header-only;
 * include after <cmocka.h>. */
#ifndef IOT_TESTS_DOCS_FIXTURE_H
#define IOT_TESTS_DOCS_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/docs.h"

#define FX_DIR_MAX 512
#define FX_URL_MAX 700

/* Makes <IOT_TEST_TMPDIR or /tmp>/<prefix>-XXXXXX into dir; 0 or -1. */
static inline int fx_dir_make(char dir[FX_DIR_MAX], const char *prefix)
{
    const char *base = getenv("IOT_TEST_TMPDIR") ? getenv("IOT_TEST_TMPDIR") : "/tmp";
    mkdir(base, 0755);
    snprintf(dir, FX_DIR_MAX, "%s/%s-XXXXXX", base, prefix);
    return mkdtemp(dir) ? 0 : -1;
}

/* The URL of an embedded store kept in file `file` of dir. */
static inline void fx_store_url(char url[FX_URL_MAX], const char *dir, const char *file)
{
    snprintf(url, FX_URL_MAX, "sqlite://%s/%s", dir, file);
}

/* Removes dir and the files in it (the stores close first). */
static inline void fx_dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

struct docs_fx {
    char dir[FX_DIR_MAX];
    struct iot_docs docs;
};

static inline int docs_setup(void **state)
{
    struct docs_fx *f = calloc(1, sizeof *f);
    char url[FX_URL_MAX];
    if (!f || fx_dir_make(f->dir, "docs-domain"))
        return -1;
    fx_store_url(url, f->dir, "documents.db");
    if (iot_docs_open(url, &f->docs))
        return -1;
    *state = f;
    return 0;
}

static inline int docs_teardown(void **state)
{
    struct docs_fx *f = *state;
    iot_docs_close(&f->docs);
    fx_dir_remove(f->dir);
    free(f);
    return 0;
}

#endif
