import ArgumentParser

@main
struct Hydra: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hydra",
        abstract: "HydraServe: serverless LLM serving with fast cold starts.",
        discussion: "A model is converted once into a chunked store; every other command reads it from there.",
        subcommands: [ConvertCommand.self, InspectCommand.self, VerifyCommand.self, GenerateCommand.self, StoreCommand.self, CacheCommand.self, WorkerCommand.self,
                      LaunchCommand.self, ServeCommand.self, DemoCommand.self, KubernetesCommand.self, FetchCommand.self, BenchCommand.self,
                      TraceCommand.self, LoadCommand.self, AnalyzeCommand.self, SyntheticCommand.self]
    )
}
