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

#include <curl/curl.h>

/* curl_easy_setopt is variadic: one typed entry point per argument kind. */
CURLcode chydra_curl_set_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode chydra_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode chydra_curl_set_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode chydra_curl_get_active_socket(CURL *handle, int *socket) {
    curl_socket_t value = CURL_SOCKET_BAD;
    CURLcode code = curl_easy_getinfo(handle, CURLINFO_ACTIVESOCKET, &value);
    *socket = (int)value;
    return code;
}

CURLcode chydra_curl_set_write_function(CURL *handle, size_t (*function)(char *, size_t, size_t, void *)) {
    return curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, function);
}

CURLcode chydra_curl_get_response_code(CURL *handle, long *code) {
    return curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, code);
}

#include <sys/mman.h>
#include <sys/socket.h>
#include <string.h>

int chydra_memfd_create(const char *name) {
    return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
}

int chydra_seal_read_only(int fd) {
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL);
}

/* fd < 0: a plain send. MSG_NOSIGNAL: a peer that went away is an error, not SIGPIPE. */
ssize_t chydra_send_with_fd(int socket, const void *bytes, size_t count, int fd) {
    struct iovec vector = { .iov_base = (void *)bytes, .iov_len = count };
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1 };
    union { char buffer[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        message.msg_control = control.buffer;
        message.msg_controllen = sizeof control.buffer;
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(header), &fd, sizeof(int));
    }
    return sendmsg(socket, &message, MSG_NOSIGNAL);
}

/* *fd is set to a received descriptor (close-on-exec) or -1. */
ssize_t chydra_receive_with_fd(int socket, void *bytes, size_t count, int *fd) {
    struct iovec vector = { .iov_base = bytes, .iov_len = count };
    union { char buffer[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1,
                              .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
    *fd = -1;
    ssize_t received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    if (received < 0) return received;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
            memcpy(fd, CMSG_DATA(header), sizeof(int));
        }
    }
    return received;
}

#include <sys/vfs.h>
#include <linux/magic.h>

int chydra_is_tmpfs(const char *path) {
    struct statfs info;
    return statfs(path, &info) == 0 && info.f_type == TMPFS_MAGIC;
}

#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef __NR_cachestat
#define __NR_cachestat 451  /* the same number on every architecture (generic table) */
#endif

long long chydra_cached_pages(int fd, unsigned long long offset, unsigned long long length) {
    struct { uint64_t off, len; } range = { offset, length };
    struct { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; } stat;
    if (syscall(__NR_cachestat, fd, &range, &stat, 0) != 0) return -1;
    return (long long)stat.nr_cache;
}

int chydra_thread_id(void) { return (int)syscall(SYS_gettid); }
