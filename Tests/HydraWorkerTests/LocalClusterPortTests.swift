import Testing
import HydraSystem
@testable import HydraWorker

@Suite struct LocalClusterPortTests {
    /// Enough ports that the kernel, were each given back before the next is chosen, would hand
    /// some out twice (about 9 repeats in 512 choices on a stock ephemeral range).
    @Test func freePortsAreDifferentAndFree() throws {
        let ports = try LocalCluster.freePorts(512)
        #expect(ports.count == 512)
        #expect(Set(ports).count == ports.count)
        for port in ports.prefix(16) { _ = try TCPListener(host: "127.0.0.1", port: port) }
    }
}
