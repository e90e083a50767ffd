import Foundation
import Glibc

/// Ties a server process to the launcher that started it: `SpawnedProcess` passes its pid in
/// `HYDRA_PARENT_PID`, and a server that calls `start()` exits once that launcher is gone —
/// so a killed `hydra serve` or test leaves no workers, caches or stores behind.
public enum ParentWatch {
    public static let variable = "HYDRA_PARENT_PID"

    public static func start() {
        guard let text = ProcessInfo.processInfo.environment[variable], let parent = pid_t(text), parent == getppid() else { return }
        let thread = Thread {
            while getppid() == parent { usleep(200_000) }
            exit(0)
        }
        thread.name = "hydra-parent-watch"
        thread.start()
    }
}
