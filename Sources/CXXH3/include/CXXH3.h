#ifndef CXXH3_H
#define CXXH3_H
// XXH3-64 (Debian's libxxhash-dev header, inlined and built for AVX2 here: 1.5x the shared
// library's SSE2 build on chunk-sized inputs). The state is opaque to Swift.
#include <stddef.h>
#include <stdint.h>

uint64_t chydra_xxh3_64(const void *bytes, size_t count);
void *chydra_xxh3_create(void);
void chydra_xxh3_update(void *state, const void *bytes, size_t count);
uint64_t chydra_xxh3_digest(void *state);
void chydra_xxh3_free(void *state);

#endif
