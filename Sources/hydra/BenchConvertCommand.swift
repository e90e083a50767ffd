import ArgumentParser
struct BenchConvertCommand: ParsableCommand { static let configuration = CommandConfiguration(commandName: "convert") }
