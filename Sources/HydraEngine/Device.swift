import Glibc
import HydraSystem

/// Where weights and KV blocks live and kernels run. The CPU device is the default and the one
/// tested everywhere; a CUDA device implements the same protocol later.
public protocol Device: Sendable {
    var name: String { get }
    /// Memory for `bytes` bytes, page-aligned, contents undefined (pages are only touched when
    /// written, so a KV cache costs resident memory as it fills, not when it is reserved); `use`
    /// lets the device back weights and KV blocks differently.
    func allocate(bytes: Int, use: DeviceMemory.Use) -> DeviceMemory
    /// Copies host bytes into device memory at `offset`.
    func upload(_ bytes: UnsafeRawBufferPointer, to memory: DeviceMemory, at offset: Int)
}

/// A block of device memory. On the CPU device it is host memory that kernels read directly.
public final class DeviceMemory: @unchecked Sendable {
    /// What the memory holds, so that the device can back it suitably.
    public enum Use: Sendable {
        /// Written once, then read whole by every forward pass (weights). On the CPU: 2 MiB
        /// transparent huge pages where the host allows them (`madvise` or `always`), which cut
        /// the TLB misses of streaming the weights: decode 1.10–1.18× on SmolLM2.
        case streamed
        /// Filled as it is used (KV blocks): ordinary pages, so resident memory grows with use.
        case growing
    }

    public static let hugePageBytes = 2 << 20

    public let baseAddress: UnsafeMutableRawPointer
    public let byteCount: Int

    init(byteCount: Int, use: Use) {
        var pointer: UnsafeMutableRawPointer?
        let huge = use == .streamed && byteCount >= Self.hugePageBytes
        precondition(posix_memalign(&pointer, huge ? Self.hugePageBytes : AlignedBuffer.pageBytes, max(byteCount, 1)) == 0 && pointer != nil,
                     "out of memory allocating \(byteCount) bytes")
        // Advice before the first touch, so that the faults themselves allocate huge pages; a
        // host without them leaves the memory as it was.
        if huge { _ = madvise(pointer!, byteCount, MADV_HUGEPAGE) }
        baseAddress = pointer!
        self.byteCount = byteCount
    }

    deinit { free(baseAddress) }
}

public struct CPUDevice: Device {
    public init() {}
    public var name: String { "cpu" }

    public func allocate(bytes: Int, use: DeviceMemory.Use) -> DeviceMemory { DeviceMemory(byteCount: bytes, use: use) }

    public func upload(_ bytes: UnsafeRawBufferPointer, to memory: DeviceMemory, at offset: Int) {
        precondition(offset >= 0 && offset + bytes.count <= memory.byteCount, "upload out of bounds")
        memcpy(memory.baseAddress + offset, bytes.baseAddress!, bytes.count)
    }
}
