#define _GNU_SOURCE
#include <fcntl.h>
#include "CHydraShims.h"

const int chydra_O_DIRECT = O_DIRECT;
const int chydra_O_CLOEXEC = O_CLOEXEC;

int chydra_start_writeback(int fd) {
    return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}
