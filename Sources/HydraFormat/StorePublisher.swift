import Foundation
import Glibc
import HydraSystem

/// Moves a finished conversion from its staging folder into the store: chunks first (each
/// fsynced, renamed under its hash), then the manifest by one atomic rename. If publishing
/// fails, the chunks it added are removed again, so a failed conversion leaves nothing behind.
enum StorePublisher {
    static func publish(_ manifest: Manifest, staged: [String], staging: String, store: StoreDirectory) throws {
        var added: [String] = []
        do {
            var touchedDirectories = Set<String>()
            for hash in staged {
                let stagedPath = staging + "/" + hash
                guard FileManager.default.fileExists(atPath: stagedPath) else { continue }  // already in the store
                let destination = store.chunkPath(hash)
                let directory = String(destination.dropLast(hash.count + 1))
                if !touchedDirectories.contains(directory) { try makeDirectory(directory) }
                touchedDirectories.insert(directory)
                if FileManager.default.fileExists(atPath: destination) { continue }  // raced with another conversion
                try syncFile(stagedPath)
                guard rename(stagedPath, destination) == 0 else { throw SystemError("rename", path: destination, errno: errno) }
                added.append(destination)
            }
            for directory in touchedDirectories.sorted() { try syncDirectory(directory) }

            let temporary = staging + "/manifest.json"
            let file = try FileDescriptor.create(temporary)
            try manifest.encoded().withUnsafeBytes { try file.write($0, at: 0) }
            try file.sync()
            let destination = store.manifestPath(manifest.name)
            guard rename(temporary, destination) == 0 else { throw SystemError("rename", path: destination, errno: errno) }
            try syncDirectory(store.modelsDirectory)
        } catch {
            for path in added { unlink(path) }
            throw error
        }
    }

    static func syncFile(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SystemError("open", path: path, errno: errno) }
        defer { close(fd) }
        _ = try retryingEINTR("fsync", path: path) { fsync(fd) }
    }
}
