import ArgumentParser
import Foundation
import Glibc
import HydraEngine
import HydraFormat

/// Output helpers for the CLI: errors as one line on stderr, a progress bar when stderr is a terminal.
enum Terminal {
    static let stderrIsTTY = isatty(STDERR_FILENO) == 1

    static func error(_ message: String) {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("\(message)\n".utf8))
    }
}

/// A progress bar redrawn at most ten times a second, on a terminal only.
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let lock = NSLock()

    init(label: String) { self.label = label }

    func update(_ done: Int, _ total: Int) {
        guard Terminal.stderrIsTTY else { return }
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.1 || done == total else { return }
        lastDraw = now
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let width = 30
        let filled = Int(fraction * Double(width))
        let rate = Double(done) / max(now.timeIntervalSince(start), 1e-3) / 1e6
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = String(format: "\r%@ [%@] %3.0f%% %@ / %@ %.0f MB/s ", label, bar, fraction * 100,
                          formatBytes(done), formatBytes(total), rate)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard Terminal.stderrIsTTY else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

func formatBytes(_ bytes: Int) -> String {
    let value = Double(bytes)
    if value >= 1e9 { return String(format: "%.2f GB", value / 1e9) }
    if value >= 1e6 { return String(format: "%.1f MB", value / 1e6) }
    if value >= 1e3 { return String(format: "%.1f kB", value / 1e3) }
    return "\(bytes) B"
}

/// Stops long work cleanly on Ctrl-C: the first SIGINT/SIGTERM sets a flag that the work polls.
enum Interrupt {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    static func install() {
        signal(SIGINT) { _ in Interrupt.flag = 1 }
        signal(SIGTERM) { _ in Interrupt.flag = 1 }
    }

    static var requested: Bool { flag != 0 }
}

/// Runs a command body, printing a FormatError or other failure as one line and exiting 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as FormatError {
        Terminal.error(error.description)
        throw ExitCode(1)
    } catch let error as EngineError {
        Terminal.error(error.description)
        throw ExitCode(1)
    } catch let error as ExitCode {
        throw error
    } catch {
        Terminal.error("\(error)")
        throw ExitCode(1)
    }
}
