import CHydraShims
import Glibc

/// Anonymous shared memory (memfd) that can be handed to other processes by descriptor.
/// A node cache fills one per chunk, then seals it read-only: what a worker maps can never change.
public final class SharedMemoryFile: @unchecked Sendable {
    public let fd: Int32
    public private(set) var count: Int

    /// A new zero-filled memfd of `count` bytes (pages are allocated as they are written).
    public init(name: String, count: Int) throws {
        let fd = try retryingEINTR("memfd_create", path: name) { chydra_memfd_create(name) }
        guard ftruncate(fd, off_t(count)) == 0 else {
            let code = errno
            close(fd)
            throw SystemError("ftruncate(\(count))", path: name, errno: code)
        }
        self.fd = fd
        self.count = count
    }

    /// Adopts a received descriptor; its size is read from the file.
    public init(adopting fd: Int32) throws {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemError("fstat", errno: errno) }
        self.fd = fd
        count = Int(info.st_size)
    }

    deinit { close(fd) }

    /// Maps the whole file (shared: writes land in the file itself). With `populate`, every
    /// page is faulted in at once (one call instead of a fault per 4 KiB page as bytes land), in
    /// transparent huge pages where the host's shmem policy allows them
    /// (`/sys/kernel/mm/transparent_hugepage/shmem_enabled`: `advise` or `always`; docs/benchmarks.md
    /// measures what they save).
    public func map(writable: Bool, populate: Bool = false) throws -> MappedMemory {
        try MappedMemory(fd: fd, count: count, writable: writable, populate: populate)
    }

    /// Shrinks the file to `count` bytes, giving the pages past it back (before it is shared).
    public func shrink(to count: Int) throws {
        try releasePages(beyond: count)
        self.count = count
    }

    /// Truncates the file to `count` bytes but leaves `count` as it was, so that another thread
    /// can give the pages back while this one's owner writes below `count` through a mapping;
    /// `shrink(to:)` afterwards only updates `count` (truncating to the size the file has is free).
    public func releasePages(beyond count: Int) throws {
        precondition(count <= self.count, "the file only shrinks")
        guard ftruncate(fd, off_t(count)) == 0 else { throw SystemError("ftruncate(\(count))", errno: errno) }
    }

    /// From now on nobody can write it (no `write`, no writable mapping, no `mprotect` to
    /// writable), grow or shrink it, or lift the seals. A writable mapping made before sealing
    /// stays usable (F_SEAL_FUTURE_WRITE): the sealer drops its own whenever it likes. F_SEAL_WRITE
    /// would require it gone first and scans the file's pages for pins — 2–7 ms for a 32 MiB
    /// chunk on the fetch path, against microseconds.
    public func sealReadOnly() throws {
        guard chydra_seal_read_only(fd) == 0 else { throw SystemError("seal read-only", errno: errno) }
    }
}

/// An mmap'd region, unmapped when released.
public final class MappedMemory: @unchecked Sendable {
    public let baseAddress: UnsafeMutableRawPointer?
    public let count: Int

    init(fd: Int32, count: Int, writable: Bool, populate: Bool) throws {
        self.count = count
        guard count > 0 else { baseAddress = nil; return }
        let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
        let hugeFirst = populate && writable
        let address = mmap(nil, count, protection, MAP_SHARED | (populate && !hugeFirst ? MAP_POPULATE : 0), fd, 0)
        guard let address, address != MAP_FAILED else { throw SystemError("mmap(\(count))", errno: errno) }
        baseAddress = address
        if hugeFirst {
            // Ask for huge pages before any page exists, then fault them all in. Both are hints:
            // a kernel without MADV_POPULATE_WRITE (before 5.14) faults pages in as they are written.
            _ = madvise(address, count, MADV_HUGEPAGE)
            _ = madvise(address, count, MADV_POPULATE_WRITE)
        }
    }

    deinit { if let baseAddress { munmap(baseAddress, count) } }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: baseAddress, count: count) }
    public var mutableBytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: baseAddress, count: count) }
}
