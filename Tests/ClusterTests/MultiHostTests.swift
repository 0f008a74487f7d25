import Foundation
import TestSupport
import Testing

/// Three "hosts" on one machine: network namespaces joined by a bridge, each with its own address.
/// The coordinator runs in one, a worker in each of the others; the run must finish with the same
/// weights as one local worker's. Needs root and iproute2; skipped (with the reason) otherwise.
@Suite(.serialized) struct MultiHostTests {
    typealias Run = ClusterRunTests

    /// Runs `ip` with `arguments`; the combined output when it fails.
    @discardableResult
    static func ip(_ arguments: [String]) -> String? { runCommand(["/usr/sbin/ip"] + arguments) }

    static let namespacesAvailable: Bool = {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") else { return false }
        let probe = "rlaif-probe-\(getpid())"
        guard ip(["netns", "add", probe]) == nil else { return false }
        ip(["netns", "del", probe])
        return true
    }()

    /// The namespaces and links of one test, removed by `tearDown`.
    struct Network {
        let tag: String
        let subnet: String
        var namespaces: [String] { ["c", "a", "b"].map { "rlaif-\($0)\(tag)" } }
        var bridge: String { "rlbr\(tag)" }
        func address(_ i: Int) -> String { "\(subnet).\(i + 1)" }

        /// Creates the bridge and one namespace per host, each with a veth on the bridge.
        func setUp() throws {
            var failures: [String] = []
            func run(_ a: [String]) {
                if let e = MultiHostTests.ip(a) { failures.append("ip \(a.joined(separator: " ")): \(e)") }
            }
            run(["link", "add", bridge, "type", "bridge"])
            run(["link", "set", bridge, "up"])
            for (i, ns) in namespaces.enumerated() {
                let outside = "rlv\(tag)\(i)", inside = "rlp\(tag)\(i)"
                run(["netns", "add", ns])
                run(["link", "add", outside, "type", "veth", "peer", "name", inside])
                run(["link", "set", outside, "master", bridge])
                run(["link", "set", outside, "up"])
                run(["link", "set", inside, "netns", ns])
                run(["-n", ns, "addr", "add", "\(address(i))/24", "dev", inside])
                run(["-n", ns, "link", "set", inside, "up"])
                run(["-n", ns, "link", "set", "lo", "up"])
            }
            if !failures.isEmpty { throw Run.Failure(message: failures.joined(separator: "\n")) }
        }

        func tearDown() {
            for ns in namespaces { MultiHostTests.ip(["netns", "del", ns]) }  // takes its veth pair along
            for i in namespaces.indices { MultiHostTests.ip(["link", "del", "rlv\(tag)\(i)"]) }
            MultiHostTests.ip(["link", "del", bridge])
        }
    }

    @Test(.enabled(if: namespacesAvailable, "network namespaces cannot be made here (needs root and iproute2)"))
    func coordinatorAndWorkers_inSeparateNamespaces_completeTheRun() throws {
        let reference = try Run.reference().checksum
        let tag = String(getpid() % 10000)
        let network = Network(tag: tag, subnet: "10.213.\(getpid() % 200 + 20)")
        defer { network.tearDown() }
        try network.setUp()

        let dir = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func inNamespace(_ ns: String, _ arguments: [String], log: String) throws -> Process {
            try Run.start(
                arguments, log: dir.appendingPathComponent(log), launcher: ["/usr/sbin/ip", "netns", "exec", ns])
        }
        let coordinator = try inNamespace(
            network.namespaces[0],
            [
                "coordinator", Run.quick, "--run-dir", dir.path, "--quiet", "--set",
                "coordinator.bind=tcp://\(network.address(0)):0",
            ],
            log: "coordinator.log")
        defer { if coordinator.isRunning { kill(coordinator.processIdentifier, SIGKILL) } }
        let endpoint = try #require(Run.coordinatorAddress(dir))
        #expect(endpoint.hasPrefix("tcp://\(network.address(0)):"))
        let workers = try [1, 2].map { i in
            try inNamespace(
                network.namespaces[i], ["worker", "--connect", endpoint, "--threads", "1", "--name", "host\(i)"],
                log: "host\(i).log")
        }
        defer { for w in workers where w.isRunning { kill(w.processIdentifier, SIGKILL) } }
        #expect(Run.wait(coordinator, seconds: 300), "the coordinator did not finish")
        let log = (try? String(contentsOf: dir.appendingPathComponent("coordinator.log"), encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 0, "coordinator: \(log)")

        // Each worker advertised its ring listener at its own namespace's address.
        let joined = Run.joined(Run.events(dir))
        for i in [1, 2] {
            let ring = joined.first { $0.name == "host\(i)" }?.ring ?? ""
            #expect(ring.hasPrefix("tcp://\(network.address(i)):"), "host\(i) advertised \(ring)")
        }
        #expect(try Run.summary(dir)["weights_checksum"] as? String == reference)

        // `rlaif launch` in the first namespace starts one local worker and, through an ssh
        // stand-in that enters a namespace, one worker on each of the other two hosts.
        let sshDir = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: sshDir) }
        let ssh = Fixtures.directory.appendingPathComponent("netns_ssh.sh").path
        let launch = try inNamespace(
            network.namespaces[0],
            [
                "launch", Run.quick, "--run-dir", sshDir.path, "--quiet", "--workers", "1",
                "--set", "coordinator.bind=tcp://\(network.address(0)):0", "--set", "workers.ring_bind=tcp://0.0.0.0:0",
                "--set", "workers.ssh=[\(network.namespaces[1]):1, \(network.namespaces[2])]",
                "--set", "workers.ssh_command=\(ssh)", "--set", "workers.remote_rlaif=\(Run.binary)",
            ],
            log: "launch-ssh.log")
        defer { if launch.isRunning { kill(launch.processIdentifier, SIGKILL) } }
        #expect(Run.wait(launch, seconds: 300), "the launch with remote workers did not finish")
        let launchLog = (try? String(contentsOf: dir.appendingPathComponent("launch-ssh.log"), encoding: .utf8)) ?? ""
        #expect(launch.terminationStatus == 0, "launch: \(launchLog)")
        let sshJoined = Run.joined(Run.events(sshDir))
        #expect(sshJoined.count == 3)
        for i in [1, 2] {
            let ring = sshJoined.first { $0.name.hasPrefix("ssh-\(network.namespaces[i])-0-") }?.ring ?? ""
            #expect(ring.hasPrefix("tcp://\(network.address(i)):"), "host \(i) ring \(ring)")
        }
        #expect(try Run.summary(sshDir)["weights_checksum"] as? String == reference)
    }
}
