import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print a table and write JSON, measured next to their peers.",
        subcommands: [BenchConvertCommand.self, BenchFetchCommand.self, BenchGenerateCommand.self, BenchColdstartCommand.self, BenchServeCommand.self]
    )
}
