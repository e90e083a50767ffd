import Foundation
import Glibc
import Testing
@testable import HydraSystem

@Suite struct FileBatchReaderTests {
    /// A file of `size` bytes where byte i is a function of i, under /tmp (a disk: O_DIRECT works).
    static func makeFile(size: Int) throws -> String {
        let path = "/tmp/hydra-reader-\(UInt32.random(in: 0...UInt32.max))"
        let file = try FileDescriptor.create(path)
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }
        try bytes.withUnsafeBytes { try file.write($0, at: 0) }
        return path
    }

    static func expected(_ range: Range<Int>) -> [UInt8] {
        range.map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }
    }

    static let readers: [(String, @Sendable () -> any FileBatchReader)] = [
        ("io_uring or its fallback", { FileReaders.make() }),
        ("pread", { PReadBatchReader(reason: "test") }),
    ]

    @Test(arguments: [true, false], ["io_uring or its fallback", "pread"])
    func readsRangesExactly(direct: Bool, backend: String) async throws {
        let size = 9 << 20 + 4096 * 3  // more than two 4 MiB pieces
        let path = try Self.makeFile(size: size)
        defer { unlink(path) }
        let reader = Self.readers.first { $0.0 == backend }!.1()
        if backend != "pread" && ProcessInfo.processInfo.environment["HYDRA_DISABLE_IO_URING"] == nil {
            #expect(reader.backend == "io_uring", "io_uring is enabled on this machine")
        }
        let file = try FileReaders.open(path, direct: direct)
        #expect(file.isDirect == direct)
        let ranges = [0..<size, 4096..<(4096 * 5), (8 << 20)..<size]
        let buffers = ranges.map { SharedBuffer(count: $0.count) }
        try await reader.read(zip(ranges, buffers).map {
            FileRead(fd: file.rawValue, offset: $0.lowerBound, length: $0.count, buffer: $1.baseAddress, path: path)
        })
        for (range, buffer) in zip(ranges, buffers) {
            #expect(Array(UnsafeRawBufferPointer(buffer.bytes)) == Self.expected(range), "\(range)")
        }
    }

    /// A warm buffered read is copied by the ring's io_uring workers (threads of this process
    /// named iou-wrk-<the ring thread's id>), not inline by the ring's one thread: the copy then
    /// runs on every core.
    @Test func bufferedReadsRunOnTheKernelWorkers() async throws {
        guard case .success(let reader) = IOUringBatchReader.make(queueDepth: 8) else { return }  // no io_uring here
        let size = 16 << 20
        let path = try Self.makeFile(size: size)  // just written: in the page cache
        defer { unlink(path) }
        let file = try FileReaders.open(path, direct: false)
        let buffer = SharedBuffer(count: size)
        try await reader.read([FileRead(fd: file.rawValue, offset: 0, length: size, buffer: buffer.baseAddress, path: path)])
        #expect(Array(UnsafeRawBufferPointer(buffer.bytes)) == Self.expected(0..<size))
        let workers = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").filter { task in
            (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) == "iou-wrk-\(reader.threadID.value)\n"
        }
        #expect(!workers.isEmpty, "no io_uring worker thread copied the buffered read")
    }

    @Test func readPastTheEndIsAShortRead() async throws {
        let path = try Self.makeFile(size: 10_000)
        defer { unlink(path) }
        let file = try FileDescriptor.open(path)
        let buffer = SharedBuffer(count: 20_000)
        for (_, make) in Self.readers {
            let error = await #expect(throws: ShortRead.self) {
                try await make().read([FileRead(fd: file.rawValue, offset: 0, length: 20_000, buffer: buffer.baseAddress, path: path)])
            }
            #expect(error?.offset == 10_000)
        }
    }

    @Test func badDescriptorIsASystemErrorAndTheReaderCarriesOn() async throws {
        let reader = FileReaders.make()
        let buffer = SharedBuffer(count: 4096)
        await #expect(throws: SystemError.self) {
            try await reader.read([FileRead(fd: 9999, offset: 0, length: 4096, buffer: buffer.baseAddress, path: "nowhere")])
        }
        let path = try Self.makeFile(size: 4096)
        defer { unlink(path) }
        let file = try FileDescriptor.open(path)
        try await reader.read([FileRead(fd: file.rawValue, offset: 0, length: 4096, buffer: buffer.baseAddress, path: path)])
        #expect(Array(UnsafeRawBufferPointer(buffer.bytes)) == Self.expected(0..<4096))
    }

    @Test func concurrentBatchesAllComplete() async throws {
        let size = 1 << 20
        let path = try Self.makeFile(size: size)
        defer { unlink(path) }
        let reader = FileReaders.make()
        let file = try FileDescriptor.open(path)
        let fd = file.rawValue
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for task in 0..<32 {
                group.addTask {
                    let offset = task * 4096 * 7 % (size - 65536)
                    let buffer = SharedBuffer(count: 65536)
                    try await reader.read((0..<4).map { i in
                        FileRead(fd: fd, offset: offset + i * 16384, length: 16384, buffer: buffer.baseAddress + i * 16384, path: path)
                    })
                    return Array(UnsafeRawBufferPointer(buffer.bytes)) == Self.expected(offset..<(offset + 65536))
                }
            }
            var all = 0
            for try await ok in group { #expect(ok); all += 1 }
            #expect(all == 32)
        }
        withExtendedLifetime(file) {}
    }
}
