/* contract_runner.h — what every contract suite's main() shares: the list
 * of backend URLs to run against (an environment variable, else the
 * suite's defaults) and the creation of the scratch directory the default
 * file-backed stores live in. Header-only, for the test programs. */
#ifndef IOT_TESTS_CONTRACT_RUNNER_H
#define IOT_TESTS_CONTRACT_RUNNER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONTRACT_MAX_URLS 8

/* IOT_TEST_TMPDIR (created, mkdir -p style), or /tmp. */
static inline const char *contract_tmpdir(void)
{
    const char *tmp = getenv("IOT_TEST_TMPDIR");
    if (!tmp || !tmp[0])
        return "/tmp";
    char path[900];
    snprintf(path, sizeof path, "%s/", tmp);
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    return tmp;
}

/* Deletes a SQLite database file and the files SQLite keeps beside it. */
static inline void contract_remove_sqlite_files(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char buf[1200];
        snprintf(buf, sizeof buf, "%s%s", path, suffixes[i]);
        unlink(buf);
    }
}

/* Runs `run` once per URL of a comma-separated list; returns the number of
 * failures. */
static inline int contract_run_list(const char *list, int (*run)(const char *url))
{
    char urls[2048];
    snprintf(urls, sizeof urls, "%s", list);
    int failed = 0, n = 0;
    for (char *url = urls; url && *url && n < CONTRACT_MAX_URLS; n++) {
        char *comma = strchr(url, ',');
        if (comma)
            *comma = '\0';
        while (*url == ' ')
            url++;
        if (*url)
            failed += run(url);
        url = comma ? comma + 1 : NULL;
    }
    return failed;
}

/* Runs `run` once per comma-separated URL of env_var's value, or of
 * `defaults` when it is unset or empty, and then once per URL of
 * <env_var>_EXTRA: the servers `make test` started (scripts/services.sh),
 * so that every backend runs the same suite. Returns the failures. */
static inline int contract_run_backends(const char *env_var, const char *defaults,
                                        int (*run)(const char *url))
{
    const char *env = getenv(env_var);
    int failed = contract_run_list(env && env[0] ? env : defaults, run);
    char extra_var[128];
    snprintf(extra_var, sizeof extra_var, "%s_EXTRA", env_var);
    const char *extra = getenv(extra_var);
    if (extra && extra[0])
        failed += contract_run_list(extra, run);
    return failed;
}

#endif
