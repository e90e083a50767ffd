import Glibc
import HydraFormat

/// Preallocated K and V blocks for a stage's layers. A sequence owns a list of block ids (its
/// block table); position p lives in block `table[p / blockSize]`, slot `p % blockSize`.
/// Within a block the kv heads lie one after another, each with its slots contiguous, so that
/// attention reads one head's keys (or values) of a block as one sequential run.
/// Never sized from `max_position_embeddings`: the caller chooses the block count.
///
/// Elements are f32 (the default: exact against the f32 reference) or f16 (`KVDType.f16`: half
/// the bytes, as llama.cpp keeps its cache; rounded on write, widened in the attention kernels).
/// Either way `readBlocks`/`writeBlocks` speak f32, so caches of both kinds exchange blocks.
public final class KVCache: @unchecked Sendable {
    public let layerCount: Int
    public let blockSize: Int
    public let blockCount: Int
    /// Floats per token per layer for K (and for V): `heads` kv heads of `width / heads` each.
    public let width: Int
    public let heads: Int
    public let dtype: KVDType
    private let keys: [DeviceMemory]
    private let values: [DeviceMemory]
    public let blocks: BlockManager

    /// `sharing`: the block manager of a cache this one replaces (consolidation keeps block ids).
    public init(device: any Device, layerCount: Int, width: Int, heads: Int, blockSize: Int = 16, blockCount: Int,
                dtype: KVDType = .f32, sharing: BlockManager? = nil) {
        precondition(blockSize > 0 && blockCount > 0 && heads > 0 && width % heads == 0)
        precondition(sharing.map { $0.capacity == blockCount } ?? true, "a shared block manager must have the same block count")
        self.layerCount = layerCount
        self.width = width
        self.heads = heads
        self.blockSize = blockSize
        self.blockCount = blockCount
        self.dtype = dtype
        let bytes = blockCount * blockSize * width * dtype.byteCount
        keys = (0..<layerCount).map { _ in device.allocate(bytes: bytes, use: .growing) }
        values = (0..<layerCount).map { _ in device.allocate(bytes: bytes, use: .growing) }
        blocks = sharing ?? BlockManager(count: blockCount)
    }

    /// Floats one block holds for one layer, for K (and as many for V).
    public var floatsPerBlock: Int { blockSize * width }

    /// Copies layer `layer` of `source` (all blocks, K and V) into layer `destination` here.
    public func copyLayer(_ layer: Int, from source: KVCache, to destination: Int) {
        precondition(source.width == width && source.heads == heads && source.blockSize == blockSize && source.blockCount == blockCount
                     && source.dtype == dtype)
        let bytes = blockCount * floatsPerBlock * dtype.byteCount
        memcpy(keys[destination].baseAddress, source.keys[layer].baseAddress, bytes)
        memcpy(values[destination].baseAddress, source.values[layer].baseAddress, bytes)
    }

    /// The K then V floats of `blocks` in `layer`, block after block.
    public func readBlocks(layer: Int, blocks ids: [Int]) -> [Float] {
        var out = [Float](repeating: 0, count: 2 * ids.count * floatsPerBlock)
        out.withUnsafeMutableBufferPointer { buffer in
            for (i, block) in ids.enumerated() {
                precondition(block >= 0 && block < blockCount, "block \(block) out of range")
                widen(keyBytes(layer), at: block * floatsPerBlock, into: buffer.baseAddress! + 2 * i * floatsPerBlock, count: floatsPerBlock)
                widen(valueBytes(layer), at: block * floatsPerBlock, into: buffer.baseAddress! + (2 * i + 1) * floatsPerBlock, count: floatsPerBlock)
            }
        }
        return out
    }

    /// Writes what `readBlocks` returned (possibly on another worker) into `layer`.
    public func writeBlocks(layer: Int, blocks ids: [Int], _ data: ArraySlice<Float>) {
        precondition(data.count == 2 * ids.count * floatsPerBlock, "KV data does not match the block list")
        data.withUnsafeBufferPointer { buffer in
            for (i, block) in ids.enumerated() {
                precondition(block >= 0 && block < blockCount, "block \(block) out of range")
                narrow(buffer.baseAddress! + 2 * i * floatsPerBlock, into: keyBytes(layer), at: block * floatsPerBlock, count: floatsPerBlock)
                narrow(buffer.baseAddress! + (2 * i + 1) * floatsPerBlock, into: valueBytes(layer), at: block * floatsPerBlock, count: floatsPerBlock)
            }
        }
    }

