import CHydraShims
import Glibc

/// What the kernel's page cache holds of a file, and dropping it (cold-read benchmarks and tests).
public enum PageCache {
    /// Writes back and drops the file's cached pages (`posix_fadvise DONTNEED`). The kernel
    /// may keep pages it cannot drop (mapped, or on tmpfs, where the cache is the file).
    public static func evict(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fdatasync(fd)
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        close(fd)
    }

    /// Whether `path` is on tmpfs, where the page cache is the file and `evict` drops nothing.
    public static func isTmpfs(_ path: String) -> Bool { chydra_is_tmpfs(path) == 1 }
}

extension SharedFile {
    /// Whether the `length` bytes at `offset` are in the page cache. Every page is counted by
    /// one cachestat(2) call where the kernel has it (Linux 6.5); elsewhere judged by the first
    /// and last pages and one page in every `stride` between (mincore on a throwaway mapping:
    /// checking every page costs ~0.1 µs each, while the page cache evicts in runs, so a
    /// sample tells nearly as well). Nothing is read or faulted in. False when it cannot tell:
    /// the kernel reports page-cache residency only to a file's owner or writers, so a server
    /// reading someone else's files always answers "not resident".
    public func isInPageCache(offset: Int, length: Int, stride: Int = 64) -> Bool {
        guard length > 0 else { return true }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let span = offset + length - start
        let pages = (span + page - 1) / page
        let cached = chydra_cached_pages(fd, UInt64(start), UInt64(span))
        if cached >= 0 { return cached >= pages }
        guard let mapping = mmap(nil, span, PROT_READ, MAP_SHARED, fd, off_t(start)), mapping != MAP_FAILED else { return false }
        defer { munmap(mapping, span) }
        var resident: UInt8 = 0
        for index in Swift.stride(from: 0, to: pages, by: max(stride, 1)).map({ $0 }) + [pages - 1] {
            guard mincore(mapping + index * page, page, &resident) == 0, resident & 1 == 1 else { return false }
        }
        return true
    }
}
