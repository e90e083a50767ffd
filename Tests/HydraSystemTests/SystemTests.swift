import Glibc
import Testing
import HydraSystem

@Suite struct SHA256Tests {
    @Test func knownVectors() {
        #expect(SHA256Hasher.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256Hasher.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func incrementalEqualsOneShot() {
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        var hasher = SHA256Hasher()
        bytes.withUnsafeBytes { all in
            hasher.update(UnsafeRawBufferPointer(rebasing: all[0..<333]))
            hasher.update(UnsafeRawBufferPointer(rebasing: all[333...]))
        }
        #expect(hasher.finalizeHex() == SHA256Hasher.hex(bytes))
    }

    @Test func hexNameValidation() {
        #expect(isSHA256Hex(String(repeating: "a", count: 64)))
        #expect(!isSHA256Hex(String(repeating: "A", count: 64)))
        #expect(!isSHA256Hex("../" + String(repeating: "a", count: 61)))
        #expect(!isSHA256Hex(String(repeating: "a", count: 63)))
    }
}

@Suite struct XXH3Tests {
    static let pattern = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7) }

    /// Reference values from Python's `xxhash` package (an independent build of the reference
    /// implementation): the short-input path, and the long one (over 240 bytes) with stripes.
    @Test func knownVectors() {
        #expect([UInt8]().withUnsafeBytes(DigestAlgorithm.xxh3.hex) == "2d06800538d394c2")
        #expect(Array("abc".utf8).withUnsafeBytes(DigestAlgorithm.xxh3.hex) == "78af5f94892f3950")
        #expect(Self.pattern.withUnsafeBytes(DigestAlgorithm.xxh3.hex) == "01271d2740e5fca3")
    }

    @Test func incrementalEqualsOneShotForBothAlgorithms() {
        for algorithm in DigestAlgorithm.allCases {
            for split in [0, 1, 239, 333, 65_536, 99_999] {
                let digest = IncrementalDigest(algorithm)
                Self.pattern.withUnsafeBytes { all in
                    digest.update(UnsafeRawBufferPointer(rebasing: all[0..<split]))
                    digest.update(UnsafeRawBufferPointer(rebasing: all[split...]))
                }
                #expect(digest.byteCount == Self.pattern.count)
                #expect(digest.finalizeHex() == Self.pattern.withUnsafeBytes(algorithm.hex), "\(algorithm) split at \(split)")
            }
        }
    }

    @Test func wellFormedDigests() {
        #expect(DigestAlgorithm.xxh3.isWellFormed("01271d2740e5fca3"))
        #expect(!DigestAlgorithm.xxh3.isWellFormed("01271D2740E5FCA3"))
        #expect(!DigestAlgorithm.xxh3.isWellFormed("01271d2740e5fca"))
        #expect(!DigestAlgorithm.xxh3.isWellFormed(String(repeating: "a", count: 64)))
        #expect(DigestAlgorithm.sha256.isWellFormed(String(repeating: "a", count: 64)))
    }
}

@Suite struct ZstdTests {
    @Test func roundTrip() throws {
        let payload = (0..<65_536).map { UInt8(truncatingIfNeeded: ($0 / 7) % 13) }
        let compressed = try payload.withUnsafeBytes { try Zstd.compress($0) }
        #expect(compressed.count < payload.count / 4)
        var out = [UInt8](repeating: 0, count: payload.count)
        try compressed.withUnsafeBytes { source in try out.withUnsafeMutableBytes { try Zstd.decompress(source, into: $0) } }
        #expect(out == payload)
    }

    @Test func corruptFrameThrows() throws {
        var out = [UInt8](repeating: 0, count: 16)
        let garbage: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        #expect(throws: Zstd.Failure.self) {
            try garbage.withUnsafeBytes { source in try out.withUnsafeMutableBytes { try Zstd.decompress(source, into: $0) } }
        }
    }
}

@Suite struct FileTests {
    @Test func alignedBufferIsPageAligned() {
        let buffer = AlignedBuffer(count: 12_345)
        #expect(Int(bitPattern: buffer.baseAddress) % 4096 == 0)
        #expect(alignUp(4097, to: 4096) == 8192)
        #expect(alignUp(0, to: 4096) == 0)
    }

    @Test func readPastEndThrowsTooShort() throws {
        let path = "/tmp/hydra-system-test-\(UInt32.random(in: 0...UInt32.max))"
        do {
            let file = try FileDescriptor.create(path)
            try [UInt8](repeating: 9, count: 10).withUnsafeBytes { try file.write($0, at: 0) }
        }
        defer { unlink(path) }
        let file = try FileDescriptor.open(path)
        #expect(try file.read(count: 10, at: 0) == [UInt8](repeating: 9, count: 10))
        #expect(throws: FileTooShort.self) { _ = try file.read(count: 11, at: 0) }
        #expect(throws: SystemError.self) { _ = try FileDescriptor.open(path + ".missing") }
    }
}
