/* fuzz_replay.h — runs a libFuzzer target without libFuzzer: every file
 * named on the command line, or found (non-recursively) in a directory named
 * there, is passed once to the target. This is how the normal test build
 * replays the committed seeds (and any crash reproducer) under plain gcc. */
#ifndef FUZZ_REPLAY_H
#define FUZZ_REPLAY_H

#include <stddef.h>
#include <stdint.h>

typedef int (*fuzz_target_fn)(const uint8_t *data, size_t size);

/* Returns 0 if at least one input ran, 1 on a usage or I/O error (so a
 * missing seed directory fails the test instead of passing vacuously). */
int fuzz_replay_main(int argc, char **argv, fuzz_target_fn target);

#endif
