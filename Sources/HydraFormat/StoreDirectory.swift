import Foundation
import Glibc
import HydraSystem

/// The on-disk layout of a store (formats/store-v1.md §2):
///
///     STORE/chunks/ab/ab12…   chunk files and file blobs, named by the SHA-256 of their bytes
///     STORE/models/NAME.json  one manifest per entry
///     STORE/.staging/…        conversions in progress (never read by readers)
public struct StoreDirectory: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    public var modelsDirectory: String { root + "/models" }
    public var chunksDirectory: String { root + "/chunks" }
    public var stagingDirectory: String { root + "/.staging" }

    public func manifestPath(_ name: String) -> String { modelsDirectory + "/" + name + ".json" }

    /// Path of the chunk or blob with this hash. Callers must pass a validated hash.
    public func chunkPath(_ sha256: String) -> String {
        precondition(isSHA256Hex(sha256), "chunk name must be a SHA-256 hex digest")
        return chunksDirectory + "/" + sha256.prefix(2) + "/" + sha256
    }

    /// Model names a store accepts: a letter or digit, then letters, digits, '.', '_' or '-'
    /// (at most 128), never containing "..": safe as a file name and in a URL path.
    public static func isValidModelName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 128, !name.contains("..") else { return false }
        func ok(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
        return ok(first) && name.utf8.allSatisfy { ok($0) || $0 == 46 || $0 == 95 || $0 == 45 }
    }

    public func modelNames() throws -> [String] {
        guard let items = try? FileManager.default.contentsOfDirectory(atPath: modelsDirectory) else {
            guard FileManager.default.fileExists(atPath: root) else { throw FormatError(root, "no such store directory") }
            return []
        }
        return items.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
            .filter(Self.isValidModelName).sorted()
    }

    /// Removes staging folders left by conversions whose process no longer exists.
    public func removeStaleStaging() {
        guard let items = try? FileManager.default.contentsOfDirectory(atPath: stagingDirectory) else { return }
        for item in items {
            // Staging folders are named NAME.PID.RANDOM.
            let parts = item.split(separator: ".")
            guard parts.count >= 3, let pid = Int32(parts[parts.count - 2]) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: stagingDirectory + "/" + item)
            }
        }
    }
}

/// Creates a directory and its parents; fine if it exists.
func makeDirectory(_ path: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw FormatError(path, "cannot create directory: \(error.localizedDescription)")
    }
}

/// fsyncs a directory so a rename inside it is durable.
func syncDirectory(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_DIRECTORY)
    guard fd >= 0 else { throw SystemError("open directory", path: path, errno: errno) }
    defer { close(fd) }
    _ = try retryingEINTR("fsync", path: path) { fsync(fd) }
}
