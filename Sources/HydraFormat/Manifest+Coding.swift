import HydraSystem
import Foundation

extension Manifest {
    /// Decodes a manifest, checking the format and version first so that a newer store is
    /// rejected with a clear message rather than a decoding error. Parsed by `JSONParser` and
    /// read field by field (a 110 KB manifest in ~1 ms, where `JSONDecoder` took 3–4 ms: a node
    /// cache and every worker decode one before their first chunk).
    public static func decode(_ bytes: [UInt8], file: String) throws -> Manifest {
        let root: JSONValue
        do { root = try JSONParser.parse(bytes) } catch {
            throw FormatError(file, "manifest is not valid JSON: \(error)")
        }
        guard case .object = root else { throw FormatError(file, "not a HydraServe manifest (not a JSON object)") }
        let format = root["format"]?.stringValue
        guard format == formatName else {
            throw FormatError(file, "not a HydraServe manifest (format is \(format.map { "'\($0)'" } ?? "missing"), expected '\(formatName)')")
        }
        guard let text = root["formatVersion"]?.stringValue, let found = FormatVersion(text) else {
            throw FormatError(file, "manifest formatVersion is missing or not MAJOR.MINOR")
        }
        guard found.major == version.major else {
            throw FormatError(file, "manifest format version \(found) is not supported: this build reads major version \(version.major) (\(version))")
        }
        let manifest: Manifest
        do { manifest = try Manifest(try JSONFields(root, path: "")) } catch let problem as JSONFields.Problem {
            throw FormatError(file, "invalid manifest: \(problem)")
        }
        try manifest.validate(file: file)
        return manifest
    }

    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array(try encoder.encode(self)) + [0x0A]
    }

    /// Structural checks a reader relies on: every reference in range, extents inside payloads.
    public func validate(file: String) throws {
        func fail(_ problem: String) -> FormatError { FormatError(file, "invalid manifest: \(problem)") }
        guard alignmentBytes > 0, alignmentBytes & (alignmentBytes - 1) == 0 else { throw fail("alignmentBytes \(alignmentBytes) is not a power of two") }
        for (index, chunk) in chunks.enumerated() {
            guard isSHA256Hex(chunk.sha256) else { throw fail("chunk \(index) has a malformed sha256") }
            if let xxh3 = chunk.xxh3, !DigestAlgorithm.xxh3.isWellFormed(xxh3) { throw fail("chunk \(index) has a malformed xxh3") }
            guard (0...Self.maxChunkBytes).contains(chunk.payloadBytes), chunk.payloadBytes % alignmentBytes == 0,
                  (0...Self.maxChunkBytes).contains(chunk.storedBytes) else {
                throw fail("chunk \(index) sizes are invalid")
            }
        }
        for file in files where !isSHA256Hex(file.sha256) || file.name.contains("/") {
            throw fail("file entry '\(file.name)' is malformed")
        }
        // Overflow-checked throughout: a manifest comes from a remote store, and no number in it
        // may stop the process that reads it.
        for tensor in tensors {
            var total = 0, overflow = false
            for extent in tensor.extents {
                guard extent.chunk >= 0, extent.chunk < chunks.count, extent.offset >= 0, extent.length >= 0,
                      extent.offset <= chunks[extent.chunk].payloadBytes,
                      extent.length <= chunks[extent.chunk].payloadBytes - extent.offset else {
                    throw fail("tensor '\(tensor.name)' has an extent outside its chunk")
                }
                let sum = total.addingReportingOverflow(extent.length)
                (total, overflow) = (sum.partialValue, overflow || sum.overflow)
            }
            let needed = tensor.shape.reduce((value: tensor.dtype.elementBytes, overflow: false)) { product, dimension in
                let next = product.value.multipliedReportingOverflow(by: dimension)
                return (next.partialValue, product.overflow || next.overflow)
            }
            guard tensor.shape.allSatisfy({ $0 >= 0 }), !overflow, !needed.overflow, total == needed.value else {
                throw fail("tensor '\(tensor.name)' extents hold \(total) bytes, not what \(tensor.dtype) \(tensor.shape) needs")
            }
        }
        for plan in stagePlans {
            for stage in plan.stages where stage.chunks.contains(where: { $0 < 0 || $0 >= chunks.count }) {
                throw fail("stage \(stage.index) of pp=\(plan.pp) names a chunk that does not exist")
            }
            for stage in plan.stages where !(0...(Self.maxChunkBytes * chunks.count)).contains(stage.bytes) {
                throw fail("stage \(stage.index) of pp=\(plan.pp) has \(stage.bytes) bytes, more than its model's chunks could hold")
            }
        }
    }
}

