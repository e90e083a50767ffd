import Foundation
import HydraFormat

/// The models the fetch and cold-start benchmarks run on, converted into `store` on first use:
/// the synthetic ~2 GB Llama (random weights) and SmolLM2 (bf16) when its GGUF is cached.
/// Returns (label, store name) pairs. With `keepSource`, the synthetic model's safetensors source
/// stays in `workDir/synthetic-2gb/` (the Python loaders read it).
func prepareBenchModels(store: String, workDir: String, keepSource: Bool = false) throws -> [(label: String, name: String)] {
    var models: [(String, String)] = []
    let synthetic = syntheticSource(workDir)
    let haveSource = FileManager.default.fileExists(atPath: synthetic + "/model.safetensors")
    let haveEntry = (try? StoreEntry(store: StoreDirectory(root: store), name: "synthetic-2gb")) != nil
    if !haveSource && (!haveEntry || keepSource) {
        Terminal.note("writing the synthetic model into \(synthetic)…")
        try SyntheticModel.twoGB.write(to: synthetic)
    }
    if !haveEntry {
        Terminal.note("converting the synthetic model into \(store)…")
        guard try ChildProcess.run([ChildProcess.selfPath, "convert", synthetic, store, "--name", "synthetic-2gb"]).status == 0 else {
            throw BenchError("conversion of the synthetic model failed")
        }
    }
    if !keepSource { try? FileManager.default.removeItem(atPath: synthetic) }
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

func syntheticSource(_ workDir: String) -> String { workDir + "/synthetic-2gb" }

/// A benchmark driver script of the repository: found from the working directory (a checkout)
/// or, for a binary run from elsewhere, from the sources it was built from.
func benchScript(_ name: String) -> String {
    let relative = "tools/bench/" + name
    if FileManager.default.fileExists(atPath: relative) { return relative }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(relative).path
}
