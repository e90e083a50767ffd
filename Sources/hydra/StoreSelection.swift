import ArgumentParser
import HydraFormat

/// `STORE [NAME]`: one entry, or every entry of the store.
struct StoreSelection: ParsableArguments {
    @Argument(help: "Store directory.") var store: String
    @Argument(help: "Entry name (default: every entry).") var name: String?

    var directory: StoreDirectory { StoreDirectory(root: store) }

    func names() throws -> [String] {
        try name.map { [$0] } ?? directory.modelNames()
    }
}

extension ChunkVerification: ExpressibleByArgument {}
