/* devcache.c — the direct-mapped API-key cache (devcache.h). */
#include "core/devcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

#define STRIPES 64

struct slot {
    bool used;
    int64_t expires_us;
    struct iot_device device;
};

struct iot_devcache {
    size_t n_slots;
    int64_t ttl_us;
    pthread_mutex_t locks[STRIPES];
    struct slot *slots;
};

struct iot_devcache *iot_devcache_new(size_t slots, int64_t ttl_ms)
{
    struct iot_devcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n_slots = slots ? slots : 1;
    c->ttl_us = ttl_ms * 1000;
    c->slots = calloc(c->n_slots, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&c->locks[i], NULL);
    return c;
}

void iot_devcache_free(struct iot_devcache *c)
{
    if (!c)
        return;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&c->locks[i]);
    free(c->slots);
    free(c);
}

/* The key hash is already uniformly random hex: its first 15 digits are a
 * perfectly good index. */
static size_t slot_of(const struct iot_devcache *c, const char *key_hash)
{
    uint64_t h = 0;
    for (int i = 0; i < 15 && key_hash[i]; i++) {
        char x = key_hash[i];
        h = h * 16 + (uint64_t)(x <= '9' ? x - '0' : (x | 0x20) - 'a' + 10);
    }
    return (size_t)(h % c->n_slots);
}

bool iot_devcache_get(struct iot_devcache *c, const char *key_hash, struct iot_device *out)
{
    size_t i = slot_of(c, key_hash);
    pthread_mutex_t *lock = &c->locks[i % STRIPES];
    bool hit = false;
    pthread_mutex_lock(lock);
    struct slot *s = &c->slots[i];
    if (s->used && strcmp(s->device.api_key_hash, key_hash) == 0) {
        if (s->expires_us > iot_mono_us()) {
            *out = s->device;
            hit = true;
        } else {
            s->used = false;
        }
    }
    pthread_mutex_unlock(lock);
    return hit;
}

void iot_devcache_put(struct iot_devcache *c, const struct iot_device *d)
{
    size_t i = slot_of(c, d->api_key_hash);
    pthread_mutex_t *lock = &c->locks[i % STRIPES];
    pthread_mutex_lock(lock);
    c->slots[i] = (struct slot){.used = true, .expires_us = iot_mono_us() + c->ttl_us, .device = *d};
    pthread_mutex_unlock(lock);
}

void iot_devcache_forget(struct iot_devcache *c, const char *key_hash)
{
    size_t i = slot_of(c, key_hash);
    pthread_mutex_t *lock = &c->locks[i % STRIPES];
    pthread_mutex_lock(lock);
    if (c->slots[i].used && strcmp(c->slots[i].device.api_key_hash, key_hash) == 0)
        c->slots[i].used = false;
    pthread_mutex_unlock(lock);
}

void iot_devcache_forget_owner(struct iot_devcache *c, int64_t owner_id)
{
    for (size_t i = 0; i < c->n_slots; i++) {
        pthread_mutex_t *lock = &c->locks[i % STRIPES];
        pthread_mutex_lock(lock);
        if (c->slots[i].used && c->slots[i].device.user_id == owner_id)
            c->slots[i].used = false;
        pthread_mutex_unlock(lock);
    }
}
