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

    /// Reads the whole file through one small buffer, as `cat` does, so that its pages are in
    /// the page cache and freshly used (warm-read benchmarks). False when it cannot be read.
    @discardableResult
    public static func load(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let size = 128 << 10
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            let count = read(fd, buffer, size)
            if count == 0 { return true }
            if count < 0 && errno != EINTR { return false }
        }
    }

    /// Whether `path` is on tmpfs, where the page cache is the file and `evict` drops nothing.
    public static func isTmpfs(_ path: String) -> Bool { chydra_is_tmpfs(path) == 1 }
}

extension SharedFile {
    /// How many of the pages holding the `length` bytes at `offset` are in the page cache
    /// (`PageCache.cachedPages`).
    public func cachedPages(offset: Int, length: Int) -> (cached: Int, pages: Int)? {
        PageCache.cachedPages(fd: fd, offset: offset, length: length)
    }

    /// Whether every page of the `length` bytes at `offset` is in the page cache
    /// (`PageCache.residency`). False when it cannot tell.
    public func isInPageCache(offset: Int, length: Int, stride: Int = 64) -> Bool {
        residency(offset: offset, length: length, stride: stride) == .whole
    }

    public func residency(offset: Int, length: Int, stride: Int = 64) -> PageCache.Residency {
        PageCache.residency(fd: fd, offset: offset, length: length, stride: stride)
    }

    /// The mincore sample (internal for tests).
    func sampledResidency(offset: Int, length: Int, stride: Int) -> Bool {
        PageCache.sampledResidency(fd: fd, offset: offset, length: length, stride: stride)
    }
}

extension PageCache {
    /// How many of the pages holding the `length` bytes at `offset` of open file `fd` are in the
    /// page cache, by one cachestat(2) call; nil where the kernel lacks it (before 6.5) or will
    /// not tell: it reports residency only to a file's owner or writers.
    public static func cachedPages(fd: Int32, offset: Int, length: Int) -> (cached: Int, pages: Int)? {
        let (start, span, pages) = pageSpan(offset: offset, length: length)
        guard pages > 0 else { return (0, 0) }
        let cached = chydra_cached_pages(fd, UInt64(start), UInt64(span))
        return cached >= 0 ? (min(Int(cached), pages), pages) : nil
    }

    public enum Residency: Sendable { case whole, mostly, cold }

    /// How much of the `length` bytes at `offset` of open file `fd` the page cache holds: every
    /// page (`whole`), all but at most one page in `stride` by cachestat's count (`mostly`), or
    /// less (`cold`); where cachestat is not available, a sample says `whole` or `cold`: the
    /// first and last pages and one page in every `stride` between (mincore on a throwaway
    /// mapping; the page cache evicts in runs, so a sample tells nearly as well). Nothing is
    /// read or faulted in. A server sends a `mostly` range from the page cache too: the kernel's
    /// reclaim (DAMON on this VM) drops a few pages of a warm file now and then, and sending the
    /// whole range through user space for their sake cost 8 reader threads' work per request.
    public static func residency(fd: Int32, offset: Int, length: Int, stride: Int = 64) -> Residency {
        guard let count = cachedPages(fd: fd, offset: offset, length: length) else {
            return sampledResidency(fd: fd, offset: offset, length: length, stride: stride) ? .whole : .cold
        }
        if count.cached == count.pages { return .whole }
        return (count.pages - count.cached) * max(stride, 1) <= count.pages ? .mostly : .cold
    }

    private static func pageSpan(offset: Int, length: Int) -> (start: Int, span: Int, pages: Int) {
        guard length > 0 else { return (offset, 0, 0) }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let span = offset + length - start
        return (start, span, (span + page - 1) / page)
    }

    static func sampledResidency(fd: Int32, offset: Int, length: Int, stride: Int) -> Bool {
        let (start, span, pages) = pageSpan(offset: offset, length: length)
        guard pages > 0 else { return true }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let mapping = mmap(nil, span, PROT_READ, MAP_SHARED, fd, off_t(start)), mapping != MAP_FAILED else { return false }
        defer { munmap(mapping, span) }
        var resident: UInt8 = 0
        for index in Swift.stride(from: 0, to: pages, by: max(stride, 1)).map({ $0 }) + [pages - 1] {
            guard mincore(mapping + index * page, page, &resident) == 0, resident & 1 == 1 else { return false }
        }
        return true
    }
}
