#define XXH_INLINE_ALL
#include <xxhash.h>
#include "CXXH3.h"

uint64_t chydra_xxh3_64(const void *bytes, size_t count) { return XXH3_64bits(bytes, count); }

void *chydra_xxh3_create(void) {
    XXH3_state_t *state = XXH3_createState();
    if (state != NULL && XXH3_64bits_reset(state) != XXH_OK) { XXH3_freeState(state); return NULL; }
    return state;
}

void chydra_xxh3_update(void *state, const void *bytes, size_t count) { (void)XXH3_64bits_update(state, bytes, count); }

uint64_t chydra_xxh3_digest(void *state) { return XXH3_64bits_digest(state); }

void chydra_xxh3_free(void *state) { XXH3_freeState(state); }
