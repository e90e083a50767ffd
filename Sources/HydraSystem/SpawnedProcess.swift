import Foundation
import Glibc

/// A long-running child process (a store, a node cache, a worker) started by a launcher or a
/// benchmark. Output goes to a log file (or nowhere); only processes started here are signalled.
public final class SpawnedProcess: @unchecked Sendable {
    public let pid: pid_t
    public let arguments: [String]
    public let logPath: String?
    private let reaped = LockedBox(false)

    /// Starts `arguments` (looked up in PATH when not a path); stdout and stderr go to `logPath`.
    public init(_ arguments: [String], logPath: String? = nil, environment: [String: String] = [:]) throws {
        precondition(!arguments.isEmpty)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let sink = logPath ?? "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 1, sink, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        pid = try Self.spawn(arguments, actions: &actions, environment: environment.merging([ParentWatch.variable: String(getpid())]) { given, _ in given })
        self.arguments = arguments
        self.logPath = logPath
    }

    deinit { terminate() }

    /// posix_spawnp with this process's environment plus `environment` (for the child only).
    public static func spawn(_ arguments: [String], actions: inout posix_spawn_file_actions_t, environment: [String: String] = [:]) throws -> pid_t {
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var variables = ProcessInfo.processInfo.environment
        variables.merge(environment) { _, new in new }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, arguments[0], &actions, nil, argv, envp)
        guard rc == 0 else { throw SystemError("posix_spawn", path: arguments[0], errno: rc) }
        return pid
    }

    /// True while the process has not exited.
    public var isRunning: Bool {
        reaped.withValue { reaped in
            guard !reaped else { return false }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { reaped = true; return false }
            return true
        }
    }

    /// SIGTERM, then SIGKILL after `graceSeconds`; always reaps.
    public func terminate(graceSeconds: Double = 5) {
        guard isRunning else { return }
        Glibc.kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(graceSeconds)
        while isRunning && Date() < deadline { usleep(10_000) }
        kill()
    }

    /// SIGKILL at once (a crash, as far as the others can tell); reaps.
    public func kill() {
        reaped.withValue { reaped in
            guard !reaped else { return }
            Glibc.kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            reaped = true
        }
    }
}
