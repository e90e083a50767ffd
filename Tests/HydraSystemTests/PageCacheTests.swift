import Foundation
import Glibc
import Testing
@testable import HydraSystem

@Suite struct PageCacheTests {
    @Test func residencyFollowsReadsAndEviction() throws {
        let size = 4 << 20
        let path = try FileBatchReaderTests.makeFile(size: size)
        defer { unlink(path) }
        let file = SharedFile(try FileDescriptor.open(path))
        _ = posix_fadvise(file.fd, 0, 0, POSIX_FADV_RANDOM)  // no readahead: only what is read gets cached

        var scratch = [UInt8](repeating: 0, count: size)
        #expect(scratch.withUnsafeMutableBytes { pread(file.fd, $0.baseAddress, size, 0) } == size)
        #expect(file.isInPageCache(offset: 0, length: size))
        #expect(file.isInPageCache(offset: 12_345, length: 1 << 20))
        #expect(file.isInPageCache(offset: 0, length: 0))

        PageCache.evict(path)
        guard !PageCache.isTmpfs(path) else { return }  // nothing to evict there
        #expect(!file.isInPageCache(offset: 0, length: size))
        // One page read back in the middle: a range of just that page is cached, the whole file
        // (whose first and last pages are sampled) is not.
        let middle = size / 2
        #expect(scratch.withUnsafeMutableBytes { pread(file.fd, $0.baseAddress, 4096, off_t(middle)) } == 4096)
        #expect(file.isInPageCache(offset: middle + 100, length: 3000))
        #expect(!file.isInPageCache(offset: 0, length: size))
        #expect(!file.isInPageCache(offset: middle, length: 8192))
        #expect(file.residency(offset: 0, length: size) == .cold)
        #expect(file.sampledResidency(offset: middle + 100, length: 3000, stride: 64))
        #expect(!file.sampledResidency(offset: 0, length: size, stride: 64))
    }

    @Test func loadBringsTheWholeFileBackIntoTheCache() throws {
        let size = (4 << 20) + 1234  // not a whole number of pages, nor of load's buffers
        let path = try FileBatchReaderTests.makeFile(size: size)
        defer { unlink(path) }
        let file = SharedFile(try FileDescriptor.open(path))
        _ = posix_fadvise(file.fd, 0, 0, POSIX_FADV_RANDOM)  // no readahead: only what is read gets cached
        PageCache.evict(path)
        if !PageCache.isTmpfs(path) { #expect(!file.isInPageCache(offset: 0, length: size)) }
        #expect(PageCache.load(path))
        #expect(file.isInPageCache(offset: 0, length: size))
        #expect(!PageCache.load(path + ".missing"))
    }

    /// A warm file with a few pages dropped (as reclaim does) is not wholly cached, but mostly:
    /// up to one page in 64 may be missing.
    @Test func aFewDroppedPagesLeaveAFileMostlyCached() throws {
        let size = 4 << 20, page = 4096
        let path = try FileBatchReaderTests.makeFile(size: size)
        defer { unlink(path) }
        guard !PageCache.isTmpfs(path) else { return }
        let file = SharedFile(try FileDescriptor.open(path))
        _ = posix_fadvise(file.fd, 0, 0, POSIX_FADV_RANDOM)  // no readahead: only what is read gets cached
        var scratch = [UInt8](repeating: 0, count: page)
        /// Every page read back into an emptied cache but those in `missing`.
        func cacheAllBut(_ missing: Range<Int>) {
            PageCache.evict(path)
            for index in 0..<(size / page) where !missing.contains(index) {
                _ = scratch.withUnsafeMutableBytes { pread(file.fd, $0.baseAddress, page, off_t(index * page)) }
            }
        }
        cacheAllBut(0..<0)
        guard let all = file.cachedPages(offset: 0, length: size) else { return }  // no cachestat here: the sample decides
        #expect(all.cached == all.pages && all.pages == size / page)
        cacheAllBut(500..<508)
        #expect(file.cachedPages(offset: 0, length: size)?.cached == size / page - 8)
        #expect(!file.isInPageCache(offset: 0, length: size))
        #expect(file.residency(offset: 0, length: size) == .mostly)
        cacheAllBut(0..<(size / page / 16))
        #expect(file.residency(offset: 0, length: size) == .cold)
    }
}