    /// `count` stored elements from element `index` of `base`, as f32.
    private func widen(_ base: UnsafeMutableRawPointer, at index: Int, into out: UnsafeMutablePointer<Float>, count: Int) {
        switch dtype {
        case .f32: out.update(from: (base + index * 4).assumingMemoryBound(to: Float.self), count: count)
        case .f16:
            let source = (base + index * 2).assumingMemoryBound(to: Float16.self)
            for j in 0..<count { out[j] = Float(source[j]) }
        }
    }

    /// `count` floats stored from element `index` of `base`, rounded to the cache's dtype.
    private func narrow(_ floats: UnsafePointer<Float>, into base: UnsafeMutableRawPointer, at index: Int, count: Int) {
        switch dtype {
        case .f32: (base + index * 4).assumingMemoryBound(to: Float.self).update(from: floats, count: count)
        case .f16:
            let target = (base + index * 2).assumingMemoryBound(to: Float16.self)
            for j in 0..<count { target[j] = Float16(floats[j]) }
        }
    }

    /// Makes every K and V page resident now (zero-filled), so the first requests do not pay
    /// page faults; a cold-starting worker does this while its weights are still arriving.
    public func prefault() {
        for memory in keys + values { memset(memory.baseAddress, 0, memory.byteCount) }
    }

    /// Bytes held by all K and V blocks.
    public var byteCount: Int { 2 * layerCount * blockCount * blockSize * width * dtype.byteCount }

    /// Elements of one kv head's K (or V) for one token.
    public var headWidth: Int { width / heads }
    /// From one kv head's run of a block to the next one's.
    var headStride: Int { blockSize * headWidth }

    /// Where position `position`'s K (or V) for kv head 0 starts; head g is `g · headStride` on.
    @inline(__always)
    func slot(_ table: [Int], _ position: Int) -> Int {
        table[position / blockSize] * blockSize * width + (position % blockSize) * headWidth
    }

    func keyBytes(_ layer: Int) -> UnsafeMutableRawPointer { keys[layer].baseAddress }
    func valueBytes(_ layer: Int) -> UnsafeMutableRawPointer { values[layer].baseAddress }

    /// Stores the K and V rows of a batch at their positions.
    func write(layer: Int, keys k: Matrix, values v: Matrix, batch: Batch) {
        precondition(k.columns == width && v.columns == width)
        let kb = keyBytes(layer), vb = valueBytes(layer)
        k.values.withUnsafeBufferPointer { ks in
            v.values.withUnsafeBufferPointer { vs in
                for sequence in batch.sequences {
                    for i in 0..<sequence.tokenCount {
                        let row = sequence.firstRow + i
                        let destination = slot(sequence.blockTable, sequence.startPosition + i)
                        for head in 0..<heads {
                            let to = destination + head * headStride, from = row * width + head * headWidth
                            narrow(ks.baseAddress! + from, into: kb, at: to, count: headWidth)
                            narrow(vs.baseAddress! + from, into: vb, at: to, count: headWidth)
                        }
                    }
                }
            }
        }
    }
}

/// How a KV cache stores its elements.
public enum KVDType: String, Sendable, CaseIterable, Codable {
    /// Exact: what the attention computes in.
    case f32
    /// Half the bytes (and twice the tokens in the same memory), rounded to 11 significant bits.
    case f16

    public var byteCount: Int { self == .f32 ? 4 : 2 }
}

/// Hands out KV block ids from a fixed pool, with reference counts (a block shared by two
/// sequences is freed when the last one lets go).
public final class BlockManager: @unchecked Sendable {
    private var free: [Int]
    private var references: [Int]

    /// Block ids run 0..<capacity.
    public let capacity: Int

    init(count: Int) {
        capacity = count
        free = Array((0..<count).reversed())
        references = [Int](repeating: 0, count: count)
    }

    public var freeCount: Int { free.count }

    /// `count` fresh blocks, or nil when the pool cannot supply them (nothing is taken then).
    public func allocate(_ count: Int) -> [Int]? {
        guard count <= free.count else { return nil }
        let taken = Array(free.suffix(count).reversed())
        free.removeLast(count)
        for block in taken { references[block] = 1 }
        return taken
    }

    public func retain(_ blocks: [Int]) {
        for block in blocks {
            precondition(references[block] > 0, "retaining free block \(block)")
            references[block] += 1
        }
    }

    public func release(_ blocks: [Int]) {
        for block in blocks {
            precondition(references[block] > 0, "releasing free block \(block)")
            references[block] -= 1
            if references[block] == 0 { free.append(block) }
        }
    }
}
