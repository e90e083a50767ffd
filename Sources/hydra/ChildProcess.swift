import ArgumentParser
import Foundation
import Glibc
import HydraFormat
import HydraSystem

/// Runs a program to completion, measuring wall time and its peak resident memory.
struct ChildProcess {
    struct Result {
        let status: Int32
        let seconds: Double
        let peakRSSBytes: Int
    }

    /// `environment` adds to (or overrides) this process's variables for the child only.
    static func run(_ arguments: [String], quiet: Bool = true, stdoutPath: String? = nil,
                    environment: [String: String] = [:]) throws -> Result {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdoutPath {
            posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        } else if quiet {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        let start = DispatchTime.now()
        let pid = try SpawnedProcess.spawn(arguments, actions: &actions, environment: environment)
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw BenchError("wait4 failed: \(String(cString: strerror(errno)))") }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        let exitStatus = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Result(status: exitStatus, seconds: seconds, peakRSSBytes: Int(usage.ru_maxrss) * 1024)
    }

    /// Runs a program with extra environment variables, capturing its standard output.
    static func runCapturing(_ arguments: [String], environment: [String: String] = [:]) throws -> (Result, String) {
        let output = NSTemporaryDirectory() + "hydra-child-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
        defer { unlink(output) }
        let result = try run(arguments, quiet: true, stdoutPath: output, environment: environment)
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        return (result, text)
    }

    /// Starts a program in the background (output discarded); stop it with `stop`.
    static func start(_ arguments: [String]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        return try SpawnedProcess.spawn(arguments, actions: &actions)
    }

    /// Signals a process this benchmark started and reaps it.
    static func stop(_ pid: pid_t, signal: Int32 = SIGTERM) {
        kill(pid, signal)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    /// This executable, for running its own subcommands as children.
    static var selfPath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The virtual machines we run on hand idle memory back to the host; touching it again is
/// several times slower. Before each timed run, take and touch memory so every contender
/// starts from the same state (see PEERS.md).
func warmMemory(bytes: Int = 2 << 30) {
    guard let pointer = malloc(bytes) else { return }
    memset(pointer, 1, bytes)
    free(pointer)
}

/// Opens the entry a benchmark child measures, given as STORE:NAME.
func openMeasuredEntry(_ location: String) throws -> StoreEntry {
    let parts = location.split(separator: ":", maxSplits: 1).map(String.init)
    guard parts.count == 2 else { throw BenchError("expected STORE:NAME, got '\(location)'") }
    return try StoreEntry(store: StoreDirectory(root: parts[0]), name: parts[1])
}

/// A benchmark whose parent runs and alternates the contenders, each measurement of our own code
/// running as a child process (`--measure-entry`) so that its peak RSS and timing are its own.
protocol ChildMeasuredBenchmark: ParsableCommand {
    var measureEntry: String? { get }
    func measureOnce(_ location: String) throws
    func compare() throws
}

extension ChildMeasuredBenchmark {
    func run() throws {
        try runReportingErrors {
            if let measureEntry { return try measureOnce(measureEntry) }
            try compare()
        }
    }
}
