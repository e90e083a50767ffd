/// Decides where a tensor runs from its Hugging Face name: in layer N (a `layers.N` or `h.N`
/// component), before the layers (embeddings, OPT's project_in) or after them (final norm, head).
public enum TensorPlacement {
    static let layerContainers: Set<Substring> = ["layers", "h", "blocks", "layer"]
    static let embedMarkers = ["embed_tokens", "embed_positions", "word_embeddings", "wte", "wpe", "project_in", "embed_in"]
    static let headMarkers = ["lm_head", "norm", "final_layer_norm", "ln_f", "project_out", "embed_out"]
    /// Names of token-embedding matrices, which a tied head reuses.
    static let tokenEmbeddingMarkers = ["embed_tokens", "word_embeddings", "wte", "embed_in"]

    public static func place(_ name: String) -> (section: Section, layer: Int?)? {
        let parts = name.split(separator: ".")
        for (index, part) in parts.enumerated().dropLast() where layerContainers.contains(part) {
            if let layer = Int(parts[index + 1]), layer >= 0 { return (.layer, layer) }
        }
        let module = parts.dropLast().last.map(String.init) ?? ""
        if embedMarkers.contains(module) { return (.embed, nil) }
        if headMarkers.contains(module) { return (.head, nil) }
        return nil
    }

    public static func isTokenEmbedding(_ name: String) -> Bool {
        let parts = name.split(separator: ".")
        guard parts.count >= 2 else { return false }
        return tokenEmbeddingMarkers.contains(String(parts[parts.count - 2]))
    }

    public static func isHeadMatrix(_ name: String) -> Bool {
        name.hasPrefix("lm_head.") || name.contains(".embed_out.") || name.hasPrefix("embed_out.")
    }
}
