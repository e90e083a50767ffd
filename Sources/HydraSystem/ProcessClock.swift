import Foundation
import Glibc

/// Seconds since this process started, from the kernel's record of its start time (so a
/// start-up timeline includes the time before `main` ran: exec, dynamic linking, Swift runtime).
public enum ProcessClock {
    /// The process start on the CLOCK_BOOTTIME scale, read once.
    static let startSeconds: Double = {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return bootSeconds() }
        // Fields after the command name; starttime is field 22 overall, the 20th after ")".
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]) else { return bootSeconds() }
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }()

    static func bootSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_BOOTTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Seconds since the process started (10 ms resolution at the start, from the kernel's ticks).
    public static func secondsSinceStart() -> Double { max(0, bootSeconds() - startSeconds) }
}
