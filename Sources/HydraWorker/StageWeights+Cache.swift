import HydraEngine
import HydraFormat
import HydraStore
import HydraSystem

extension StageWeights {
    /// Copies every chunk an attachment delivers into place, the moment each one lands
    /// (compressed chunks decoded through one reused buffer). `onChunk` fires after each.
    /// Returns how many chunks arrived.
    @discardableResult
    func absorb(_ attachment: CacheAttachment, onChunk: () -> Void = {}) throws -> Int {
        var scratch: SharedBuffer?
        var count = 0
        while let chunk = try attachment.next() {
            let stored = chunk.memory.bytes
            let size = chunk.chunk.payloadBytes
            if chunk.chunk.compression == .none {
                absorb(chunk: chunk.index, payload: UnsafeRawBufferPointer(rebasing: stored[0..<size]))
            } else {
                if (scratch?.count ?? 0) < size { scratch = SharedBuffer(count: size) }
                let payload = UnsafeMutableRawBufferPointer(start: scratch!.baseAddress, count: size)
                try ChunkCodec.decode(stored, compression: chunk.chunk.compression, into: payload)
                absorb(chunk: chunk.index, payload: UnsafeRawBufferPointer(payload))
            }
            count += 1
            onChunk()
        }
        return count
    }
}
