/// Reading a manifest out of its parsed JSON (formats/store-v1.md names every field).
/// `Manifest.decode` is the entry point: it checks the format and version first.
extension Manifest {
    init(_ fields: JSONFields) throws {
        format = try fields.string("format")
        formatVersion = try fields.string("formatVersion")
        name = try fields.string("name")
        architecture = try fields.string("architecture")
        layerCount = try fields.int("layerCount")
        tiedEmbeddings = try fields.bool("tiedEmbeddings")
        alignmentBytes = try fields.int("alignmentBytes")
        chunkSizeBytes = try fields.int("chunkSizeBytes")
        let source = try fields.object("source")
        self.source = SourceInfo(kind: try source.enumeration("kind"), dtypePolicy: try source.enumeration("dtypePolicy"))
        config = try fields.value("config")
        files = try fields.objects("files") { try FileEntry(name: $0.string("name"), sha256: $0.string("sha256"), bytes: $0.int("bytes")) }
        chunks = try fields.objects("chunks", Chunk.init)
        tensors = try fields.objects("tensors", Tensor.init)
        stagePlans = try fields.objects("stagePlans") { plan in try StagePlan(pp: plan.int("pp"), stages: plan.objects("stages", Stage.init)) }
    }
}

extension Manifest.Chunk {
    init(_ fields: JSONFields) throws {
        sha256 = try fields.string("sha256")
        xxh3 = try fields.optionalString("xxh3")
        storedBytes = try fields.int("storedBytes")
        payloadBytes = try fields.int("payloadBytes")
        let compressionName = try fields.string("compression")
        guard let compression = Compression(name: compressionName) else {
            throw JSONFields.Problem(description: "unknown compression '\(compressionName)' at \(fields.path)")
        }
        self.compression = compression
        section = try fields.enumeration("section")
        layer = try fields.optionalInt("layer")
    }
}

extension Manifest.Tensor {
    init(_ fields: JSONFields) throws {
        name = try fields.string("name")
        dtype = try fields.enumeration("dtype")
        shape = try fields.ints("shape")
        section = try fields.enumeration("section")
        layer = try fields.optionalInt("layer")
        extents = try fields.objects("extents") { try Manifest.Extent(chunk: $0.int("chunk"), offset: $0.int("offset"), length: $0.int("length")) }
    }
}

extension Manifest.Stage {
    init(_ fields: JSONFields) throws {
        index = try fields.int("index")
        firstLayer = try fields.int("firstLayer")
        endLayer = try fields.int("endLayer")
        embed = try fields.bool("embed")
        head = try fields.bool("head")
        chunks = try fields.ints("chunks")
        bytes = try fields.int("bytes")
    }
}
