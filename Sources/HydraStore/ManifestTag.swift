import HydraSystem

/// The ETag a store server gives a manifest: the XXH3-64 of its bytes, quoted. A strong
/// validator — any change to the file changes it — that a node cache sends back in
/// `If-None-Match` to check a manifest it learned earlier is still the store's.
enum ManifestTag {
    static func of(_ bytes: UnsafeRawBufferPointer) -> String { "\"xxh3-\(DigestAlgorithm.xxh3.hex(bytes))\"" }

    /// Whether an `If-None-Match` value names `tag`: a comma-separated list of tags, or `*`;
    /// compared weakly, as RFC 9110 §13.1.2 asks of this header.
    static func matches(_ header: String, _ tag: String) -> Bool {
        header.split(separator: ",").contains { item in
            let candidate = item.trimmingCharacters(in: .whitespaces)
            return candidate == "*" || candidate == tag || candidate == "W/" + tag
        }
    }
}
