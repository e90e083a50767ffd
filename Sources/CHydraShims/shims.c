#define _GNU_SOURCE
#include <fcntl.h>
#include "CHydraShims.h"

const int chydra_O_DIRECT = O_DIRECT;
const int chydra_O_CLOEXEC = O_CLOEXEC;

int chydra_start_writeback(int fd) {
    return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

#include <malloc.h>

void chydra_keep_large_allocations_in_heap(size_t bytes) {
    mallopt(M_MMAP_THRESHOLD, (int)bytes);
    mallopt(M_TRIM_THRESHOLD, (int)bytes);
}
