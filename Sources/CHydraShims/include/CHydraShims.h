#ifndef CHYDRA_SHIMS_H
#define CHYDRA_SHIMS_H

#include "hydra_vector.h"

// Constants that exist only as macros behind feature-test macros, which Swift cannot see.
extern const int chydra_O_DIRECT;
extern const int chydra_O_CLOEXEC;

// sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE): a _GNU_SOURCE function.
int chydra_start_writeback(int fd);

// mallopt(M_MMAP_THRESHOLD / M_TRIM_THRESHOLD): a macro-driven glibc call.
#include <stddef.h>
void chydra_keep_large_allocations_in_heap(size_t bytes);

// curl_easy_setopt / curl_easy_getinfo are variadic, which Swift cannot call.
#include <curl/curl.h>
CURLcode chydra_curl_set_string(CURL *handle, CURLoption option, const char *value);
CURLcode chydra_curl_set_long(CURL *handle, CURLoption option, long value);
CURLcode chydra_curl_set_pointer(CURL *handle, CURLoption option, void *value);
CURLcode chydra_curl_set_write_function(CURL *handle, size_t (*function)(char *, size_t, size_t, void *));
CURLcode chydra_curl_get_response_code(CURL *handle, long *code);
// The socket of a CURLOPT_CONNECT_ONLY connection (to wait on it with poll).
CURLcode chydra_curl_get_active_socket(CURL *handle, int *socket);

// memfd_create + seals (_GNU_SOURCE): shared memory a node cache hands to workers, sealed
// read-only once a chunk is verified.
int chydra_memfd_create(const char *name);
int chydra_seal_read_only(int fd);

// sendmsg/recvmsg with one SCM_RIGHTS descriptor: CMSG_* are macros.
#include <sys/types.h>
ssize_t chydra_send_with_fd(int socket, const void *bytes, size_t count, int fd);
ssize_t chydra_receive_with_fd(int socket, void *bytes, size_t count, int *fd);

// statfs's f_type: <sys/vfs.h> is not part of Swift's Glibc module. 1 when `path` is on tmpfs.
int chydra_is_tmpfs(const char *path);

// cachestat(2) (Linux 6.5): how many of the pages in [offset, offset + length) are in the page
// cache, or -1 with errno (ENOSYS on older kernels, EPERM where mincore would refuse too).
long long chydra_cached_pages(int fd, unsigned long long offset, unsigned long long length);

// The calling thread's kernel id (glibc's gettid is not in Swift's Glibc module).
int chydra_thread_id(void);

#endif
