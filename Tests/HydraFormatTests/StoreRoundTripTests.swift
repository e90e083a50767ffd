import Foundation
import Testing
@testable import HydraFormat

@Suite struct StoreRoundTripTests {
    /// Every tiny fixture, every dtype variant, with a chunk size (16 KiB) that forces the embedding to split.
    @Test(arguments: Fixtures.tinyModels)
    func tensorsReadBackByteIdentical(model: String) throws {
        let store = TemporaryDirectory()
        let source = try Converter.loadSource(model)
        var options = ConvertOptions(name: "m")
        options.chunkSizeBytes = 16 << 10
        let result = try Converter.convert(source, into: StoreDirectory(root: store.path), options: options)
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "m")
        #expect(entry.manifest == result.manifest)

        let reference = referenceSafetensors(model + "/model.safetensors")
        #expect(entry.manifest.tensors.count == reference.count)
        var split = 0
        for (name, expected) in reference {
            let tensor = try #require(entry.tensor(named: name), "\(name) missing")
            #expect(tensor.dtype.rawValue == expected.dtype)
            #expect(tensor.shape == expected.shape)
            #expect(try entry.readTensor(name) == expected.bytes, "\(name) differs")
            for extent in tensor.extents { #expect(extent.offset % 4096 == 0) }
            if tensor.extents.count > 1 { split += 1 }
        }
        #expect(split > 0, "the 16 KiB chunk size should split the embedding")
        // Chunks never span two layers.
        for chunk in entry.manifest.chunks {
            let owners = Set(entry.manifest.tensors.filter { $0.extents.contains { entry.manifest.chunks[$0.chunk] == chunk } }
                .map { "\($0.section)\($0.layer ?? -1)" })
            #expect(owners.count == 1)
        }
    }

    @Test(arguments: Fixtures.tinyModels)
    func stagePlansAreContiguousCompleteAndBalanced(model: String) throws {
        let store = TemporaryDirectory()
        let result = try Converter.convert(try Converter.loadSource(model), into: StoreDirectory(root: store.path), options: ConvertOptions(name: "m"))
        let manifest = result.manifest
        for pp in [1, 2, 4] where pp <= manifest.layerCount {
            let plan = try #require(manifest.stagePlans.first { $0.pp == pp })
            #expect(plan.stages.count == pp)
            #expect(plan.stages.first!.firstLayer == 0 && plan.stages.last!.endLayer == manifest.layerCount)
            for (a, b) in zip(plan.stages, plan.stages.dropFirst()) { #expect(a.endLayer == b.firstLayer) }
            for stage in plan.stages { #expect(stage.endLayer > stage.firstLayer) }
            #expect(plan.stages.map(\.embed) == (0..<pp).map { $0 == 0 })
            #expect(plan.stages.map(\.head) == (0..<pp).map { $0 == pp - 1 })
            // Every tensor of the stage's layers is in the stage's chunks.
            for stage in plan.stages {
                for tensor in manifest.tensors {
                    let mine = tensor.section == .layer ? (stage.firstLayer..<stage.endLayer).contains(tensor.layer!)
                        : tensor.section == .embed ? stage.embed : stage.head
                    if mine { #expect(tensor.extents.allSatisfy { stage.chunks.contains($0.chunk) }) }
                }
            }
            // Balanced: no other contiguous split has a smaller largest stage.
            #expect(plan.stages.map(\.bytes).max()! == bruteForceBestLargest(manifest: manifest, pp: pp))
        }
    }

    @Test func tiedHeadPutsEmbeddingOnLastStage() throws {
        let store = TemporaryDirectory()
        let result = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/opt-tiny"),
                                           into: StoreDirectory(root: store.path), options: ConvertOptions(name: "opt"))
        #expect(result.manifest.tiedEmbeddings)
        let embedding = try #require(result.manifest.tensors.first { $0.name == "model.decoder.embed_tokens.weight" })
        let last = result.manifest.stagePlans[1].stages[1]
        #expect(embedding.extents.allSatisfy { last.chunks.contains($0.chunk) })
        let llama = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/llama2-tiny"),
                                          into: StoreDirectory(root: store.path), options: ConvertOptions(name: "llama"))
        #expect(!llama.manifest.tiedEmbeddings)
    }

    @Test func readChunkIntoCallerBufferAndStageOrder() throws {
        let store = TemporaryDirectory()
        _ = try Converter.convert(try Converter.loadSource(Fixtures.root + "/tiny/llama3-tiny"),
                                  into: StoreDirectory(root: store.path), options: ConvertOptions(name: "l3"))
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "l3")
        let chunks = try entry.stageChunks(1, of: 2)
        let sections = chunks.map { $0.chunk.section }
        #expect(sections == sections.sorted())  // execution order: layers, then head
        #expect(chunks.compactMap { $0.chunk.layer } == chunks.compactMap { $0.chunk.layer }.sorted())
        let first = chunks[0]
        var buffer = [UInt8](repeating: 0xEE, count: first.chunk.payloadBytes)
        try buffer.withUnsafeMutableBytes { try entry.readChunk(first.index, into: $0, verify: true) }
        let tensor = try #require(entry.manifest.tensors.first { $0.extents.first?.chunk == first.index })
        let extent = tensor.extents[0]
        #expect(Array(buffer[extent.offset..<(extent.offset + extent.length)]) == (try entry.readTensor(tensor.name)))
        #expect(throws: FormatError.self) { _ = try entry.stageChunks(0, of: 99) }
        #expect(throws: FormatError.self) { _ = try entry.readTensor("no.such.tensor") }
    }

