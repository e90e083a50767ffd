import Glibc
import HydraSystem

/// Where weights and KV blocks live and kernels run. The CPU device is the default and the one
/// tested everywhere; a CUDA device implements the same protocol later.
public protocol Device: Sendable {
    var name: String { get }
    /// Memory for `bytes` bytes, page-aligned, contents undefined (pages are only touched when
    /// written, so a KV cache costs resident memory as it fills, not when it is reserved).
    func allocate(bytes: Int) -> DeviceMemory
    /// Copies host bytes into device memory at `offset`.
    func upload(_ bytes: UnsafeRawBufferPointer, to memory: DeviceMemory, at offset: Int)
}

/// A block of device memory. On the CPU device it is host memory that kernels read directly.
public final class DeviceMemory: @unchecked Sendable {
    public let baseAddress: UnsafeMutableRawPointer
    public let byteCount: Int

    init(byteCount: Int) {
        var pointer: UnsafeMutableRawPointer?
        precondition(posix_memalign(&pointer, AlignedBuffer.pageBytes, max(byteCount, 1)) == 0 && pointer != nil,
                     "out of memory allocating \(byteCount) bytes")
        baseAddress = pointer!
        self.byteCount = byteCount
    }

    deinit { free(baseAddress) }
}

public struct CPUDevice: Device {
    public init() {}
    public var name: String { "cpu" }

    public func allocate(bytes: Int) -> DeviceMemory { DeviceMemory(byteCount: bytes) }

    public func upload(_ bytes: UnsafeRawBufferPointer, to memory: DeviceMemory, at offset: Int) {
        precondition(offset >= 0 && offset + bytes.count <= memory.byteCount, "upload out of bounds")
        memcpy(memory.baseAddress + offset, bytes.baseAddress!, bytes.count)
    }
}
