#ifndef CHYDRA_SHIMS_H
#define CHYDRA_SHIMS_H

// Constants that exist only as macros behind feature-test macros, which Swift cannot see.
extern const int chydra_O_DIRECT;
extern const int chydra_O_CLOEXEC;

// sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE): a _GNU_SOURCE function.
int chydra_start_writeback(int fd);

// mallopt(M_MMAP_THRESHOLD / M_TRIM_THRESHOLD): a macro-driven glibc call.
#include <stddef.h>
void chydra_keep_large_allocations_in_heap(size_t bytes);

#endif
