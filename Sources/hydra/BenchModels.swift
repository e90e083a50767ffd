import Foundation
import HydraFormat

/// The models the fetch and cold-start benchmarks run on, converted into `store` on first use:
/// the synthetic ~2 GB Llama (random weights) and SmolLM2 (bf16) when its GGUF is cached.
/// Returns (label, store name) pairs.
func prepareBenchModels(store: String, workDir: String) throws -> [(label: String, name: String)] {
    var models: [(String, String)] = []
    if (try? StoreEntry(store: StoreDirectory(root: store), name: "synthetic-2gb")) == nil {
        let synthetic = workDir + "/synthetic-2gb"
        Terminal.note("writing and converting the synthetic model into \(store)…")
        try SyntheticModel.twoGB.write(to: synthetic)
        guard try ChildProcess.run([ChildProcess.selfPath, "convert", synthetic, store, "--name", "synthetic-2gb"]).status == 0 else {
            throw BenchError("conversion of the synthetic model failed")
        }
        try? FileManager.default.removeItem(atPath: synthetic)
    }
    models.append(("synthetic-2GB", "synthetic-2gb"))
    let gguf = SmolLM2.defaultGGUFPath
    if FileManager.default.fileExists(atPath: gguf) {
        if (try? StoreEntry(store: StoreDirectory(root: store), name: "smollm2")) == nil {
            _ = try ChildProcess.run([ChildProcess.selfPath, "convert", gguf, store, "--name", "smollm2", "--dtype", "bf16"])
        }
        models.append(("SmolLM2-135M bf16", "smollm2"))
    } else {
        Terminal.note("SmolLM2 is not cached (tools/fetch-smollm2): measuring the synthetic model only")
    }
    return models
}