    @Test func compressedStoreReadsBackIdentical() throws {
        let store = TemporaryDirectory()
        let model = Fixtures.root + "/tiny/llama2-tiny/bfloat16"
        var options = ConvertOptions(name: "z")
        options.compress = true
        let result = try Converter.convert(try Converter.loadSource(model), into: StoreDirectory(root: store.path), options: options)
        #expect(result.manifest.chunks.contains { $0.compression != .none })
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "z")
        for (name, expected) in referenceSafetensors(model + "/model.safetensors") {
            #expect(try entry.readTensor(name) == expected.bytes)
        }
        #expect(Verifier.verify(entry).problems.isEmpty)
    }

    @Test func dtypePolicyRoundsToBF16NearestEven() throws {
        let store = TemporaryDirectory()
        let model = Fixtures.root + "/tiny/llama2-tiny"
        var options = ConvertOptions(name: "b")
        options.dtype = .bf16
        _ = try Converter.convert(try Converter.loadSource(model), into: StoreDirectory(root: store.path), options: options)
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "b")
        // The fixture's bfloat16/ copy was rounded by torch: the store must match it bit for bit.
        for (name, expected) in referenceSafetensors(model + "/bfloat16/model.safetensors") {
            #expect(try entry.readTensor(name) == expected.bytes, "\(name)")
        }
    }

    @Test func shardedCheckpointMatchesSingleFile() throws {
        let dir = TemporaryDirectory()
        let model = Fixtures.root + "/tiny/llama2-tiny"
        let tensors = referenceSafetensors(model + "/model.safetensors").sorted { $0.key < $1.key }
        let half = tensors.count / 2
        var map: [String] = []
        for (index, part) in [tensors[..<half], tensors[half...]].enumerated() {
            let file = "model-0000\(index + 1)-of-00002.safetensors"
            dir.write(file, makeSafetensors(part.map { ($0.key, $0.value.dtype, $0.value.shape, $0.value.bytes) }))
            map += part.map { "\"\($0.key)\": \"\(file)\"" }
        }
        dir.write("model.safetensors.index.json", Array("{\"metadata\":{},\"weight_map\":{\(map.joined(separator: ","))}}".utf8))
        try FileManager.default.copyItem(atPath: model + "/config.json", toPath: dir.path + "/config.json")
        let store = TemporaryDirectory()
        _ = try Converter.convert(try Converter.loadSource(dir.path), into: StoreDirectory(root: store.path), options: ConvertOptions(name: "s"))
        let entry = try StoreEntry(store: StoreDirectory(root: store.path), name: "s")
        for (name, expected) in tensors { #expect(try entry.readTensor(name) == expected.bytes) }
    }
}

/// The smallest possible largest-stage size over every contiguous split (exhaustive; tiny models only).
func bruteForceBestLargest(manifest: Manifest, pp: Int) -> Int {
    let n = manifest.layerCount
    func chunks(_ section: Section, _ layer: Int?) -> [Int] {
        manifest.chunks.indices.filter { manifest.chunks[$0].section == section && manifest.chunks[$0].layer == layer }
    }
    var tied: [Int] = []
    if manifest.tiedEmbeddings {
        for tensor in manifest.tensors where TensorPlacement.isTokenEmbedding(tensor.name) { tied += tensor.extents.map(\.chunk) }
    }
    func bytes(_ stage: Int, _ range: Range<Int>) -> Int {
        var set = Set<Int>()
        if stage == 0 { set.formUnion(chunks(.embed, nil)) }
        for layer in range { set.formUnion(chunks(.layer, layer)) }
        if stage == pp - 1 { set.formUnion(chunks(.head, nil)); set.formUnion(tied) }
        return set.reduce(0) { $0 + manifest.chunks[$1].storedBytes }
    }
    var best = Int.max
    func search(_ stage: Int, _ start: Int, _ largest: Int) {
        if stage == pp - 1 { best = min(best, max(largest, bytes(stage, start..<n))); return }
        guard start < n else { return }
        for end in (start + 1)...(n - (pp - 1 - stage)) { search(stage + 1, end, max(largest, bytes(stage, start..<end))) }
    }
    search(0, 0, 0)
    return best
}
