#define _GNU_SOURCE
#include <fcntl.h>
#include "CHydraShims.h"

const int chydra_O_DIRECT = O_DIRECT;
const int chydra_O_CLOEXEC = O_CLOEXEC;
