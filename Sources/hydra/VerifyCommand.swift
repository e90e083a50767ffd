import ArgumentParser
import Foundation
import HydraFormat

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-hash every chunk of a store entry and name the tensors hit by a bad one.",
        discussion: "Exits 0 when everything is intact, 1 when any chunk or file is missing or corrupt."
    )

    @OptionGroup var selection: StoreSelection

    func run() throws {
        try runReportingErrors {
            let directory = selection.directory
            let names = try selection.names()
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
