import Foundation
import Glibc
import HydraSystem

/// The back half of the converter's pipeline: closed chunks are compressed and hashed on one
/// thread and written to the staging folder on another, while the converter fills the next
/// buffer. Buffers circulate through a fixed pool, which bounds memory to `bufferCount` chunks.
final class ChunkSink: @unchecked Sendable {
    struct Job {
        let index: Int
        let buffer: SharedBuffer
        let payloadBytes: Int
        let section: Section
        let layer: Int?
        let planes: Int
        var stored: [UInt8]? = nil  // compressed bytes, when compression paid off
        var sha256 = ""
        var xxh3 = ""
    }

    let compress: Bool
    let stagingDirectory: String
    let alreadyStored: @Sendable (String) -> Bool
    let freeBuffers: BlockingQueue<SharedBuffer>
    private let toHash: BlockingQueue<Job>
    private let toWrite: BlockingQueue<Job>
    private let done = DispatchGroup()
    private let lock = NSLock()
    private var chunks: [Int: Manifest.Chunk] = [:]
    private var stagedHashes = Set<String>()
    private var failure: Error?
    private(set) var bytesWritten = 0

    init(chunkSizeBytes: Int, bufferCount: Int = 4, hashThreads: Int = 2, compress: Bool, stagingDirectory: String,
         alreadyStored: @escaping @Sendable (String) -> Bool) {
        self.compress = compress
        self.stagingDirectory = stagingDirectory
        self.alreadyStored = alreadyStored
        freeBuffers = BlockingQueue(capacity: bufferCount)
        for _ in 0..<bufferCount { freeBuffers.put(SharedBuffer(count: chunkSizeBytes)) }
        toHash = BlockingQueue(capacity: bufferCount)
        toWrite = BlockingQueue(capacity: bufferCount)
        // SHA-256 (about 1.4 GB/s a core here) is the slowest stage: hash on several threads.
        let hashersLeft = LockedBox(hashThreads)
        for n in 0..<hashThreads {
            start("hydra-chunk-hash-\(n)") { [self] in
                while var job = toHash.take() {
                    if !failed { attempt { try hash(&job) } }
                    toWrite.put(job)
                }
                if hashersLeft.withValue({ $0 -= 1; return $0 }) == 0 { toWrite.close() }
            }
        }
        start("hydra-chunk-write") { [self] in
            while let job = toWrite.take() {
                if !failed { attempt { try write(job) } }
                freeBuffers.put(job.buffer)
            }
        }
    }

    private func start(_ name: String, _ body: @escaping @Sendable () -> Void) {
        done.enter()
        let thread = Thread { body(); self.done.leave() }
        thread.name = name
        thread.start()
    }

    private var failed: Bool { lock.withLock { failure != nil } }

    private func attempt(_ body: () throws -> Void) {
        do { try body() } catch { lock.withLock { if failure == nil { failure = error } } }
    }

    func submit(_ job: Job) throws {
        if let failure = lock.withLock({ failure }) { throw failure }
        toHash.put(job)
    }

    /// Waits for every submitted chunk; returns them in index order or throws the first failure.
    func finish() throws -> [Manifest.Chunk] {
        toHash.close()
        done.wait()
        if let failure { throw failure }
        return chunks.keys.sorted().map { chunks[$0]! }
    }

    /// Hashes of everything staged (chunks and blobs), for publishing.
    var staged: [String] { lock.withLock { stagedHashes.sorted() } }

    private func hash(_ job: inout Job) throws {
        let payload = UnsafeRawBufferPointer(start: job.buffer.baseAddress, count: job.payloadBytes)
        if compress {
            let compressed = try ChunkCodec.compress(payload, planes: job.planes)
            if compressed.count < job.payloadBytes { job.stored = compressed }
        }
        let stored = job.stored
        func hash(_ algorithm: DigestAlgorithm) -> String { stored.map { $0.withUnsafeBytes(algorithm.hex) } ?? algorithm.hex(payload) }
        job.sha256 = hash(.sha256)
        job.xxh3 = hash(.xxh3)
    }

    private func write(_ job: Job) throws {
        let payload = UnsafeRawBufferPointer(start: job.buffer.baseAddress, count: job.payloadBytes)
        let chunk = Manifest.Chunk(
            sha256: job.sha256, xxh3: job.xxh3, storedBytes: job.stored?.count ?? job.payloadBytes, payloadBytes: job.payloadBytes,
            compression: job.stored == nil ? .none : .zstd(planes: job.planes), section: job.section, layer: job.layer)
        if let stored = job.stored {
            try stored.withUnsafeBytes { try stage(job.sha256, $0) }
        } else {
            try stage(job.sha256, payload, aligned: true)
        }
        lock.withLock { chunks[job.index] = chunk }
    }

    /// Stages a blob under its hash unless this conversion or the store already has it.
    /// `aligned` payloads (page-aligned, whole pages) are written with O_DIRECT where the file
    /// system allows: no copy into the page cache, and the disk works while we hash.
    func stage(_ hash: String, _ bytes: UnsafeRawBufferPointer, aligned: Bool = false) throws {
        let isNew = lock.withLock { stagedHashes.insert(hash).inserted }
        guard isNew, !alreadyStored(hash) else { return }
        let path = stagingDirectory + "/" + hash
        if aligned, let direct = try FileDescriptor.createDirect(path) {
            try direct.write(bytes, at: 0)
        } else {
            let file = try FileDescriptor.create(path)
            try file.write(bytes, at: 0)
            file.startWriteback()
        }
        lock.withLock { bytesWritten += bytes.count }
    }
}
