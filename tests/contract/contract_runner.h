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

/* Runs `run` once per comma-separated URL of env_var's value, or of
 * `defaults` when it is unset or empty; returns the number of failures. */
static inline int contract_run_backends(const char *env_var, const char *defaults,
                                        int (*run)(const char *url))
{
    char urls[2048];
    const char *env = getenv(env_var);
    snprintf(urls, sizeof urls, "%s", env && env[0] ? env : defaults);
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

#endif
