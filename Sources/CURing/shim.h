// liburing.h uses libc types without including every header it needs.
#include <sys/types.h>
#include <sys/uio.h>
#include <signal.h>
#include <string.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <liburing.h>
