/// Builds the manifest's stage plans for pp = 1…maxPP from the packed chunks.
enum StagePlans {
    static func make(chunks: [Manifest.Chunk], tensors: [Manifest.Tensor], layerCount: Int, tied: Bool, maxPP: Int) -> [Manifest.StagePlan] {
        var layerChunks = [[Int]](repeating: [], count: layerCount)
        var embedChunks: [Int] = [], headChunks: [Int] = []
        for (index, chunk) in chunks.enumerated() {
            switch chunk.section {
            case .embed: embedChunks.append(index)
            case .head: headChunks.append(index)
            case .layer: layerChunks[chunk.layer!].append(index)
            }
        }
        // The chunks a tied head reads: those holding the token embedding.
        var tiedChunks: [Int] = []
        if tied {
            for tensor in tensors where TensorPlacement.isTokenEmbedding(tensor.name) {
                for extent in tensor.extents where !tiedChunks.contains(extent.chunk) { tiedChunks.append(extent.chunk) }
            }
        }
        func bytes(_ indices: [Int]) -> Int { indices.reduce(0) { $0 + chunks[$1].storedBytes } }
        let planner = StagePlanner(layerBytes: layerChunks.map(bytes), embedBytes: bytes(embedChunks),
                                   headBytes: bytes(headChunks), tiedHeadBytes: bytes(tiedChunks))
        var plans: [Manifest.StagePlan] = []
        for pp in 1...max(1, maxPP) {
            guard let ranges = planner.plan(pp: pp) else { break }
            let stages = ranges.enumerated().map { index, range -> Manifest.Stage in
                let first = index == 0, last = index == ranges.count - 1
                var list = first ? embedChunks : []
                for layer in range { list += layerChunks[layer] }
                if last {
                    list += headChunks
                    // Execution order: the head runs last, reading the tied embedding then.
                    list += tiedChunks.filter { !list.contains($0) }
                }
                return Manifest.Stage(index: index, firstLayer: range.lowerBound, endLayer: range.upperBound,
                                      embed: first, head: last, chunks: list, bytes: bytes(list))
            }
            plans.append(Manifest.StagePlan(pp: pp, stages: stages))
        }
        return plans
    }
}
