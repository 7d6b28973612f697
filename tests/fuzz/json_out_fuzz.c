/* json_out_fuzz.c — libFuzzer target for util/json_out: any bytes go
 * through iot_json_shorten_reals (it must copy what is not a real token
 * and never read past the input); when the input is JSON, the rewritten
 * text must parse to the same values, reals bit for bit.
 *
 * Build for fuzzing with clang -DFUZZING -fsanitize=fuzzer,address,undefined;
 * without FUZZING it is a plain program replaying files (fuzz_replay.h). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_out.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Same values, reals compared by bits. */
static int same(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_real(a)) {
        double x = json_real_value(a), y = json_real_value(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    if (json_is_object(a)) {
        const char *k;
        json_t *v;
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach((json_t *)a, k, v) {
            json_t *w = json_object_get(b, k);
            if (!w || !same(v, w))
                return 0;
        }
        return 1;
    }
    return json_equal(a, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    size_t len = 0;
    char *out = iot_json_shorten_reals((const char *)data, size, &len);
    if (!out)
        return 0;
    if (strlen(out) != len && !memchr(data, 0, size))
        abort();
    json_t *in = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (in) {
        json_t *back = json_loadb(out, len, JSON_DECODE_ANY, NULL);
        if (!back || !same(in, back))
            abort();
        char *dumped = iot_json_dumps(in);
        json_t *again = dumped ? json_loads(dumped, JSON_DECODE_ANY, NULL) : NULL;
        if (dumped && (!again || !same(in, again)))
            abort();
        json_decref(again);
        free(dumped);
        json_decref(back);
        json_decref(in);
    }
    free(out);
    return 0;
}

#ifndef FUZZING
#include "fuzz_replay.h"

int main(int argc, char **argv)
{
    return fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);
}
#endif
