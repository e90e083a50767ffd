import ArgumentParser
import Foundation
import HydraFormat

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-hash every chunk of a store entry and name the tensors hit by a bad one.",
        discussion: "Exits 0 when everything is intact, 1 when any chunk or file is missing or corrupt."
    )

    @Argument(help: "Store directory.") var store: String
    @Argument(help: "Entry name (default: every entry).") var name: String?

    func run() throws {
        try runReportingErrors {
            let directory = StoreDirectory(root: store)
            let names = try name.map { [$0] } ?? directory.modelNames()
            var failed = false
            for model in names {
                let entry = try StoreEntry(store: directory, name: model)
                let bar = ProgressBar(label: "verifying \(model)")
                let report = Verifier.verify(entry, progress: { bar.update($0, $1) })
                bar.finish()
                if report.problems.isEmpty {
                    print("\(model): ok (\(report.chunksChecked) chunks, \(formatBytes(report.bytesChecked)))")
                } else {
                    failed = true
                    print("\(model): \(report.problems.count) problem(s)")
                    for problem in report.problems { print("  \(problem)") }
                }
            }
            if failed { throw ExitCode(1) }
        }
    }
}
