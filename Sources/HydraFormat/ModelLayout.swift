/// A source model's tensors placed into sections and layers, in execution order, with the
/// layer count and head tying checked against the config.
struct ModelLayout {
    let ordered: [(tensor: SourceTensor, section: Section, layer: Int?)]
    let layerCount: Int
    let tied: Bool
    let architecture: String

    init(source: SourceModel, name: String) throws {
        var placed: [(tensor: SourceTensor, section: Section, layer: Int?, index: Int)] = []
        for (index, tensor) in source.tensors.enumerated() {
            guard let placement = TensorPlacement.place(tensor.name) else {
                throw FormatError(name, "cannot place tensor '\(tensor.name)': not a layer, embedding or head tensor")
            }
            placed.append((tensor, placement.section, placement.layer, index))
        }
        let seenLayers = Set(placed.compactMap(\.layer))
        let configured = source.config["num_hidden_layers"]?.intValue ?? source.config["n_layer"]?.intValue
            ?? source.config["num_layers"]?.intValue
        let count = configured ?? (seenLayers.max().map { $0 + 1 } ?? 0)
        guard count > 0 else { throw FormatError(name, "model has no layers") }
        if let missing = (0..<count).first(where: { !seenLayers.contains($0) }) {
            throw FormatError(name, "layer \(missing) has no tensors (config says \(count) layers)")
        }
        if let extra = seenLayers.first(where: { $0 >= count }) {
            throw FormatError(name, "tensors for layer \(extra), but config says \(count) layers")
        }
        let names = placed.map(\.tensor.name)
        guard Set(names).count == names.count else {
            throw FormatError(name, "duplicate tensor names in the source")
        }
        placed.sort { a, b in
            (a.section, a.layer ?? -1, a.index) < (b.section, b.layer ?? -1, b.index)
        }
        ordered = placed.map { ($0.tensor, $0.section, $0.layer) }
        layerCount = count
        tied = !names.contains(where: TensorPlacement.isHeadMatrix)
        if tied && !names.contains(where: TensorPlacement.isTokenEmbedding) {
            throw FormatError(name, "model has neither a head matrix (lm_head) nor a token embedding to tie it to")
        }
        architecture = source.config["model_type"]?.stringValue ?? "unknown"
    }
}

private func < (a: (Section, Int, Int), b: (Section, Int, Int)) -> Bool {
    if a.0 != b.0 { return a.0 < b.0 }
    if a.1 != b.1 { return a.1 < b.1 }
    return a.2 < b.2
}
