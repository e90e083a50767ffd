import Glibc

/// A heap buffer whose start is aligned (4 KiB by default), as O_DIRECT reads and fast page-cache
/// copies need. Owns its memory; not copyable.
public struct AlignedBuffer: ~Copyable {
    public static let pageBytes = 4096

    public let baseAddress: UnsafeMutableRawPointer
    public let count: Int

    public init(count: Int, alignment: Int = AlignedBuffer.pageBytes) {
        precondition(count >= 0 && alignment > 0 && alignment & (alignment - 1) == 0, "bad aligned buffer request")
        var pointer: UnsafeMutableRawPointer?
        let rc = posix_memalign(&pointer, alignment, max(count, 1))
        precondition(rc == 0 && pointer != nil, "posix_memalign(\(count)) failed: \(rc)")
        baseAddress = pointer!
        self.count = count
    }

    deinit { free(baseAddress) }

    public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: baseAddress, count: count) }

    public func zero() { memset(baseAddress, 0, count) }
}

/// Rounds `value` up to a multiple of `alignment` (a power of two).
@inlinable
public func alignUp(_ value: Int, to alignment: Int) -> Int {
    (value + alignment - 1) & ~(alignment - 1)
}
